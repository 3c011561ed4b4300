"""The emulator's trunks: in memory, optionally persisted in a data file plus a log.

Persistence is O(1) per change: the data file (`--data FILE`, a JSON snapshot)
is written whole only when the store opens and when it closes; in between,
every change is one JSON line appended to `FILE.log` with a single write(), so
a killed emulator (kill -9) loses nothing it has answered: the kernel keeps
the bytes. Opening folds a non-empty log into a fresh snapshot (compaction)
and then empties it; so does closing. Only a torn last line (the write was
cut short, so its request was never answered) is dropped; any other damage is
refused with a clear error.

Replaying a log is idempotent (a create puts a whole record, a deactivate sets
a flag, a clear empties the store), so a crash between writing the snapshot
and emptying the log is harmless: the next open replays the same lines again.
The log is never removed, only emptied, and holds an exclusive flock while an
emulator uses it, so a second emulator on the same data file is refused
instead of silently overwriting the first one's trunks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import string
import tempfile
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trunksync.errors import TrunksyncError

_ID_ALPHABET = string.ascii_letters + string.digits
_FILE_FORMAT = 1
LOG_SUFFIX = ".log"
# The three kinds of log line; each carries exactly what replaying it needs.
_CREATE, _DEACTIVATE, _CLEAR = "create", "deactivate", "clear"


def utc_timestamp() -> str:
    """Now in UTC, ISO 8601 without a zone and with microseconds, as the platform."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass
