"""The local backend's journal: one appended, fsynced record per durable change batch.

`trunks.json` is the reviewable file; rewriting it for every change costs
O(state) per create. Instead each `commit` appends one record to
`trunks.json.journal` beside it and fsyncs it (O(batch)), and the journal is
folded into `trunks.json` once, at the end of the run (or by the next command
that takes the lock, after a crash).

A record is a header line and a payload line:

    TSJ1 <payload length> <sha256 of the payload, hex>\\n
    {"actor": ..., "changes": [...], "lineage": ..., "serial": N, "time": ...}\\n

The first record also holds `"base"`: the sha256 of the trunks.json bytes the
journal is written on ("none": no file). A fold first appends a fold mark,
`{"folded": <sha256 of the new file's bytes>, "lineage": ..., "serial": N}`,
fsynced, then replaces the file, then appends the history line, then removes
the journal.

Reading: a torn LAST record (short, with no line break after its header, or
its checksum does not match, with nothing after it) is dropped: the write-ahead
rule means nothing was sent on its strength. Anything else wrong (a bad record
followed by more, a length pointing past sound records, a lineage that is not
the state's, a gap in the serials) is refused, changing nothing. Then:

- the file is the journal's base: its records are applied;
- the file is one a fold mark names: the journal was folded into it, and the
  fold died before it removed the journal; nothing is applied (folding twice
  is harmless);
- otherwise the file was replaced under the journal (a git pull or checkout
  brought another version of the same lineage, whose serials may well equal
  the journal's): refused, naming the ids and intents the journal holds, never
  silently dropped.

A journal written before base digests (no "base") goes by the serials: records
whose serial the file already has are taken as folded before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from trunksync.backends.base import HistoryEntry
from trunksync.changes import (
    ForgetIntent,
    ForgetTrunk,
    RecordId,
    RecordIntent,
    Retire,
    StateChange,
    Unretire,
    apply_changes,
    change_from_json,
    change_to_json,
)
from trunksync.errors import StateError
from trunksync.runner import actor
from trunksync.sanitize import printable
from trunksync.state import (
    FORMAT_VERSION,
    State,
    create_file,
    file_digest,
    fsync_dir,
    utc_now,
)

if TYPE_CHECKING:
    from trunksync.state import FileSnapshot, StateStore

MAGIC = b"TSJ1"
MAX_HEADER = 128  # a header longer than this is not one


class JournalRecord(NamedTuple):
    lineage: str
    serial: int
    time: str
    actor: str
    changes: tuple[StateChange, ...]
    # The first record only: `file_digest` of the trunks.json it was written on top of.
    base: str | None = None


class FoldMark(NamedTuple):
    """Appended, fsynced, just before a fold replaces trunks.json: `file_digest` of
    the bytes it writes. A journal beside exactly those bytes was folded into them."""

    lineage: str
    serial: int
    digest: str

    @classmethod
    def of(cls, state: State, data: bytes) -> FoldMark:
        """The mark of a fold that writes `data`, the encoding of `state`."""
        return cls(state.lineage, state.serial, file_digest(data))


class Scan(NamedTuple):
    """What a journal holds: its sound records, how many torn bytes end it, and the
    digests of the files it was folded into (its fold marks)."""

    records: list[JournalRecord]
    torn_tail: int
    folded: tuple[str, ...] = ()


def encode_record(record: JournalRecord) -> bytes:
    body: dict[str, Any] = {
        "actor": record.actor,
        "changes": [change_to_json(change) for change in record.changes],
        "lineage": record.lineage,
        "serial": record.serial,
        "time": record.time,
    }
    if record.base is not None:
        body["base"] = record.base
    return _frame(body)


def encode_mark(mark: FoldMark) -> bytes:
    return _frame({"folded": mark.digest, "lineage": mark.lineage, "serial": mark.serial})


def _frame(body: dict[str, Any]) -> bytes:
    payload = json.dumps(
        body,
        sort_keys=True,
        ensure_ascii=True,  # one line whatever the names hold
        separators=(",", ":"),
    ).encode()
    digest = hashlib.sha256(payload).hexdigest().encode()
    return b"%s %d %s\n%s\n" % (MAGIC, len(payload), digest, payload)


def scan(data: bytes, path: Path) -> Scan:
    """Every sound record in `data`; a torn last record is counted, anything else refused."""
    # A crash can leave the unsynced end of the last append as zeros (its size made
    # durable before its data, as XFS may): part of the torn tail. No record holds
    # a NUL byte, so none is cut by this.
    whole = len(data)
    data = data.rstrip(b"\0")
    zeros = whole - len(data)
    records: list[JournalRecord] = []
    folded: list[str] = []
    offset = 0
    while offset < len(data):
        span = _payload_span(data, offset, path)
        if span is None:
            return Scan(records, len(data) - offset + zeros, tuple(folded))
        entry = _decode(data[span[0] : span[1]], path, offset)
        if isinstance(entry, FoldMark):
            folded.append(entry.digest)
        elif folded:
            # A fold mark is written only once every change is: a change after one
            # is not from trunksync.
            raise _corrupt(path, offset, "a change follows a fold mark")
        else:
            records.append(entry)
        offset = span[1] + 1
    return Scan(records, zeros, tuple(folded))


def _payload_span(data: bytes, offset: int, path: Path) -> tuple[int, int] | None:
    """Where the sound payload of the record at `offset` starts and ends; None when a
    torn last record starts there; anything else is refused."""
    header_end = data.find(b"\n", offset, offset + MAX_HEADER)
    if header_end < 0:
        if len(data) - offset < MAX_HEADER:
            return None  # a header cut short
        raise _corrupt(path, offset, "no record header")
    header = data[offset:header_end].split(b" ")
    if len(header) != 3 or header[0] != MAGIC or not header[1].isdigit():
        raise _corrupt(path, offset, "not a record header")
    start = header_end + 1
    end = start + int(header[1])
    if end + 1 > len(data):
        if data.find(b"\n", start) >= 0:
            # A payload is one line, and the last byte a torn write loses is its
            # line break: one after the header means more was written after this
            # record, so its length is damaged; dropping it would drop them too.
            raise _corrupt(path, offset, "its length points past the end of the journal")
        return None  # the payload cut short
    payload = data[start:end]
    sound = data[end : end + 1] == b"\n" and (
        hashlib.sha256(payload).hexdigest().encode() == header[2]
    )
    if not sound:
        if end + 1 == len(data):
            return None  # the last write, torn
        raise _corrupt(path, offset, "its checksum does not match")
    return start, end


def _decode(payload: bytes, path: Path, offset: int) -> JournalRecord | FoldMark:
    try:
        data = json.loads(payload)
        entry = _entry(data)
    # RecursionError: a checksummed but deeply nested payload (hand-made) is corrupt too.
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError, RecursionError):
        raise _corrupt(path, offset, "its content is not a state change") from None
    if not isinstance(entry.serial, int) or entry.serial < 1:
        raise _corrupt(path, offset, "its serial is not a positive number")
    return entry


def _entry(data: Any) -> JournalRecord | FoldMark:
    if "folded" in data:
        return FoldMark(str(data["lineage"]), data["serial"], str(data["folded"]))
    changes = tuple(change_from_json(change) for change in data["changes"])
    base = data.get("base")
    return JournalRecord(
        str(data["lineage"]),
        data["serial"],
        str(data["time"]),
        str(data["actor"]),
        changes,
        None if base is None else str(base),
    )


def _corrupt(path: Path, offset: int, why: str) -> StateError:
    return StateError(
        f"state journal {path} is corrupt at byte {offset} ({why}), before its last record, "
        "so it was not written by an interrupted trunksync run; nothing was changed. "
        f"Move it aside (mv {path} {path}.bad) to use the state without its changes; "
        "then `trunksync plan --refresh` shows any trunk created meanwhile as a conflict, "
        "to adopt with `trunksync import NAME ID`"
    )


def read_journal(path: Path) -> Scan:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Scan([], 0)
    except OSError as error:
        raise StateError(
            f"cannot read the state journal {path}: {printable(error.strerror or str(error))}"
        ) from None
    return scan(data, path)


def holds_records(path: Path) -> bool:
    """Whether a journal exists and holds a sound record; a damaged one counts as
    holding some, so that reading the state reports the damage."""
    if not path.exists():
        return False
    try:
        return bool(read_journal(path).records)
    except StateError:
        return True


def replay(store: StateStore, file: FileSnapshot, pending: Scan) -> tuple[State, int]:
    """The file with the journal's unfolded records applied, in memory; and how many
    records that was. Refuses a foreign lineage, a gap, or a journal written on top of
    another version of the file."""
    path = store.journal_path
    state = _starting_state(file.state, pending.records, path)
    records = _checked(pending.records, state.lineage, path)
    if not records:
        return state, 0
    if records[0].base is None:
        # Written by a trunksync before base digests: the serials are all there is to
        # go by, and records the file has are taken as folded before.
        records = [record for record in records if record.serial > state.serial]
    else:
        digest = file.digest()
        if digest != records[0].base:
            if digest in pending.folded:
                return state, 0  # folded into this very file; the fold died before the unlink
            raise _divergent(store, records)
    for record in records:
        if record.serial != state.serial + 1:
            raise _gap(path, state.serial + 1, record.serial)
        apply_changes(state, record.changes)
        state.serial = record.serial
    return state, len(records)


def _starting_state(base: State | None, records: Sequence[JournalRecord], path: Path) -> State:
    """A copy of the file's state to apply records to; with no file (a first run that
    crashed before its first fold), an empty one of the journal's lineage."""
    if base is not None:
        return base.model_copy(
            update={
                "trunks": dict(base.trunks),
                "intents": dict(base.intents),
                "retired": dict(base.retired),
            }
        )
    if not records:
        return State.new()
    try:
        return State(format_version=FORMAT_VERSION, lineage=records[0].lineage, serial=0)
    except ValidationError:
        raise _corrupt(path, 0, "its lineage is not one") from None


