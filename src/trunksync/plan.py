"""The plan: a pure function of (desired trunks, state[, remote list]). No I/O.

Actions:
- create:   in the file, not in the state; apply creates it.
- noop:     in both, and unchanged since it was applied.
- changed:  in both, but the file differs from what was applied. The API has
            no update call, so this is reported field by field, never applied.
- orphan:   in the state, gone from the file; left alone and reported.
With the remote list (plan --refresh, and always in apply):
- recreate: in the state, but deactivated outside trunksync; apply creates a new one.
- adopt:    a create whose outcome was unknown did create this trunk; it is recorded.
- conflict: not in the state, but the platform has an active trunk of this name
            that the state does not know (or several candidates); not created.
Behind explicit flags:
- replace:  (--replace NAME) create a new trunk, record it, deactivate the old one.
- prune:    (--prune) deactivate an orphan and forget it.
And always:
- retire:   a trunk replaced earlier whose deactivation has not succeeded yet.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

from trunksync import fingerprints
from trunksync.config import Desired, DesiredTrunk
from trunksync.diffs import ItemChange, is_nested, item_changes
from trunksync.errors import TrunksyncError
from trunksync.reconcile import (
    ABSENT,
    ADOPT,
    AMBIGUOUS,
    RemoteTrunk,
    ambiguity_message,
    foreign_message,
    resolve_intent,
)
from trunksync.state import Intent, State, TrunkRecord

CREATE, NOOP, CHANGED, ORPHAN = "create", "noop", "changed", "orphan"
RECREATE, ADOPTED, CONFLICT = "recreate", "adopt", "conflict"
REPLACE, PRUNE, RETIRE = "replace", "prune", "retire"
ACTIONS = (CREATE, RECREATE, REPLACE, ADOPTED, CHANGED, CONFLICT, PRUNE, RETIRE, ORPHAN, NOOP)
APPLIED = (CREATE, RECREATE, REPLACE, PRUNE, RETIRE)  # the actions apply carries out
CREATING = (CREATE, RECREATE, REPLACE)
DEACTIVATING = (REPLACE, PRUNE)  # what the safety threshold counts
# What apply would change (Terraform's -detailed-exitcode 2): an adopt writes the state.
WOULD_CHANGE = (CREATE, RECREATE, REPLACE, PRUNE, RETIRE, ADOPTED)
# Entries that need a person but that apply leaves alone: shown as warnings, never hidden.
NEEDS_A_PERSON = (CHANGED, CONFLICT, ORPHAN)
SENSITIVE = "(sensitive)"
# A secret field whose variable was not set (plan --allow-missing-secrets): never a change.
UNKNOWN_SECRET = "(unknown: not set)"
SECRETS_UNCHECKED = (
    "secrets were not set (missing variables were allowed): changed secrets could not be checked"
)
# As octoDNS: the threshold only applies once there is something to protect.
SAFETY_MIN_MANAGED = 10
DEFAULT_MAX_DEACTIVATE_SHARE = 0.3


class PlanOptions(NamedTuple):
    """What the user asked for beyond the default plan (all explicit flags)."""

    targets: frozenset[str] = frozenset()
    replace: frozenset[str] = frozenset()
    prune: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": sorted(self.targets),
            "replace": sorted(self.replace),
            "prune": self.prune,
        }


class FieldChange(NamedTuple):
    """One config field that differs; secrets never carry their values here.

    `items` details a list or an object that differs item by item (which
    numbers were added or removed, or that only their order changed); it is
    empty for a replaced scalar, a created field and a secret.
    """

    field: str
    before: Any
    after: Any
    sensitive: bool = False
    items: tuple[ItemChange, ...] = ()


class Change(NamedTuple):
    name: str
    action: str
    trunk_type: str
    trunk_id: str | None
    fields: tuple[FieldChange, ...]
    desired: DesiredTrunk | None
    note: str | None = None


class PlanWarning(NamedTuple):
    """Something that needs a person although apply leaves it alone.

    `name` and `action` are None for a warning about the whole plan.
    """

    name: str | None
    action: str | None
    message: str


class Plan(NamedTuple):
    changes: tuple[Change, ...]
    # True when secret values were unknown (not set): their changes could not be checked.
    secrets_unchecked: bool = False

    def summary(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
        return {action: counts.get(action, 0) for action in ACTIONS}

    def creates(self) -> list[Change]:
        """The changes apply carries out (creates, replacements, deactivations)."""
        return [change for change in self.changes if change.action in APPLIED]

    @property
    def has_changes(self) -> bool:
        """Whether the file and the state disagree in any way."""
        return any(change.action != NOOP for change in self.changes)

    @property
    def would_change(self) -> bool:
        """Whether apply would change something (a trunk or the state)."""
        return any(change.action in WOULD_CHANGE for change in self.changes)

    def warnings(self) -> list[PlanWarning]:
        """What needs a person but that apply leaves alone, in plan order."""
        found = [
            PlanWarning(change.name, change.action, _warning_message(change))
            for change in self.changes
            if change.action in NEEDS_A_PERSON
        ]
        if self.secrets_unchecked:
            found.insert(0, PlanWarning(None, None, SECRETS_UNCHECKED))
        return found


def _warning_message(change: Change) -> str:
    if change.action == CHANGED:
        return (
            "differs from what was applied; apply leaves it alone "
            "(the API cannot update a trunk: --replace NAME recreates it)"
        )
    if change.action == ORPHAN:
        return "in the state, not in the file; apply leaves it alone (--prune deactivates it)"
    return (
        "the platform has an active trunk of this name that the state does not know; "
        "apply does not create it (trunksync import adopts it)"
    )


class _Remote(NamedTuple):
    trunks: list[RemoteTrunk]
    active_ids: set[str]
    known_ids: set[str]
    unknown_by_name: dict[str, list[RemoteTrunk]]  # active trunks the state does not know

    @classmethod
    def of(cls, remote: list[RemoteTrunk], state: State) -> _Remote:
        known = state.known_ids()
        unknown: dict[str, list[RemoteTrunk]] = {}
        for trunk in remote:
            if trunk.trunk_id not in known:
                unknown.setdefault(trunk.trunk_name, []).append(trunk)
        return cls(remote, {t.trunk_id for t in remote}, known, unknown)


DEFAULT_OPTIONS = PlanOptions()


def compute_plan(
    desired: Desired,
    state: State,
    remote: list[RemoteTrunk] | None = None,
    options: PlanOptions = DEFAULT_OPTIONS,
) -> Plan:
    """Compare every desired trunk with its record; file order, then the state's leftovers."""
    secrets_unchecked = desired.secrets_unchecked
    view = None if remote is None else _Remote.of(remote, state)
    wanted = [t for t in desired.trunks if not options.targets or t.name in options.targets]
    changes = [_compare(trunk, state, view, options) for trunk in wanted]
    names = {trunk.name for trunk in desired.trunks}
    for name in sorted(set(state.trunks) - names):
        if not options.targets or name in options.targets:
            changes.append(_orphan(name, state.trunks[name], view, options.prune))
    for trunk_id, retired in sorted(state.retired.items()):
        if not options.targets or retired.name in options.targets:
            note = "replaced earlier; its deactivation has not succeeded yet"
            changes.append(Change(retired.name, RETIRE, "", trunk_id, (), None, note))
    return Plan(tuple(changes), secrets_unchecked)


