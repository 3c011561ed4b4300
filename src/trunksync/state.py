"""The local state: which trunk ids trunksync created, and for which entries.

The file is JSON with sorted keys so a git diff of it reads well. It is only
ever replaced atomically (temp file, fsync, rename, fsync of the folder), a
backup keeps the version from before this run, and an OS lock (flock, released
by the kernel if the holder dies) serialises runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from trunksync.errors import LockError, StateError

FORMAT_VERSION = 1
DEFAULT_PATH = Path("state/trunks.json")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrunkRecord(_Record):
    """A trunk trunksync created (or adopted): its id and what was applied."""

    trunk_id: str = Field(pattern=r"^ST_")
    trunk_type: Literal["twilio", "exotel"]
    config: dict[str, Any]
    secret_fingerprints: dict[str, str] = {}
    created_at: str


class Intent(_Record):
    """A create that was (or was about to be) sent and whose answer is not recorded.

    It carries what the record would hold, so a trunk found later on the
    platform can be adopted exactly as it was requested.
    """

    trunk_type: Literal["twilio", "exotel"]
    config: dict[str, Any] = {}
    secret_fingerprints: dict[str, str] = {}
    request_fingerprint: str
    started_at: str
    # For a replacement: the old trunk id, retired in the same write as the new id.
    replaces: str | None = None

    def record(self, trunk_id: str, created_at: str) -> TrunkRecord:
        return TrunkRecord(
            trunk_id=trunk_id,
            trunk_type=self.trunk_type,
            config=self.config,
            secret_fingerprints=self.secret_fingerprints,
            created_at=created_at,
        )


class RetiredTrunk(_Record):
    """A replaced trunk still to be deactivated on the platform (keyed by its id)."""

    name: str
    since: str


class State(_Record):
    format_version: int
    lineage: str
    serial: int = Field(ge=0)
    trunks: dict[str, TrunkRecord] = {}
    intents: dict[str, Intent] = {}
    retired: dict[str, RetiredTrunk] = {}
    # id(entry) -> (entry, its name, its encoded bytes): see to_json.
    _fragments: dict[int, tuple[BaseModel, str, bytes]] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        # Equal states have equal fields; the encoding cache does not count.
        return isinstance(other, State) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as BaseModel

    def known_ids(self) -> set[str]:
        """Every trunk id this state accounts for, replaced ones included."""
        return {record.trunk_id for record in self.trunks.values()} | set(self.retired)

    @classmethod
    def new(cls) -> State:
        return cls(format_version=FORMAT_VERSION, lineage=str(uuid.uuid4()), serial=0)

    def to_json(self) -> bytes:
        """Sorted keys, 2-space indent, UTF-8: exactly the bytes of `json.dumps(...,
        indent=2, sort_keys=True, ensure_ascii=False)`.

        Apply writes the state after every batch of answers, so this is on its hot
        path: each trunk record and intent is encoded once (by pydantic's Rust
        encoder) and its bytes reused for as long as that object is in the state.
        """
        members = [
            ("format_version", _encode(self.format_version)),
            ("lineage", _encode(self.lineage)),
            ("serial", _encode(self.serial)),
            ("intents", self._section(self.intents)),
            ("retired", self._section(self.retired)),
            ("trunks", self._section(self.trunks)),
        ]
        lines = [b'  "' + key.encode() + b'": ' + value for key, value in sorted(members)]
        return b"{\n" + b",\n".join(lines) + b"\n}\n"

    def _section(self, items: Mapping[str, BaseModel]) -> bytes:
        """A top-level mapping's value, built from cached per-entry fragments."""
        if not items:
            return b"{}"
        cache = self._fragments
        fragments = []
        for name in sorted(items):
            entry = items[name]
            # The cache holds the entry itself, so its id cannot be reused meanwhile.
            cached = cache.get(id(entry))
            if cached is None or cached[1] != name:
                cached = cache[id(entry)] = (entry, name, _fragment(name, entry))
            fragments.append(cached[2])
        if len(cache) > 4 * (len(self.trunks) + len(self.intents) + len(self.retired)) + 64:
            live = {
                id(e)
                for section in (self.trunks, self.intents, self.retired)
                for e in section.values()
            }
            for key in cache.keys() - live:
                del cache[key]
        return b"{\n" + b",\n".join(fragments) + b"\n  }"


def _encode(value: Any) -> bytes:
    return pydantic_core.to_json(_sorted(value), indent=2)