class TrunkRecord:
    trunk_id: str
    trunk_name: str
    trunk_type: str
    trunk_config: dict[str, Any]
    trunk_created_at: str
    active: bool = True

    def summary(self) -> dict[str, str]:
        """What GET /sip/list shows: never the config."""
        return {
            "trunk_id": self.trunk_id,
            "trunk_name": self.trunk_name,
            "trunk_type": self.trunk_type,
            "trunk_created_at": self.trunk_created_at,
        }

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: asdict's deep copy cost ~0.2 ms per create, and the
        # result is only ever serialised at once (a config is never mutated).
        return {each.name: getattr(self, each.name) for each in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> TrunkRecord:
        if not isinstance(data, dict):
            raise ValueError("a trunk record is not an object")
        try:
            record = cls(**data)
        except TypeError as error:
            raise ValueError(f"bad trunk record: {error}") from None
        text_fields = (record.trunk_id, record.trunk_name, record.trunk_type)
        if not all(isinstance(value, str) for value in text_fields):
            raise ValueError("bad trunk record: id, name and type must be strings")
        if not isinstance(record.trunk_config, dict) or not isinstance(record.active, bool):
            raise ValueError(f"bad trunk record {record.trunk_id}")
        return record


@dataclass
class Stats:
    create_calls: int = 0
    trunks_created: int = 0
    list_calls: int = 0
    deactivate_calls: int = 0
    faults_injected: int = 0


def log_path_for(data_file: Path) -> Path:
    """Where the change log of `data_file` lives: beside it, `FILE.log`."""
    return data_file.with_name(data_file.name + LOG_SUFFIX)


@dataclass
class TrunkStore:
    """All trunks ever created (deactivated ones are kept, as on the platform).

    With a `data_file`, the store is loaded (and its log compacted) on
    construction; call `close()` when the emulator stops to compact again.
    """

    data_file: Path | None = None
    _trunks: dict[str, TrunkRecord] = field(default_factory=dict)
    _log: _ChangeLog | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.data_file is not None:
            # The log is opened (and locked) first, so nobody else folds it meanwhile.
            self._log = _ChangeLog(log_path_for(self.data_file))
            try:
                self._trunks = load_data(self.data_file)
                # Rewritten only when there is something to fold in (or no file yet):
                # a clean data file of 10,000 trunks opens without a 4 MB write.
                if self._log.has_lines() or not self.data_file.exists():
                    self._compact()
            except BaseException:
                self._log.close()
                raise

    def create(self, name: str, trunk_type: str, config: dict[str, Any]) -> TrunkRecord:
        trunk_id = _new_id()
        while trunk_id in self._trunks:
            trunk_id = _new_id()
        record = TrunkRecord(trunk_id, name, trunk_type, config, utc_timestamp())
        # Logged before it is kept or answered: what a client saw is always on disk.
        if self.data_file is not None:
            self._append({"op": _CREATE, "trunk": record.to_json()})
        self._trunks[trunk_id] = record
        return record

    def get(self, trunk_id: str) -> TrunkRecord | None:
        return self._trunks.get(trunk_id)

    def all(self) -> list[TrunkRecord]:
        return list(self._trunks.values())

    def active(self) -> list[TrunkRecord]:
        return [record for record in self._trunks.values() if record.active]

    def deactivate(self, record: TrunkRecord) -> None:
        self._append({"op": _DEACTIVATE, "trunk_id": record.trunk_id})
        record.active = False

    def clear(self) -> None:
        self._append({"op": _CLEAR})
        self._trunks.clear()

    def close(self) -> None:
        """Fold the log into the data file and remove it; harmless to call twice."""
        if self._log is None:
            return
        try:
            if self._log.has_lines():
                self._compact()
        finally:
            self._log.close()
            self._log = None

    def _compact(self) -> None:
        """Write every trunk as the data file, then empty the log it now contains."""
        assert self.data_file is not None and self._log is not None
        document = {"format": _FILE_FORMAT, "trunks": [t.to_json() for t in self._trunks.values()]}
        write_atomically(self.data_file, json.dumps(document, indent=2) + "\n")
        self._log.empty()

    def _append(self, change: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.append(change)
        elif self.data_file is not None:
            # After close() (a request that outlived the shutdown): fail it, so the
            # client sees an error rather than a success that was never kept.
            raise TrunksyncError(f"emulator data file {self.data_file} is closed")


class _ChangeLog:
    """An append-only file of JSON lines, one write() per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0o600: trunk configs hold Twilio credentials, as the data file does.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TrunksyncError(
                f"emulator data log {path} is in use by another emulator"
            ) from None
        self._fd: int | None = fd

    def append(self, change: dict[str, Any]) -> None:
        if self._fd is None:
            raise TrunksyncError(f"emulator data log {self.path} is closed")
        line = (json.dumps(change, separators=(",", ":")) + "\n").encode()
        # One write() for the whole line: a kill -9 leaves it whole or not at all
        # (a full disk can still cut it, which is why a torn last line is dropped).
        written = os.write(self._fd, line)
        if written != len(line):
            raise TrunksyncError(f"emulator data log {self.path}: short write")

    def has_lines(self) -> bool:
        return self._fd is not None and os.fstat(self._fd).st_size > 0

    def empty(self) -> None:
        """Drop every line (they are in the snapshot now); O_APPEND writes restart at 0."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        """Close the file, which also releases the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _new_id() -> str:
    # One urandom call, not twelve secrets.choice calls (62**12 ids; the modulo's
    # slight bias is irrelevant to an emulator's ids).
    return "ST_" + "".join(
        _ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in secrets.token_bytes(12)
    )


def load_data(data_file: Path) -> dict[str, TrunkRecord]:
    """The trunks the data file and its log hold together (the log replayed on top)."""
    trunks = _load_snapshot(data_file) if data_file.exists() else {}
    log = log_path_for(data_file)
    if log.exists():
        _replay(log, trunks)
    return trunks


def _load_snapshot(path: Path) -> dict[str, TrunkRecord]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != _FILE_FORMAT:
            raise ValueError(f"not an emulator data file (format {_FILE_FORMAT})")
        items = document.get("trunks")
        if not isinstance(items, list):
            raise ValueError("'trunks' must be a list")
        records = [TrunkRecord.from_json(item) for item in items]
    except (OSError, ValueError) as error:
        # json.JSONDecodeError is a ValueError, so a corrupt file lands here too.
        raise TrunksyncError(f"emulator data file {path}: {error}") from None
    return {record.trunk_id: record for record in records}


def _replay(log: Path, trunks: dict[str, TrunkRecord]) -> None:
    try:
        raw = log.read_bytes()
    except OSError as error:
        raise TrunksyncError(f"emulator data log {log}: {error.strerror or error}") from None
    lines = raw.split(b"\n")
    # The text after the last newline is a torn write (its request was never
    # answered), or empty when the log ends cleanly: either way, not a change.
    for number, line in enumerate(lines[:-1], start=1):
        try:
            _apply_change(json.loads(line), trunks)
        except ValueError as error:
            raise TrunksyncError(f"emulator data log {log}, line {number}: {error}") from None


def _apply_change(change: Any, trunks: dict[str, TrunkRecord]) -> None:
    if not isinstance(change, dict):
        raise ValueError("a change is not an object")
    kind = change.get("op")
    if kind == _CREATE:
        record = TrunkRecord.from_json(change.get("trunk"))
        trunks[record.trunk_id] = record
    elif kind == _DEACTIVATE:
        trunk_id = change.get("trunk_id")
        record_or_none = trunks.get(trunk_id) if isinstance(trunk_id, str) else None
        if record_or_none is None:
            raise ValueError(f"deactivates an unknown trunk {trunk_id!r}")
        record_or_none.active = False
    elif kind == _CLEAR:
        trunks.clear()
    else:
        raise ValueError(f"unknown change {kind!r}")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` so a reader (or a crash) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
