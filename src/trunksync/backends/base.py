"""The state-backend seam: load, lock, make changes durable, history, identity.

A backend never hands out a mutable State that it will write later: readers
get a snapshot, and writes go through `LockedState.commit(changes)`, which
returns only once the batch is durable and fenced (a compare-and-swap on the
serial, or the lock's own connection), so a runner that lost its lock can
never write again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol

from trunksync.changes import StateChange
from trunksync.state import State


class BackendIdentity(NamedTuple):
    """What a backend is, never with a credential: recorded in saved plans.

    kind: "local" or "postgresql"; location: the resolved file path, or
    host:port/dbname (no user, no password); workspace: the named state.
    """

    kind: str
    location: str
    workspace: str = "default"

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    def __str__(self) -> str:
        suffix = "" if self.workspace == "default" else f" (workspace {self.workspace})"
        return f"{self.kind} {self.location}{suffix}"


class HistoryEntry(NamedTuple):
    """One durable change batch: its serial, when, who, and what (no secrets)."""

    serial: int
    time: str
    actor: str
    summary: str


class LockedState(Protocol):
    """A state held under the backend's lock, for the duration of a `with` block."""

    @property
    def state(self) -> State:
        """The current state, with every committed change applied (do not mutate it)."""

    @property
    def existed(self) -> bool:
        """Whether a state existed before this lock was taken (False: a new, empty one)."""

    def commit(self, changes: Sequence[StateChange]) -> None:
        """Make `changes` durable as one unit, then apply them to `state`.

        Raises StateError when it cannot (disk, connection, lost lock): then
        nothing of the batch counts as durable.
        """


class StateBackend(Protocol):
    def identity(self) -> BackendIdentity: ...

    def exists(self) -> bool: ...

    def load(self) -> State:
        """A snapshot for reading (a crash's journal replayed in memory, nothing written)."""
        ...

    def lock(
        self, *, timeout: float, command: str, on_locked: Callable[[], None] | None = None
    ) -> AbstractContextManager[LockedState]:
        """Hold the lock (waiting up to `timeout` s, then LockError naming the holder).

        `on_locked` is called once the lock is held, before the state is read: apply
        asks the platform for its list then, so the two overlap."""
        ...

    def history(self, limit: int = 50) -> list[HistoryEntry]: ...

    def seed(self, state: State, *, command: str) -> None:
        """`state migrate`: take `state` whole, keeping lineage and serial.

        Refuses (StateError) when this backend already holds a state.
        """
        ...

    def mark_moved(self, to: BackendIdentity, *, command: str) -> None:
        """`state migrate`: this copy moved to `to`; every later lock is refused,
        so two live copies never share a lineage."""
        ...

    def moved_state(self) -> State | None:
        """The state as `mark_moved` froze it, with `moved_to` set (no lock needed:
        every lock of it is refused), or None while it is live. An interrupted
        `state migrate` resumes from it."""
        ...