def _fragment(name: str, entry: BaseModel) -> bytes:
    """`    "name": {entry}` indented as a value inside a top-level mapping."""
    encoded = _encode({name: entry.model_dump(mode="json")})
    # Drop the wrapping "{\n" and "\n}", and indent one level more (2 -> 4 spaces).
    return b"\n".join(b"  " + line for line in encoded[2:-2].split(b"\n"))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateStore:
    """Reads and atomically replaces one state file; holds its lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backup_path = path.with_name(path.name + ".backup")
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_info_path = path.with_name(path.name + ".lock.info")
        self._backed_up = False

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> State:
        """The state on disk, or a new empty one if there is no file yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self.backup_path.exists():
                # Starting empty here would plan every trunk as new: duplicates.
                raise StateError(
                    f"state {self.path} is missing but its backup {self.backup_path} exists: "
                    f"restore it (cp {self.backup_path} {self.path}), or remove the backup "
                    "to start a new, empty state"
                ) from None
            return State.new()
        except OSError as error:
            raise StateError(f"cannot read state {self.path}: {error.strerror}") from None
        state = parse_state(raw, self.path, self._restore_hint())
        self._check_lineage(state)
        return state

    def save(self, state: State) -> None:
        """Bump the serial and replace the file atomically."""
        state.serial += 1
        self.write_bytes(state.to_json())

    def write_bytes(self, data: bytes) -> None:
        """Replace the file with serialized state; the first write of a run keeps a backup."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self._backed_up and self.path.exists():
                _replace_with_link(self.path, self.backup_path)
            self._backed_up = True
            atomic_write(self.path, data)
        except OSError as error:
            raise StateError(
                f"cannot write the state {self.path}: {error.strerror or error}; it still holds "
                "its last complete version, and the next apply resolves any create in flight"
            ) from None

    @contextlib.contextmanager
    def locked(self, timeout: float = 0, command: str = "trunksync") -> Iterator[None]:
        """Hold the OS lock on this state for the duration of the block."""
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.lock_path), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockError(self._lock_message(timeout)) from None
        try:
            info = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": command,
                "since": utc_now(),
            }
            atomic_write(self.lock_info_path, json.dumps(info).encode(), durable=False)
            yield
        finally:
            with contextlib.suppress(OSError):
                self.lock_info_path.unlink()
            lock.release()

    def _lock_message(self, timeout: float) -> str:
        try:
            info = json.loads(self.lock_info_path.read_text())
            holder = (
                f"{info['command']} (pid {info['pid']} on {info['host']}) since {info['since']}"
            )
        except (OSError, ValueError, KeyError, TypeError):
            holder = "another process"
        waited = f" after waiting {timeout:g}s" if timeout else ""
        return (
            f"state {self.path} is locked by {holder}{waited}; "
            "wait for it to finish, or pass --lock-timeout SECONDS to wait"
        )

    def _restore_hint(self) -> str:
        if self.backup_path.exists():
            return f"; restore it from the backup {self.backup_path} if that one is sound"
        return ""

    def _check_lineage(self, state: State) -> None:
        try:
            backup = State.model_validate_json(self.backup_path.read_bytes())
        except (OSError, ValidationError):
            return
        if backup.lineage != state.lineage:
            raise StateError(
                f"state {self.path} has lineage {state.lineage} but its backup "
                f"{self.backup_path} has {backup.lineage}: the state file was replaced by "
                "another one. Restore the right file (the backup, if it is the right one) "
                "or remove the backup to start anew; nothing was changed"
            )


def parse_state(raw: bytes, path: Path, hint: str = "") -> State:
    """Validate state bytes; refuse anything unreadable or from a newer trunksync."""
    try:
        state = State.model_validate_json(raw)
    except ValidationError as error:
        version = _peek_format_version(raw)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StateError(_newer_message(path, version)) from None
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise StateError(
            f"state {path} is corrupt or not a trunksync state ({where}: {first['msg']})"
            f"{hint}; it was not changed"
        ) from None
    if state.format_version > FORMAT_VERSION:
        raise StateError(_newer_message(path, state.format_version))
    if state.format_version < 1:
        raise StateError(f"state {path} has an invalid format_version {state.format_version}")
    return state


def _peek_format_version(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data.get("format_version") if isinstance(data, dict) else None


def _newer_message(path: Path, version: int) -> str:
    return (
        f"state {path} has format version {version}, newer than this trunksync reads "
        f"({FORMAT_VERSION}); upgrade trunksync. The file was not changed"
    )


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so a reader sees the old file or the new, never a mix."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def _replace_with_link(source: Path, target: Path) -> None:
    # A hard link keeps the old inode as the backup: no copy, and no moment
    # at which the state file itself is missing.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.link(source, tmp)
    os.replace(tmp, target)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
