"""The local state: which trunk ids trunksync created, and for which entries.

The file is JSON with sorted keys so a git diff of it reads well. It is only
ever replaced atomically (temp file, fsync, rename, fsync of the folder), a
backup keeps the version from before this run, and an OS lock (flock, released
by the kernel if the holder dies) serialises runs.

During a run each durable change is one appended record in a journal beside
the file (see `trunksync.backends.filejournal`); the journal is folded into the
file at the end of the run. `StateStore` knows about the journal so that every
path through it agrees: `load` replays a journal left by a crash in memory,
and `locked` folds it into the file before anything else happens.

Paths: a symlinked state file is followed. The lock, the journal, the backup
and every write are on the real file (so two paths to one state take one lock),
and the link itself is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, NamedTuple, NewType

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from trunksync.errors import LockError, StateError
from trunksync.ids import TRUNK_ID_PATTERN, TRUNK_ID_RULE, TRUNK_TYPE_PATTERN, TRUNK_TYPE_RULE
from trunksync.runner import ci_run_url, host_name, user_name
from trunksync.sanitize import PLAIN_PATTERN, has_unsafe_chars, printable

FORMAT_VERSION = 1
DEFAULT_PATH = Path("state/trunks.json")

# Which types are managed is the type registry's business, not the state's: the
# state accepts any bounded, plain type name. A NewType so that a value from the
# YAML (a plain str) is passed in deliberately.
TrunkTypeName = NewType("TrunkTypeName", str)
# Ids, types and names are checked by pydantic's own pattern engine, not by a Python
# validator: 30,000 Python calls fewer when a 10,000-trunk state loads.
# Its message is turned back into these words (see `_error_text`).
_PATTERN_RULES = {
    TRUNK_ID_PATTERN: f"not a trunk id ({TRUNK_ID_RULE})",
    TRUNK_TYPE_PATTERN: f"not a trunk type ({TRUNK_TYPE_RULE})",
    PLAIN_PATTERN: "a name that holds a control or bidi character",
}


def _check_time(value: str) -> str:
    parse_time(value)  # raises ValueError, which pydantic reports with the field's path
    return value


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC (as `reconcile.parse_time`)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not an ISO 8601 time (e.g. 2024-01-15T10:00:00.000000Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


TrunkId = Annotated[str, StringConstraints(pattern=TRUNK_ID_PATTERN)]
TrunkType = Annotated[TrunkTypeName, StringConstraints(pattern=TRUNK_TYPE_PATTERN)]
Timestamp = Annotated[str, AfterValidator(_check_time)]
Name = Annotated[str, StringConstraints(pattern=PLAIN_PATTERN)]


class _Record(BaseModel):
    # Frozen: a record in a state is a value; a change replaces it, never edits it.
    # Fields are declared in sorted order, and mappings are sorted as they are
    # validated, so the records encode straight to the file's sorted-key layout
    # (see State.to_json) without a Python pass over every value.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _sorted_mapping(value: dict[str, Any]) -> dict[str, Any]:
    # Every record of a state file is validated on load (10,000 records: 20,000
    # calls), and a file we wrote is sorted already: check cheaply, rebuild only
    # what is not. Plain loops on purpose: this is the hot path of a load.
    keys = list(value)
    if keys != sorted(keys):
        return _sorted(value)  # type: ignore[no-any-return]
    for item in value.values():
        if isinstance(item, dict):
            return _sorted(value)  # type: ignore[no-any-return]
        if isinstance(item, list):
            for inner in item:
                if isinstance(inner, (dict, list)):
                    return _sorted(value)  # type: ignore[no-any-return]
    return value


def _sorted_strings(value: dict[str, str]) -> dict[str, str]:
    keys = list(value)
    return value if keys == sorted(keys) else {key: value[key] for key in sorted(keys)}


SortedMapping = Annotated[dict[str, Any], AfterValidator(_sorted_mapping)]
SortedStrings = Annotated[dict[str, str], AfterValidator(_sorted_strings)]


class TrunkRecord(_Record):
    """A trunk trunksync created (or adopted): its id and what was applied."""

    config: SortedMapping
    created_at: Timestamp
    secret_fingerprints: SortedStrings = {}
    trunk_id: TrunkId
    trunk_type: TrunkType


class Intent(_Record):
    """A create that was (or was about to be) sent and whose answer is not recorded.

    It carries what the record would hold, so a trunk found later on the
    platform can be adopted exactly as it was requested.
    """

    config: SortedMapping = {}
    # For a replacement: the old trunk id, retired in the same write as the new id.
    replaces: TrunkId | None = None
    request_fingerprint: str
    secret_fingerprints: SortedStrings = {}
    started_at: Timestamp
    trunk_type: TrunkType

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

    name: Name
    since: Timestamp


class State(BaseModel):
    """The whole state. Mutable as a container (backends apply changes to it);
    the records it holds are frozen values."""

    model_config = ConfigDict(extra="forbid")

    format_version: int
    lineage: str
    serial: int = Field(ge=0)
    trunks: dict[Name, TrunkRecord] = {}
    intents: dict[Name, Intent] = {}
    retired: dict[TrunkId, RetiredTrunk] = {}
    # Set by `state migrate` on the copy it moved away from: where the state lives
    # now (a backend identity, never a credential). Such a file is refused.
    moved_to: str | None = None

    @field_validator("lineage")
    @classmethod
    def _lineage_is_plain(cls, value: str) -> str:
        if not value or has_unsafe_chars(value) or len(value) > 128:
            raise ValueError("not a lineage (a plain string of at most 128 characters)")
        return value

    def known_ids(self) -> set[str]:
        """Every trunk id this state accounts for, replaced ones included."""
        return {record.trunk_id for record in self.trunks.values()} | set(self.retired)

    @classmethod
    def new(cls) -> State:
        return cls(format_version=FORMAT_VERSION, lineage=str(uuid.uuid4()), serial=0)

    def to_json(self) -> bytes:
        """Sorted keys, 2-space indent, UTF-8: exactly the bytes of `json.dumps(...,
        indent=2, sort_keys=True, ensure_ascii=False)` of the state (with `moved_to`
        only when it is set, so an ordinary state's file never mentions it).

        Written once per run (the fold), so no caching: the records' fields are
        declared, and their mappings validated, in sorted order, so pydantic's Rust
        encoder writes the whole document with no Python pass over the values.
        """
        document: dict[str, Any] = {
            "format_version": self.format_version,
            "intents": _by_key(self.intents),
            "lineage": self.lineage,
            "retired": _by_key(self.retired),
            "serial": self.serial,
            "trunks": _by_key(self.trunks),
        }
        if self.moved_to is not None:
            document["moved_to"] = self.moved_to
        return pydantic_core.to_json(_sorted_top(document), indent=2) + b"\n"


def _by_key(items: Mapping[str, _Record]) -> dict[str, _Record]:
    return {key: items[key] for key in sorted(items)}


def _sorted_top(document: dict[str, Any]) -> dict[str, Any]:
    return {key: document[key] for key in sorted(document)}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def utc_now() -> str:
    return stamp(datetime.now(timezone.utc))


def stamp(moment: datetime) -> str:
    """How the state writes a time: UTC, microseconds, a Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def real_path(path: Path) -> Path:
    """`path` with every symlink followed (the file need not exist yet)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the read or write reports it
        return path.absolute()


# How often a reader reads the file and the journal again when a fold replaced the
# file meanwhile: each retry needs another run's fold, so this is never reached in
# practice, but a reader must not spin forever.
READ_ATTEMPTS = 10

FileStamp = tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_size


def _file_stamp(status: os.stat_result) -> FileStamp:
    return (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)


def file_digest(raw: bytes | None) -> str:
    """What a journal records of the trunks.json it was written on: "none" for no file."""
    return "none" if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()


class FileSnapshot(NamedTuple):
    """The state file as one read saw it; all None when there was no file."""

    state: State | None
    stamp: FileStamp | None
    raw: bytes | None

    def digest(self) -> str:
        return file_digest(self.raw)


class StateStore:
    """Reads and atomically replaces one state file; holds its lock; folds its journal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # A symlinked file: its sidecars (lock, journal, backup) go beside the target,
        # so every path to one state shares them. Otherwise keep the path as given:
        # messages then show it as the user wrote it.
        self.real_path = real_path(path) if path.is_symlink() else path
        real = self.real_path
        self.backup_path = real.with_name(real.name + ".backup")
        self.lock_path = real.with_name(real.name + ".lock")
        self.lock_info_path = real.with_name(real.name + ".lock.info")
        self.journal_path = real.with_name(real.name + ".journal")
        self.history_path = real.with_name(real.name + ".history")
        self._backed_up = False

    def exists(self) -> bool:
        """Whether a state exists: the file, or a journal a crash left before the first fold.

        A journal with no sound record (a first run killed inside its first append)
        recorded nothing: no state yet, as every reader and the next writer agree.
        """
        from trunksync.backends import filejournal

        return self.real_path.exists() or filejournal.holds_records(self.journal_path)

    def load(self) -> State:
        """The state (a crash's journal replayed in memory), or a new empty one."""
        return self.load_with_file()[0]

    def load_with_file(self) -> tuple[State, FileSnapshot]:
        """The state, and the file it was read from (the base of the next journal).

        Nothing is written, and no lock is taken: a writer may fold the journal into
        the file between our read of the file and our read of the journal, which
        would pair the old file with no journal (ids missed) or with the next run's
        journal (a false refusal). A fold always replaces the file before it removes
        the journal, so the read is retried until the file did not change under it.
        A state that `state migrate` moved away is refused.
        """
        from trunksync.backends import filejournal

        for _ in range(READ_ATTEMPTS):
            snapshot = self.read_snapshot()
            try:
                state = filejournal.replay_pending(self, snapshot)
            except StateError:
                if self._changed_since(snapshot):
                    continue  # the refusal may come from pairing two generations
                raise
            if not self._changed_since(snapshot):
                self.refuse_moved(state)
                return state, snapshot
        raise StateError(
            f"state {self.path} was replaced {READ_ATTEMPTS} times while it was being read "
            "(other trunksync runs folding it); nothing was changed: run the command again"
        )

    def read_file(self) -> State | None:
        """The state file alone, or None when there is none (and no backup says there was)."""
        return self.read_snapshot().state

    def read_snapshot(self) -> FileSnapshot:
        """The state file alone, and the identity of the file that was read."""
        try:
            with open(self.real_path, "rb") as handle:
                stamp = _file_stamp(os.fstat(handle.fileno()))
                raw = handle.read()
        except FileNotFoundError:
            if self.backup_path.exists():
                # Starting empty here would plan every trunk as new: duplicates.
                raise StateError(
                    f"state {self.path} is missing but its backup {self.backup_path} exists: "
                    f"restore it (cp {self.backup_path} {self.path}), or remove the backup "
                    "to start a new, empty state"
                ) from None
            return FileSnapshot(None, None, None)
        except OSError as error:
            raise StateError(f"cannot read state {self.path}: {_reason(error)}") from None
        state = parse_state(raw, self.path, self._restore_hint())
        self._check_lineage(state)
        return FileSnapshot(state, stamp, raw)

    def _changed_since(self, snapshot: FileSnapshot) -> bool:
        """Whether the file is no longer the one `snapshot` read (an atomic replace
        is a new inode; a size and a nanosecond time guard against inode reuse)."""
        try:
            return _file_stamp(os.stat(self.real_path)) != snapshot.stamp
        except FileNotFoundError:
            return snapshot.stamp is not None
        except OSError as error:
            raise StateError(f"cannot read state {self.path}: {_reason(error)}") from None

    def refuse_moved(self, state: State) -> None:
        if state.moved_to is not None:
            raise StateError(
                f"state {self.path} was moved to {printable(state.moved_to)} by "
                "`trunksync state migrate`: use --state for that backend; "
                f"remove {self.path} only if you mean to start a new, separate state here"
            )

    def save(self, state: State) -> None:
        """Bump the serial and replace the file atomically."""
        state.serial += 1
        self.write_bytes(state.to_json())

    def write_bytes(self, data: bytes) -> None:
        """Replace the file with serialized state; the first write of a run keeps a backup."""
        try:
            self.real_path.parent.mkdir(parents=True, exist_ok=True)
            if not self._backed_up and self.real_path.exists():
                _replace_with_link(self.real_path, self.backup_path)
            self._backed_up = True
            atomic_write(self.real_path, data)
        except OSError as error:
            raise StateError(
                f"cannot write the state {self.path}: {_reason(error)}; it still holds "
                "its last complete version, and the next apply resolves any create in flight"
            ) from None

    @contextlib.contextmanager
    def locked(self, timeout: float = 0, command: str = "trunksync") -> Iterator[None]:
        """Hold the OS lock on this state for the block; a pending journal is folded first."""
        import filelock

        from trunksync.backends import filejournal

        try:
            self.real_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StateError(
                f"cannot create the state folder {self.path.parent}: {_reason(error)}"
            ) from None
        # No explicit mode: filelock then lets the umask decide, as for every file here.
        lock = filelock.FileLock(str(self.lock_path), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockError(self._lock_message(timeout)) from None
        except OSError as error:
            raise StateError(f"cannot lock the state {self.path}: {_reason(error)}") from None
        # One backup per locked run, not per object: a Python API user keeps one
        # backend for many runs, and the backup must hold the file from before each.
        self._backed_up = False
        try:
            self._write_lock_info(command)
            filejournal.fold_pending(self, command)
            yield
        finally:
            with contextlib.suppress(OSError):
                self.lock_info_path.unlink()
            lock.release()

    def _write_lock_info(self, command: str) -> None:
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "host": host_name(),
            "user": user_name(),
            "command": command,
            "since": utc_now(),
        }
        url = ci_run_url()
        if url:
            info["ci_run"] = url
        try:
            atomic_write(self.lock_info_path, json.dumps(info).encode(), durable=False)
        except OSError as error:
            raise StateError(f"cannot write the state {self.path}: {_reason(error)}") from None

    def _lock_message(self, timeout: float) -> str:
        try:
            info = json.loads(self.lock_info_path.read_text())
            who = f"pid {info['pid']} on {info['host']}"
            if info.get("user"):
                who += f", user {info['user']}"
            holder = f"{info['command']} ({who}) since {info['since']}"
            if info.get("ci_run"):
                holder += f", CI run {info['ci_run']}"
            holder = printable(holder)
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
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
            lineage = peek_lineage(self.backup_path.read_bytes())
        except OSError:
            return
        if lineage is not None and lineage != state.lineage:
            raise StateError(
                f"state {self.path} has lineage {state.lineage} but its backup "
                f"{self.backup_path} has {printable(lineage)}: the state file was replaced by "
                "another one. Restore the right file (the backup, if it is the right one) "
                "or remove the backup to start anew; nothing was changed"
            )


# The top-level "lineage" line of a file this module wrote (keys sorted, 2-space
# indent): nested keys are indented deeper, so this matches only the top level.
_LINEAGE_LINE = re.compile(rb'^  "lineage": ("(?:[^"\\\n]|\\.)*"),?$', re.MULTILINE)


def peek_lineage(raw: bytes) -> str | None:
    """A state file's lineage without validating the whole file (the backup is read on
    every load; parsing all of it would double the load's cost). None: not a readable
    state, which the backup check then ignores as it always did."""
    match = _LINEAGE_LINE.search(raw)
    if match is None:
        data = _json_or_none(raw)  # a hand-formatted file: parse it whole
        lineage = data.get("lineage") if isinstance(data, dict) else None
        return lineage if isinstance(lineage, str) else None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _reason(error: OSError) -> str:
    return printable(error.strerror or str(error))


def parse_state(raw: bytes, path: Path, hint: str = "") -> State:
    """Validate state bytes; refuse anything unreadable or from a newer trunksync."""
    try:
        state = State.model_validate_json(raw)
    except ValidationError as error:
        version = _peek_format_version(raw)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StateError(_newer_message(path, version)) from None
        first = error.errors(include_url=False)[0]
        where = printable(".".join(str(part) for part in first["loc"])) or "file"
        raise StateError(
            f"state {path} is corrupt or not a trunksync state ({where}: {_error_text(first)})"
            f"{hint}; it was not changed"
        ) from None
    if state.format_version > FORMAT_VERSION:
        raise StateError(_newer_message(path, state.format_version))
    if state.format_version < 1:
        raise StateError(f"state {path} has an invalid format_version {state.format_version}")
    return state


def _error_text(error: ErrorDetails) -> str:
    """pydantic's message, in trunksync's words for the id, type and name patterns."""
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        return _PATTERN_RULES.get(str(pattern), error["msg"])
    return error["msg"]


def _peek_format_version(raw: bytes) -> Any:
    data = _json_or_none(raw)
    return data.get("format_version") if isinstance(data, dict) else None


def _json_or_none(raw: bytes) -> Any:
    """`raw` parsed, or None when it is not JSON: deeply nested arrays in a hand-broken
    file make the parser raise RecursionError, which must not become a traceback."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _newer_message(path: Path, version: int) -> str:
    return (
        f"state {path} has format version {version}, newer than this trunksync reads "
        f"({FORMAT_VERSION}); upgrade trunksync. The file was not changed"
    )


# The mode handed to open(2) for a new file: the kernel applies the umask to it.
NEW_FILE_MODE = 0o666


def create_file(path: Path, flags: int, like: Path | None = None) -> int:
    """open(2) `path` with O_CREAT | `flags`: a new file honours the umask, or takes
    the mode of `like` when that exists (a journal or history beside trunks.json)."""
    fd = os.open(path, os.O_CREAT | flags, NEW_FILE_MODE)
    try:
        if like is not None:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fd, stat.S_IMODE(like.stat().st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace `path` with `data` so a reader sees the old file or the new, never a mix.

    A symlink is followed: its target is replaced and the link kept. The new file
    keeps the mode of the file it replaces; a file that did not exist gets the
    umask's mode.
    """
    target = real_path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = create_file(tmp, os.O_WRONLY | os.O_EXCL, like=target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(target.parent)


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