def _orphan(name: str, record: TrunkRecord, view: _Remote | None, prune: bool) -> Change:
    gone = view is not None and record.trunk_id not in view.active_ids
    note = "already deactivated on the platform" if gone else None
    if prune:
        return Change(name, PRUNE, record.trunk_type, record.trunk_id, (), None, note)
    return Change(name, ORPHAN, record.trunk_type, record.trunk_id, (), None, note)


def check_safety(
    plan: Plan, state: State, max_share: float = DEFAULT_MAX_DEACTIVATE_SHARE, force: bool = False
) -> None:
    """Refuse a plan that deactivates, or recreates, too large a share of the managed trunks."""
    if force:
        return
    managed = len(state.trunks)
    _check_recreates(plan, managed, max_share)
    count = sum(1 for change in plan.changes if change.action in DEACTIVATING)
    if count == 0 or managed < SAFETY_MIN_MANAGED or count <= max_share * managed:
        return
    raise TrunksyncError(
        f"refusing to deactivate {count} of {managed} managed trunks "
        f"({count / managed:.0%} > {max_share:.0%} allowed): check the file and the flags; "
        "pass --force if this is intended (or raise --max-deactivate-share)"
    )


def recreate_limit(managed: int, max_share: float = DEFAULT_MAX_DEACTIVATE_SHARE) -> int:
    """How many recreates one run may carry out without --force."""
    # The epsilon keeps float noise from losing one: 0.29 * 100 is 28.999999999999996.
    return max(1, int(max_share * managed + 1e-9))


def _check_recreates(plan: Plan, managed: int, max_share: float) -> None:
    # No minimum state size here, unlike deactivations: a list cut short (a proxy,
    # an undocumented page size) looks exactly like trunks deactivated outside
    # trunksync, and recreating them all would duplicate every trunk.
    count = sum(1 for change in plan.changes if change.action == RECREATE)
    limit = recreate_limit(managed, max_share)
    if count <= limit:
        return
    raise TrunksyncError(
        f"refusing to recreate {count} of {managed} managed trunks (at most {limit} "
        "without --force): the platform's list does not show them, and a list cut short "
        "looks just like trunks deactivated outside trunksync; check the platform, and pass "
        "--force only if they really were deactivated"
    )


