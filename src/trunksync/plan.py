"""The plan: a pure function of (desired trunks, state). No I/O here.

Actions:
- create:  in the file, not in the state; apply creates it.
- noop:    in both, and unchanged since it was applied.
- changed: in both, but the file differs from what was applied. The API has
           no update call, so this is reported field by field, never applied.
- orphan:  in the state, gone from the file; left alone and reported.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

from trunksync import fingerprints
from trunksync.config import Desired, DesiredTrunk
from trunksync.state import State, TrunkRecord

CREATE, NOOP, CHANGED, ORPHAN = "create", "noop", "changed", "orphan"
ACTIONS = (CREATE, CHANGED, ORPHAN, NOOP)
SENSITIVE = "(sensitive)"


class FieldChange(NamedTuple):
    """One config field that differs; secrets never carry their values here."""

    field: str
    before: Any
    after: Any
    sensitive: bool = False


class Change(NamedTuple):
    name: str
    action: str
    trunk_type: str
    trunk_id: str | None
    fields: tuple[FieldChange, ...]
    desired: DesiredTrunk | None
    note: str | None = None


class Plan(NamedTuple):
    changes: tuple[Change, ...]

    def summary(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
        return {action: counts.get(action, 0) for action in ACTIONS}

    def creates(self) -> list[Change]:
        return [change for change in self.changes if change.action == CREATE]

    @property
    def has_changes(self) -> bool:
        """Whether the file and the state disagree in any way."""
        return any(change.action != NOOP for change in self.changes)


def compute_plan(desired: Desired, state: State) -> Plan:
    """Compare every desired trunk with its record; file order, then orphans by name."""
    changes = [_compare(trunk, state) for trunk in desired.trunks]
    wanted = {trunk.name for trunk in desired.trunks}
    for name in sorted(set(state.trunks) - wanted):
        record = state.trunks[name]
        changes.append(Change(name, ORPHAN, record.trunk_type, record.trunk_id, (), None))
    return Plan(tuple(changes))


def _compare(trunk: DesiredTrunk, state: State) -> Change:
    record = state.trunks.get(trunk.name)
    if record is None:
        return _create(trunk, state)
    differences = field_differences(trunk, record)
    action = CHANGED if differences else NOOP
    note = "the API cannot update a trunk: not applied" if differences else None
    return Change(trunk.name, action, trunk.trunk_type, record.trunk_id, differences, trunk, note)


def _create(trunk: DesiredTrunk, state: State) -> Change:
    fields = [FieldChange(key, None, value) for key, value in sorted(trunk.config.items())]
    fields += [FieldChange(key, None, SENSITIVE, True) for key in sorted(trunk.secrets)]
    intent = state.intents.get(trunk.name)
    note = None
    if intent is not None:
        note = (
            f"a create sent at {intent.started_at} has an unknown outcome; "
            "apply checks the platform before creating again"
        )
    return Change(trunk.name, CREATE, trunk.trunk_type, None, tuple(fields), trunk, note)


def field_differences(trunk: DesiredTrunk, record: TrunkRecord) -> tuple[FieldChange, ...]:
    """What differs between the file and what was applied, field by field."""
    if (
        trunk.config == record.config
        and trunk.trunk_type == record.trunk_type
        and _secrets_match(trunk, record)
    ):
        return ()  # the common case, decided without building anything
    differences: list[FieldChange] = []
    if trunk.trunk_type != record.trunk_type:
        differences.append(FieldChange("trunk_type", record.trunk_type, trunk.trunk_type))
    for key in sorted(trunk.config.keys() | record.config.keys()):
        before, after = record.config.get(key), trunk.config.get(key)
        if before != after:
            differences.append(FieldChange(key, before, after))
    for key in sorted(trunk.secrets.keys() | record.secret_fingerprints.keys()):
        if not _secret_matches(trunk, record, key):
            before = SENSITIVE if key in record.secret_fingerprints else None
            after = SENSITIVE if key in trunk.secrets else None
            differences.append(FieldChange(key, before, after, True))
    return tuple(differences)


def _secrets_match(trunk: DesiredTrunk, record: TrunkRecord) -> bool:
    if trunk.secrets.keys() != record.secret_fingerprints.keys():
        return False
    return all(_secret_matches(trunk, record, key) for key in trunk.secrets)


def _secret_matches(trunk: DesiredTrunk, record: TrunkRecord, key: str) -> bool:
    secret, recorded = trunk.secrets.get(key), record.secret_fingerprints.get(key)
    if secret is None or recorded is None:
        return secret is None and recorded is None
    return fingerprints.matches(secret.get_secret_value(), recorded)