def _checked(records: list[JournalRecord], lineage: str, path: Path) -> list[JournalRecord]:
    """`records`, refused unless all are of `lineage` with consecutive serials."""
    for index, record in enumerate(records):
        if record.lineage != lineage:
            raise StateError(
                f"state journal {path} belongs to lineage {printable(record.lineage)}, "
                f"but the state has lineage {lineage}: the state file was replaced. "
                f"Restore the matching file, or move the journal aside (mv {path} {path}.bad); "
                "nothing was changed"
            )
        if index and record.serial != records[index - 1].serial + 1:
            raise _gap(path, records[index - 1].serial + 1, record.serial)
    return records


def _gap(path: Path, expected: int, found: int) -> StateError:
    return StateError(
        f"state journal {path} continues at serial {found} but the state needs {expected} "
        "next: the journal and the state file do not belong together (an older or newer "
        f"copy of one of them). Restore the matching pair, or move the journal aside "
        f"(mv {path} {path}.bad); nothing was changed"
    )


def _divergent(store: StateStore, records: Sequence[JournalRecord]) -> StateError:
    journal, file = store.journal_path, store.path
    return StateError(
        f"state journal {journal} holds changes of an interrupted run (serials "
        f"{records[0].serial}-{records[-1].serial}: {_what(records)}) that were written on "
        f"top of another version of {file} than the one there now (it was replaced since, "
        "e.g. by a git pull or checkout), so they are in neither; nothing was changed. "
        f"Either put back the {file} they were written on and run `trunksync apply` to fold "
        f"them, then merge; or move the journal aside (mv {journal} {journal}.bad) and run "
        "`trunksync apply`, which reports each trunk they recorded as a conflict to import"
    )