def _compare(
    trunk: DesiredTrunk, state: State, view: _Remote | None, options: PlanOptions
) -> Change:
    record = state.trunks.get(trunk.name)
    if record is None:
        return _create(trunk, state, view)
    if view is not None and record.trunk_id not in view.active_ids:
        gone = (
            f"{record.trunk_id} was deactivated outside trunksync: apply creates a new trunk "
            "(a new id: whoever places calls must use it)"
        )
        fields = _create_fields(trunk)
        return Change(trunk.name, RECREATE, trunk.trunk_type, record.trunk_id, fields, trunk, gone)
    differences = field_differences(trunk, record)
    if trunk.name in options.replace:
        replacing = (
            f"a new trunk is created, then {record.trunk_id} is deactivated: "
            "whoever places calls must move to the new id"
        )
        return Change(
            trunk.name, REPLACE, trunk.trunk_type, record.trunk_id, differences, trunk, replacing
        )
    action = CHANGED if differences else NOOP
    note = (
        "the API cannot update a trunk: not applied; --replace NAME recreates it"
        if differences
        else None
    )
    extras = view.unknown_by_name.get(trunk.name, []) if view else []
    if extras:
        extra = f"the platform also has {', '.join(t.trunk_id for t in extras)} with this name, "
        note = f"{note}; {extra}unknown to the state" if note else f"{extra}unknown to the state"
    return Change(trunk.name, action, trunk.trunk_type, record.trunk_id, differences, trunk, note)


def _create(trunk: DesiredTrunk, state: State, view: _Remote | None) -> Change:
    intent = state.intents.get(trunk.name)
    if view is not None:
        conflict = _remote_conflict(trunk, intent, view)
        if conflict is not None:
            return conflict
    note = None
    if intent is not None and view is None:
        note = (
            f"a create sent at {intent.started_at} has an unknown outcome; "
            "apply checks the platform before creating again"
        )
    return Change(trunk.name, CREATE, trunk.trunk_type, None, _create_fields(trunk), trunk, note)


def _remote_conflict(trunk: DesiredTrunk, intent: Intent | None, view: _Remote) -> Change | None:
    """What the remote list says about an entry the state does not hold, if anything."""
    if intent is None:
        found = view.unknown_by_name.get(trunk.name, [])
        if not found:
            return None
        return Change(
            trunk.name,
            CONFLICT,
            trunk.trunk_type,
            found[0].trunk_id,
            (),
            trunk,
            foreign_message(trunk.name, found),
        )
    resolution = resolve_intent(trunk.name, intent, view.trunks, view.known_ids)
    if resolution.kind == ABSENT:
        return None
    if resolution.kind == ADOPT:
        found_id = resolution.candidates[0].trunk_id
        note = "the create whose outcome was unknown did succeed: apply records this id"
        return Change(trunk.name, ADOPTED, trunk.trunk_type, found_id, (), trunk, note)
    message = (
        ambiguity_message(resolution)
        if resolution.kind == AMBIGUOUS
        else foreign_message(trunk.name, resolution.candidates)
    )
    return Change(
        trunk.name,
        CONFLICT,
        trunk.trunk_type,
        resolution.candidates[0].trunk_id,
        (),
        trunk,
        message,
    )


def _unknown_secrets(trunk: DesiredTrunk) -> frozenset[str]:
    """Secret fields whose value is unknown (a variable allowed to be missing)."""
    return trunk.unknown_secrets


def _create_fields(trunk: DesiredTrunk) -> tuple[FieldChange, ...]:
    fields = [FieldChange(key, None, value) for key, value in sorted(trunk.config.items())]
    unknown = _unknown_secrets(trunk)
    secrets = sorted(trunk.secrets.keys() | unknown)
    fields += [
        FieldChange(key, None, UNKNOWN_SECRET if key in unknown else SENSITIVE, True)
        for key in secrets
    ]
    return tuple(fields)


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
            items = item_changes(before, after) if is_nested(before, after) else ()
            differences.append(FieldChange(key, before, after, items=items))
    for key in sorted(_compared_secrets(trunk, record)):
        if not _secret_matches(trunk, record, key):
            before = SENSITIVE if key in record.secret_fingerprints else None
            after = SENSITIVE if key in trunk.secrets else None
            differences.append(FieldChange(key, before, after, True))
    return tuple(differences)


def _compared_secrets(trunk: DesiredTrunk, record: TrunkRecord) -> set[str]:
    """The secret fields that can be compared: an unknown value is never a change."""
    return (trunk.secrets.keys() | record.secret_fingerprints.keys()) - _unknown_secrets(trunk)


def _secrets_match(trunk: DesiredTrunk, record: TrunkRecord) -> bool:
    unknown = _unknown_secrets(trunk)
    if trunk.secrets.keys() - unknown != record.secret_fingerprints.keys() - unknown:
        return False
    return all(_secret_matches(trunk, record, key) for key in _compared_secrets(trunk, record))


def _secret_matches(trunk: DesiredTrunk, record: TrunkRecord, key: str) -> bool:
    secret, recorded = trunk.secrets.get(key), record.secret_fingerprints.get(key)
    if secret is None or recorded is None:
        return secret is None and recorded is None
    return fingerprints.matches(secret.get_secret_value(), recorded)
