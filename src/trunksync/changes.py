"""Typed, immutable state changes: the unit a state backend makes durable.

The apply engine (and import, state rm/mv, adoption) never edits a State in
place; it describes what happened as a change, hands a batch of them to the
backend, and the backend makes the batch durable as one unit (one journal
record, one transaction) before anyone reports it. `apply_changes` is the one
function that turns changes into a new in-memory state, used by every backend
when it replays, folds or commits, so all backends agree on what a change means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trunksync.state import Intent, RetiredTrunk, State, TrunkRecord


@dataclass(frozen=True)
class RecordIntent:
    """A create is about to be sent for `name` (the write-ahead rule)."""

    name: str
    intent: Intent


@dataclass(frozen=True)
class RecordId:
    """`name` is the trunk `record.trunk_id`; closes the name's intent.

    `retires` is the id of the trunk it replaces (retired in the same change).
    """

    name: str
    record: TrunkRecord
    retires: str | None = None
    since: str | None = None  # when retired; set with `retires`


@dataclass(frozen=True)
class ForgetIntent:
    """The create for `name` surely did not happen (or was refused)."""

    name: str


@dataclass(frozen=True)
class ForgetTrunk:
    """`name` no longer maps to `trunk_id` (pruned, or `state rm`)."""

    name: str
    trunk_id: str


@dataclass(frozen=True)
class Retire:
    """A trunk replaced earlier, still to be deactivated on the platform."""

    trunk_id: str
    retired: RetiredTrunk


@dataclass(frozen=True)
class Unretire:
    """A retired trunk is deactivated at last: forget it."""

    trunk_id: str


StateChange = RecordIntent | RecordId | ForgetIntent | ForgetTrunk | Retire | Unretire


def apply_change(state: State, change: StateChange) -> None:
    """Apply one change to `state` in memory (the backend owns when it is durable)."""
    if isinstance(change, RecordIntent):
        state.intents[change.name] = change.intent
    elif isinstance(change, RecordId):
        state.trunks[change.name] = change.record
        state.intents.pop(change.name, None)
        if change.retires and change.retires != change.record.trunk_id:
            state.retired[change.retires] = RetiredTrunk(
                name=change.name, since=change.since or change.record.created_at
            )
    elif isinstance(change, ForgetIntent):
        state.intents.pop(change.name, None)
    elif isinstance(change, ForgetTrunk):
        record = state.trunks.get(change.name)
        if record is not None and record.trunk_id == change.trunk_id:
            del state.trunks[change.name]
    elif isinstance(change, Retire):
        state.retired[change.trunk_id] = change.retired
    elif isinstance(change, Unretire):
        state.retired.pop(change.trunk_id, None)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a state change: {change!r}")


def apply_changes(state: State, changes: Iterable[StateChange]) -> None:
    for change in changes:
        apply_change(state, change)


def change_to_json(change: StateChange) -> dict[str, Any]:
    """A change as JSON (journal records, PostgreSQL history): never holds a secret."""
    kind = type(change).__name__
    if isinstance(change, RecordIntent):
        return {"kind": kind, "name": change.name, "intent": change.intent.model_dump()}
    if isinstance(change, RecordId):
        return {
            "kind": kind,
            "name": change.name,
            "record": change.record.model_dump(),
            "retires": change.retires,
            "since": change.since,
        }
    if isinstance(change, ForgetIntent):
        return {"kind": kind, "name": change.name}
    if isinstance(change, ForgetTrunk):
        return {"kind": kind, "name": change.name, "trunk_id": change.trunk_id}
    if isinstance(change, Retire):
        return {"kind": kind, "trunk_id": change.trunk_id, "retired": change.retired.model_dump()}
    return {"kind": kind, "trunk_id": change.trunk_id}


def change_from_json(data: dict[str, Any]) -> StateChange:
    """The inverse of change_to_json; raises ValueError/KeyError/pydantic errors on bad input."""
    kind = data["kind"]
    if kind == "RecordIntent":
        return RecordIntent(str(data["name"]), Intent.model_validate(data["intent"]))
    if kind == "RecordId":
        return RecordId(
            str(data["name"]),
            TrunkRecord.model_validate(data["record"]),
            data.get("retires"),
            data.get("since"),
        )
    if kind == "ForgetIntent":
        return ForgetIntent(str(data["name"]))
    if kind == "ForgetTrunk":
        return ForgetTrunk(str(data["name"]), str(data["trunk_id"]))
    if kind == "Retire":
        return Retire(str(data["trunk_id"]), RetiredTrunk.model_validate(data["retired"]))
    if kind == "Unretire":
        return Unretire(str(data["trunk_id"]))
    raise ValueError(f"unknown state change kind {kind!r}")
