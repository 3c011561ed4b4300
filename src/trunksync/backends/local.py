"""The local file backend: state/trunks.json, the reviewable file kept in git.

(Interim version: every commit rewrites the whole file through StateStore.
The journaled O(1)-per-change version replaces the internals, not the seam.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from trunksync.backends.base import BackendIdentity, HistoryEntry
from trunksync.changes import StateChange, apply_changes
from trunksync.errors import StateError
from trunksync.state import State, StateStore


class _LockedFile:
    def __init__(self, store: StateStore, state: State, existed: bool) -> None:
        self._store = store
        self._state = state
        self._existed = existed

    @property
    def state(self) -> State:
        return self._state

    @property
    def existed(self) -> bool:
        return self._existed

    def commit(self, changes: Sequence[StateChange]) -> None:
        candidate = self._state.model_copy(deep=True)
        # The copy's encoding cache is keyed by id() of the ORIGINAL records,
        # which may be freed and their ids reused: start it empty (engine
        # helper's interim fix; the journaled backend replaces this file).
        candidate._fragments = {}
        apply_changes(candidate, changes)
        self._store.save(candidate)
        self._state = candidate


class LocalBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = StateStore(path)

    def identity(self) -> BackendIdentity:
        return BackendIdentity("local", str(self.path.resolve()))

    def exists(self) -> bool:
        return self._store.exists()

    def load(self) -> State:
        return self._store.load()

    @contextlib.contextmanager
    def lock(self, *, timeout: float, command: str) -> Iterator[_LockedFile]:
        with self._store.locked(timeout, command):
            existed = self._store.exists()
            yield _LockedFile(self._store, self._store.load(), existed)

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        return []

    def seed(self, state: State, *, command: str) -> None:
        with self._store.locked(0, command):
            if self._store.exists():
                raise StateError(
                    f"state {self.path} already exists: migrate only into an empty one"
                )
            self._store.write_bytes(state.to_json())

    def mark_moved(self, to: BackendIdentity, *, command: str) -> None:
        raise StateError("not supported yet")