def _what(records: Sequence[JournalRecord], most: int = 5) -> str:
    """The trunk ids `records` record and the intents they leave open, in words."""
    ids: list[str] = []
    open_intents: dict[str, None] = {}  # ordered
    for change in (change for record in records for change in record.changes):
        if isinstance(change, RecordIntent):
            open_intents[change.name] = None
        elif isinstance(change, (RecordId, ForgetIntent)):
            open_intents.pop(change.name, None)
            if isinstance(change, RecordId):
                ids.append(change.record.trunk_id)
    parts = [
        f"{kind} {', '.join(printable(item) for item in items[:most])}"
        + (f" and {len(items) - most} more" if len(items) > most else "")
        for kind, items in (("trunk ids", ids), ("open intents for", list(open_intents)))
        if items
    ]
    return "; ".join(parts) or "no trunk id and no open intent"


def replay_pending(store: StateStore, file: FileSnapshot) -> State:
    """What a reader sees: the file with a crash's journal replayed, nothing written."""
    state, _ = replay(store, file, read_journal(store.journal_path))
    return state


def fold_pending(store: StateStore, command: str) -> None:
    """Under the lock: fold a journal a crash left into the file, then remove it.

    The order keeps every step recoverable: the fold mark (fsynced) before the file,
    the file before the history, the history before the journal goes.
    """
    if not store.journal_path.exists():
        return
    pending = read_journal(store.journal_path)
    state, applied = replay(store, store.read_snapshot(), pending)
    if applied:
        store.refuse_moved(state)
        data = state.to_json()
        mark_folded(store, pending.torn_tail, FoldMark.of(state, data))
        store.write_bytes(data)
        folded = pending.records[-applied:]
        summary = summarize(folded, state) + f" (folded after an interrupted run by {actor()})"
        append_history(store, state.serial, summary, who=folded[-1].actor)
    remove_journal(store)


