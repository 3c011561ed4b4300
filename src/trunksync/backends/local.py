"""The local file backend: state/trunks.json, the reviewable file kept in git.

Under the lock, each `commit` appends one fsynced record to the journal beside
the file (O(batch), whatever the size of the state) and applies the batch to
the in-memory state; the journal is folded into trunks.json once, when the
lock's block ends (normally, on an error, on Ctrl-C or a SIGTERM turned into
an exception). A crash leaves the journal: readers replay it in memory, and the
next lock folds it first (see `filejournal`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from trunksync.backends import filejournal
from trunksync.backends.base import BackendIdentity, HistoryEntry
from trunksync.changes import StateChange, apply_changes
from trunksync.errors import StateError
from trunksync.runner import actor
from trunksync.state import State, StateStore, utc_now


class _LockedFile:
    """The state held under the lock; commits go to the journal."""

    def __init__(self, store: StateStore, state: State, existed: bool, base: str) -> None:
        self._store = store
        self._state = state
        self._existed = existed
        # The digest of the trunks.json this run's journal is written on: a reader
        # replays the journal only on top of exactly that file (see filejournal).
        self._base = base
        self._writer = filejournal.JournalWriter(store)
        self._actor = actor()
        self._committed: list[filejournal.JournalRecord] = []
        self._mutex = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    @property
    def existed(self) -> bool:
        return self._existed

    def commit(self, changes: Sequence[StateChange]) -> None:
        """Append the batch as one journal record, fsync it, then apply it in memory."""
        if not changes:
            return
        with self._mutex:
            record = filejournal.JournalRecord(
                self._state.lineage,
                self._state.serial + 1,
                utc_now(),
                self._actor,
                tuple(changes),
                None if self._committed else self._base,  # the journal's first record
            )
            self._writer.append(filejournal.encode_record(record))
            apply_changes(self._state, changes)
            self._state.serial = record.serial
            self._committed.append(record)

    def fold(self) -> None:
        """Write trunks.json once with every committed change, then drop the journal.

        The journal first gets a fold mark naming the new file's bytes: a crash
        between the write and the unlink leaves a journal that readers then know
        is folded into that file, and not written on another one.
        """
        with self._mutex:
            if not self._committed:
                self._writer.close()
                if self._writer.created:  # a first append failed and was cut back to nothing
                    filejournal.remove_journal(self._store)
                return
            data = self._state.to_json()
            mark = filejournal.FoldMark.of(self._state, data)
            try:
                self._writer.append(filejournal.encode_mark(mark))
            finally:
                self._writer.close()
            self._store.write_bytes(data)
            filejournal.append_history(
                self._store,
                self._state.serial,
                filejournal.summarize(self._committed, self._state),
            )
            filejournal.remove_journal(self._store)
            self._committed = []


class LocalBackend:
    """A state file (default state/trunks.json); symlinks followed, the link kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = StateStore(path)
        # True while this object holds the lock: `state migrate` marks the source as
        # moved under the lock it already holds (a second flock would conflict with it).
        self._holding = False

    def identity(self) -> BackendIdentity:
        # The path as given, normalised, not resolved: a saved plan is made in one CI
        # job's checkout and applied in another's, at another absolute path. The
        # state's lineage and serial pin the file itself.
        return BackendIdentity("local", os.path.normpath(self.path))

    def exists(self) -> bool:
        return self._store.exists()

    def load(self) -> State:
        return self._store.load()

    @contextlib.contextmanager
    def lock(
        self, *, timeout: float, command: str, on_locked: Callable[[], None] | None = None
    ) -> Iterator[_LockedFile]:
        with self._store.locked(timeout, command):
            if on_locked is not None:
                on_locked()
            existed = self._store.exists()
            state, file = self._store.load_with_file()
            locked = _LockedFile(self._store, state, existed, file.digest())
            self._holding = True
            try:
                yield locked
            except BaseException:
                # The journal keeps every committed change if this fold fails too:
                # the next command folds it. The first error is the one to report.
                with contextlib.suppress(StateError):
                    locked.fold()
                raise
            finally:
                self._holding = False
            locked.fold()

    def _locked(self, command: str) -> contextlib.AbstractContextManager[None]:
        """The lock, unless this object holds it already."""
        return contextlib.nullcontext() if self._holding else self._store.locked(0, command)

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        return filejournal.read_history(self._store, limit)

    def seed(self, state: State, *, command: str) -> None:
        with self._locked(command):
            if self._store.exists():
                raise StateError(
                    f"state {self.path} already exists: migrate only into an empty one "
                    "(nothing was changed)"
                )
            seeded = state.model_copy(update={"moved_to": None})
            self._store.write_bytes(seeded.to_json())
            filejournal.append_history(self._store, seeded.serial, "migrated in")

    def moved_state(self) -> State | None:
        # Marked under the lock, which folds any journal first: the file is all of it.
        found = self._store.read_file()
        return found if found is not None and found.moved_to is not None else None

    def mark_moved(self, to: BackendIdentity, *, command: str) -> None:
        with self._locked(command):
            current = self._store.read_file()
            if current is None:
                raise StateError(f"state {self.path} does not exist: there is nothing to move")
            self._store.refuse_moved(current)
            moved = current.model_copy(update={"moved_to": str(to)})
            self._store.write_bytes(moved.to_json())
            filejournal.append_history(self._store, moved.serial, f"moved to {to}")
