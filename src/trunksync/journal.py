"""Durable, batched state updates for a running apply (group commit).

Each worker changes the in-memory state and then waits until a write that
includes its change has reached the disk. Whoever finds no write in progress
does the write for everyone waiting, so N changes that complete together cost
one fsync, not N, and no id is ever reported before it is durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from trunksync.state import State, StateStore

Mutation = Callable[[State], object]  # the return value is ignored
T = TypeVar("T")


class Journal:
    def __init__(self, store: StateStore, state: State) -> None:
        self._store = store
        self._state = state
        self._cond = threading.Condition()
        self._version = 0  # changes made in memory
        self._durable = 0  # changes known to be on disk
        self._writing = False
        self._failure: BaseException | None = None

    @property
    def state(self) -> State:
        return self._state

    def read(self, query: Callable[[State], T]) -> T:
        """Run `query` on the state while no other thread changes it."""
        with self._cond:
            return query(self._state)

    def commit(self, mutation: Mutation) -> None:
        """Apply `mutation` and return once it is durable (or raise why it is not)."""
        with self._cond:
            mutation(self._state)
            self._version += 1
            mine = self._version
            while self._durable < mine:
                if self._failure is not None:
                    raise self._failure
                if self._writing:
                    self._cond.wait()
                else:
                    self._write_batch()

    def _write_batch(self) -> None:
        # Called with the condition held; the disk write itself runs without it
        # so that other workers can queue their changes meanwhile.
        self._writing = True
        target = self._version
        self._state.serial += 1
        data = self._state.to_json()
        self._cond.release()
        try:
            self._store.write_bytes(data)
        except BaseException as error:
            self._failure = error
        finally:
            self._cond.acquire()
            self._writing = False
            if self._failure is None:
                self._durable = target
            self._cond.notify_all()