def mark_folded(store: StateStore, torn_tail: int, mark: FoldMark) -> None:
    """Append `mark` to a crash's journal, first cutting off its torn tail (which
    would otherwise sit before the mark and read as corruption)."""
    path = store.journal_path
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            end = os.fstat(fd).st_size - torn_tail
            os.ftruncate(fd, end)
            os.lseek(fd, end, os.SEEK_SET)
            _write_all(fd, encode_mark(mark))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise StateError(
            f"cannot write the state journal {path}: {printable(error.strerror or str(error))}; "
            "nothing was folded, and the next command tries again"
        ) from None


def remove_journal(store: StateStore) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            store.journal_path.unlink()
        fsync_dir(store.journal_path.parent)
    except OSError as error:
        raise StateError(
            f"cannot remove the state journal {store.journal_path}: "
            f"{printable(error.strerror or str(error))}; it is folded already, "
            "and the next command skips what it holds"
        ) from None


class JournalWriter:
    """Appends records to one journal for the duration of a lock."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._fd: int | None = None
        self.created = False  # whether this writer created the journal file
        self._size = 0
        self._broken: str | None = None
        self._mutex = threading.Lock()

    def append(self, data: bytes) -> None:
        """Write and fsync one record; on failure the journal is cut back to what it was."""
        with self._mutex:
            if self._broken is not None:
                raise StateError(self._broken)
            path = self._store.journal_path
            try:
                if self._fd is None:
                    self._fd = create_file(
                        path, os.O_WRONLY | os.O_APPEND | os.O_EXCL, like=self._store.real_path
                    )
                    self.created = True
                    fsync_dir(path.parent)
                _write_all(self._fd, data)
                os.fsync(self._fd)
            except OSError as error:
                reason = printable(error.strerror or str(error))
                self._cut_back(reason)
                raise StateError(
                    f"cannot write the state journal {path}: {reason}; this change is not "
                    "recorded, and the next apply resolves any create in flight"
                ) from None
            self._size += len(data)

    def _cut_back(self, reason: str) -> None:
        # A partial record followed by a later one would read as corruption:
        # remove it now, or refuse every later append.
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError:
            self._broken = (
                f"the state journal {self._store.journal_path} could not be written ({reason}) "
                "and not be repaired; no further change is recorded in this run"
            )

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# --- history ----------------------------------------------------------------------------------


def summarize(records: Sequence[JournalRecord], state: State) -> str:
    """What a fold changed, in words: "3 recorded, 1 forgotten"."""
    counts: Counter[str] = Counter()
    for record in records:
        for change in record.changes:
            if isinstance(change, RecordId):
                counts["recorded"] += 1
                if change.retires:
                    counts["retired"] += 1
            elif isinstance(change, ForgetTrunk):
                counts["forgotten"] += 1
            elif isinstance(change, Retire):
                counts["retired"] += 1
            elif isinstance(change, Unretire):
                counts["deactivated"] += 1
    kinds = ("recorded", "forgotten", "retired", "deactivated")
    parts = [f"{counts[kind]} {kind}" for kind in kinds if counts[kind]]
    if state.intents:
        parts.append(f"{len(state.intents)} intents open")
    return ", ".join(parts) or "no trunk changed"


def append_history(store: StateStore, serial: int, summary: str, who: str | None = None) -> None:
    """One JSON line per fold in `trunks.json.history` (append-only, best effort to read).

    `who`: the actor that made the changes, when not this process (a crashed run's).
    """
    line = json.dumps(
        {"actor": who or actor(), "serial": serial, "summary": summary, "time": utc_now()},
        sort_keys=True,
        ensure_ascii=True,
    )
    try:
        fd = create_file(store.history_path, os.O_WRONLY | os.O_APPEND, like=store.real_path)
        try:
            _write_all(fd, line.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise StateError(
            f"cannot write the state history {store.history_path}: "
            f"{printable(error.strerror or str(error))}; the state itself is written"
        ) from None


def read_history(store: StateStore, limit: int) -> list[HistoryEntry]:
    """The newest `limit` history entries, newest first (unreadable lines are skipped)."""
    try:
        lines = store.history_path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise StateError(
            f"cannot read the state history {store.history_path}: "
            f"{printable(error.strerror or str(error))}"
        ) from None
    entries: list[HistoryEntry] = []
    for line in reversed(lines):
        if len(entries) >= limit:
            break
        entry = _history_entry(line)
        if entry is not None:
            entries.append(entry)
    return entries


def _history_entry(line: bytes) -> HistoryEntry | None:
    try:
        data: Any = json.loads(line)
        return HistoryEntry(
            int(data["serial"]),
            printable(str(data["time"])),
            printable(str(data["actor"])),
            printable(str(data["summary"])),
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        return None  # a line torn by a crash, or not ours: history is informative only
