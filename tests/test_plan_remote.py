"""compute_plan with the platform's list: every action, what apply would change, the
warnings of what it leaves alone, the recreate safety limit, and unknown secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import SECRET_ENV, TWO_TRUNKS, write
from test_plan import desired, exotel, state_with, twilio
from trunksync.apply import record_created
from trunksync.config import Desired, DesiredTrunk, load_desired
from trunksync.errors import TrunksyncError
from trunksync.plan import (
    ACTIONS,
    ADOPTED,
    CHANGED,
    CONFLICT,
    CREATE,
    NOOP,
    ORPHAN,
    PRUNE,
    RECREATE,
    REPLACE,
    RETIRE,
    SECRETS_UNCHECKED,
    SENSITIVE,
    UNKNOWN_SECRET,
    WOULD_CHANGE,
    Change,
    FieldChange,
    Plan,
    PlanOptions,
    check_safety,
    compute_plan,
    recreate_limit,
)
from trunksync.reconcile import RemoteTrunk
from trunksync.state import Intent, RetiredTrunk, State, StateStore

LONG_AGO = "2024-01-15T10:00:00Z"
INTENT_TIME = "2024-02-02T02:02:02.000000Z"


def remote(name: str, trunk_id: str, trunk_type: str = "exotel", at: str = LONG_AGO) -> RemoteTrunk:
    return RemoteTrunk(trunk_id, name, trunk_type, at)


def listed(state: State) -> list[RemoteTrunk]:
    """The platform's list when every trunk of the state is still active."""
    return [remote(name, r.trunk_id, r.trunk_type) for name, r in state.trunks.items()]


def intent(trunk_type: str = "exotel") -> Intent:
    return Intent(
        trunk_type=trunk_type, request_fingerprint="hmac-sha256:00:00", started_at=INTENT_TIME
    )


def only(plan: Plan) -> Change:
    (change,) = plan.changes
    return change


# --- every action, with the platform's list ------------------------------------------------


def test_create_when_the_platform_has_no_trunk_of_that_name() -> None:
    plan = compute_plan(desired(exotel()), State.new(), [remote("Other", "ST_other")])
    change = only(plan)
    assert (change.action, change.trunk_id, change.note) == (CREATE, None, None)
    assert plan.would_change and plan.warnings() == []


def test_noop_when_the_recorded_trunk_is_active() -> None:
    state = state_with(exotel())
    plan = compute_plan(desired(exotel()), state, listed(state))
    assert (only(plan).action, only(plan).trunk_id) == (NOOP, "ST_0")
    assert not plan.would_change and not plan.has_changes and plan.warnings() == []


def test_noop_names_an_unknown_trunk_of_the_same_name() -> None:
    state = state_with(exotel())
    plan = compute_plan(desired(exotel()), state, [*listed(state), remote("Exotel India", "ST_x")])
    assert only(plan).action == NOOP
    assert "ST_x" in (only(plan).note or "")


def test_recreate_when_the_recorded_trunk_is_gone_from_the_list() -> None:
    state = state_with(exotel(), twilio())
    active = [t for t in listed(state) if t.trunk_name != "Exotel India"]
    plan = compute_plan(desired(exotel(), twilio()), state, active)
    change = plan.changes[0]
    assert (change.action, change.trunk_id) == (RECREATE, "ST_0")
    assert "ST_0 was deactivated outside trunksync" in (change.note or "")
    assert change.fields == (FieldChange("exotel_number", None, "+918044319240"),)
    assert plan.changes[1].action == NOOP
    assert plan.would_change and plan.warnings() == []


def test_changed_is_a_warning_not_a_change_apply_makes() -> None:
    state = state_with(exotel(sip_port=5060))
    plan = compute_plan(desired(exotel(sip_port=5070)), state, listed(state))
    change = only(plan)
    assert change.action == CHANGED
    assert change.fields == (FieldChange("sip_port", 5060, 5070),)
    assert not plan.would_change and plan.has_changes
    ((name, action, message),) = plan.warnings()
    assert (name, action) == ("Exotel India", CHANGED)
    assert "--replace" in message


def test_replace_keeps_before_and_after_and_the_old_id() -> None:
    state = state_with(twilio())
    new = twilio(numbers=["+15550100002"])
    options = PlanOptions(replace=frozenset({"Twilio Production"}))
    plan = compute_plan(desired(new), state, listed(state), options)
    change = only(plan)
    assert (change.action, change.trunk_id) == (REPLACE, "ST_0")
    (numbers,) = change.fields
    assert (numbers.before, numbers.after) == (["+15550100000"], ["+15550100002"])
    assert [item.change for item in numbers.items] == ["added", "removed"]
    assert plan.would_change and plan.warnings() == []


def test_adopt_when_the_unknown_create_did_succeed() -> None:
    state = State.new()
    state.intents["Exotel India"] = intent()
    found = remote("Exotel India", "ST_new", at="2024-02-02T02:02:03Z")
    plan = compute_plan(desired(exotel()), state, [found])
    change = only(plan)
    assert (change.action, change.trunk_id, change.fields) == (ADOPTED, "ST_new", ())
    assert plan.would_change  # it writes the state
    assert plan.warnings() == []


def test_create_when_the_unknown_create_did_not_happen() -> None:
    state = State.new()
    state.intents["Exotel India"] = intent()
    plan = compute_plan(desired(exotel()), state, [])
    assert only(plan).action == CREATE


def test_conflict_with_a_trunk_the_state_does_not_know() -> None:
    plan = compute_plan(desired(exotel()), State.new(), [remote("Exotel India", "ST_theirs")])
    change = only(plan)
    assert (change.action, change.trunk_id) == (CONFLICT, "ST_theirs")
    assert "trunksync import 'Exotel India' ST_theirs" in (change.note or "")
    assert not plan.would_change
    assert [(w.name, w.action) for w in plan.warnings()] == [("Exotel India", CONFLICT)]


def test_conflict_when_several_trunks_could_be_the_unknown_create() -> None:
    state = State.new()
    state.intents["Exotel India"] = intent()
    twins = [
        remote("Exotel India", "ST_a", at="2024-02-02T02:02:03Z"),
        remote("Exotel India", "ST_b", at="2024-02-02T02:02:04Z"),
    ]
    change = only(compute_plan(desired(exotel()), state, twins))
    assert (change.action, change.trunk_id) == (CONFLICT, "ST_a")
    assert "cannot tell which" in (change.note or "")


def test_orphan_is_left_alone_and_warned_about() -> None:
    state = state_with(exotel())
    plan = compute_plan(desired(), state, listed(state))
    change = only(plan)
    assert (change.action, change.trunk_id, change.note) == (ORPHAN, "ST_0", None)
    assert not plan.would_change
    assert [(w.name, w.action) for w in plan.warnings()] == [("Exotel India", ORPHAN)]


def test_prune_deactivates_an_orphan_and_notes_one_already_gone() -> None:
    state = state_with(exotel(), twilio())
    still_active = [t for t in listed(state) if t.trunk_name == "Exotel India"]
    plan = compute_plan(desired(), state, still_active, PlanOptions(prune=True))
    by_name = {change.name: change for change in plan.changes}
    assert (by_name["Exotel India"].action, by_name["Exotel India"].note) == (PRUNE, None)
    gone = by_name["Twilio Production"]
    assert (gone.action, gone.note) == (PRUNE, "already deactivated on the platform")
    assert plan.would_change and plan.warnings() == []


def test_retire_a_replaced_trunk_whose_deactivation_failed() -> None:
    state = state_with(exotel())
    state.retired["ST_old"] = RetiredTrunk(name="Exotel India", since=LONG_AGO)
    plan = compute_plan(
        desired(exotel()), state, [*listed(state), remote("Exotel India", "ST_old")]
    )
    assert [(c.action, c.trunk_id) for c in plan.changes] == [(NOOP, "ST_0"), (RETIRE, "ST_old")]
    assert plan.would_change


def test_would_change_is_exactly_the_actions_apply_carries_out() -> None:
    assert set(WOULD_CHANGE) == {CREATE, RECREATE, REPLACE, PRUNE, RETIRE, ADOPTED}
    for action in ACTIONS:
        plan = Plan((Change("T", action, "exotel", None, (), None),))
        assert plan.would_change == (action in WOULD_CHANGE), action
        warned = [w.action for w in plan.warnings()]
        assert warned == ([action] if action in (CHANGED, CONFLICT, ORPHAN) else []), action


# --- the recreate safety limit ------------------------------------------------------------


def gone_state(managed: int) -> tuple[Desired, State]:
    trunks = [exotel(f"T{index}", f"+9180443192{index:02d}") for index in range(managed)]
    return desired(*trunks), state_with(*trunks)


@pytest.mark.parametrize(("managed", "limit"), [(1, 1), (2, 1), (3, 1), (9, 2), (10, 3), (100, 30)])
def test_recreate_limit_has_no_minimum_state_size(managed: int, limit: int) -> None:
    assert recreate_limit(managed, 0.3) == limit


def test_recreate_limit_is_not_lost_to_float_noise() -> None:
    assert 0.29 * 100 < 29
    assert recreate_limit(100, 0.29) == 29


def test_a_list_that_shows_none_of_the_trunks_is_refused() -> None:
    wanted, state = gone_state(2)
    plan = compute_plan(wanted, state, [])  # a truncated or empty list: both "gone"
    assert [change.action for change in plan.changes] == [RECREATE, RECREATE]
    with pytest.raises(TrunksyncError) as refused:
        check_safety(plan, state)
    message = str(refused.value)
    assert "refusing to recreate 2 of 2 managed trunks (at most 1 without --force)" in message
    assert "cut short" in message and "--force" in message
    check_safety(plan, state, force=True)  # the person who checked may go on


def test_recreates_up_to_the_share_pass() -> None:
    wanted, state = gone_state(10)
    active = listed(state)
    check_safety(compute_plan(wanted, state, active[3:]), state)  # 3 of 10
    with pytest.raises(TrunksyncError, match="refusing to recreate 4 of 10"):
        check_safety(compute_plan(wanted, state, active[4:]), state)
    check_safety(compute_plan(wanted, state, active[4:]), state, max_share=0.4)


def test_one_recreate_of_one_trunk_passes() -> None:
    wanted, state = gone_state(1)
    check_safety(compute_plan(wanted, state, []), state)


def test_the_deactivation_threshold_is_unchanged() -> None:
    small = state_with(exotel(), twilio())
    check_safety(compute_plan(desired(), small, [], PlanOptions(prune=True)), small)
    wanted, state = gone_state(10)
    prune_four = compute_plan(
        desired(*wanted.trunks[4:]), state, listed(state), PlanOptions(prune=True)
    )
    with pytest.raises(TrunksyncError, match="refusing to deactivate 4 of 10"):
        check_safety(prune_four, state)


# --- secrets whose value is unknown (--allow-missing-secrets) ------------------------------


def with_unknown(trunk: DesiredTrunk, *fields: str) -> DesiredTrunk:
    """`trunk` with unknown secrets, through the config's field once it exists."""
    unknown = frozenset(fields)
    try:
        return trunk._replace(unknown_secrets=unknown)
    except ValueError:  # the field is not there yet: the plan reads it with getattr
        extended = type("Unknown", (DesiredTrunk,), {"unknown_secrets": unknown, "__slots__": ()})
        made: DesiredTrunk = extended(*trunk)
        return made


def unchecked(*trunks: DesiredTrunk) -> Desired:
    plain = desired(*trunks)
    try:
        return plain._replace(secrets_unchecked=True)
    except ValueError:
        extended = type("Unchecked", (Desired,), {"secrets_unchecked": True, "__slots__": ()})
        made: Desired = extended(*plain)
        return made


def without_secret(trunk: DesiredTrunk, field: str) -> DesiredTrunk:
    return trunk._replace(secrets={k: v for k, v in trunk.secrets.items() if k != field})


@pytest.mark.parametrize("shape", ["absent", "empty"])
def test_an_unknown_secret_is_never_a_change(shape: str) -> None:
    applied = twilio()
    state = state_with(applied)
    if shape == "absent":
        fork = without_secret(applied, "password")
    else:
        from pydantic import SecretStr

        fork = applied._replace(secrets={**applied.secrets, "password": SecretStr("")})
    plan = compute_plan(unchecked(with_unknown(fork, "password")), state, listed(state))
    assert only(plan).action == NOOP
    assert plan.secrets_unchecked
    assert plan.warnings()[0].message == SECRETS_UNCHECKED


def test_a_known_secret_beside_an_unknown_one_is_still_compared() -> None:
    state = state_with(twilio())
    fork = with_unknown(without_secret(twilio(username="AC-another"), "password"), "password")
    change = only(compute_plan(unchecked(fork), state))
    assert change.action == CHANGED
    assert change.fields == (FieldChange("username", SENSITIVE, SENSITIVE, True),)


def test_a_create_shows_an_unknown_secret_as_unknown() -> None:
    fork = with_unknown(without_secret(twilio(), "password"), "password")
    plan = compute_plan(unchecked(fork), State.new())
    secrets = {f.field: f.after for f in only(plan).fields if f.sensitive}
    assert secrets == {"password": UNKNOWN_SECRET, "username": SENSITIVE}


def test_a_plan_with_every_secret_set_is_checked() -> None:
    plan = compute_plan(desired(twilio()), State.new())
    assert not plan.secrets_unchecked
    assert all(w.message != SECRETS_UNCHECKED for w in plan.warnings())


# --- deepdiff is imported only when a list or an object differs ----------------------------


def plan_importtime(workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRET_ENV, "NO_COLOR": "1"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trunksync", "plan"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def applied_state(workdir: Path, edit: Any = None) -> None:
    loaded = load_desired(write(workdir / "trunks.yaml", TWO_TRUNKS), SECRET_ENV)
    state = State.new()
    for trunk in loaded.trunks:
        record_created(state, trunk, f"ST_{trunk.line}", created_at=LONG_AGO)
    if edit is not None:
        edit(state)
    StateStore(workdir / "state" / "trunks.json").save(state)


def imported(stderr: str) -> set[str]:
    """Top-level modules named in -X importtime's report."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_an_unchanged_plan_does_not_import_deepdiff(tmp_path: Path) -> None:
    applied_state(tmp_path)
    result = plan_importtime(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No changes: 2 trunk(s) match the state." in result.stdout
    modules = imported(result.stderr)
    assert "trunksync" in modules  # the report is read right
    assert "deepdiff" not in modules


def test_a_changed_list_does_import_deepdiff(tmp_path: Path) -> None:
    def edit(state: State) -> None:
        record = state.trunks["Twilio Production"]
        config = {**record.config, "numbers": ["+15550100009"]}
        state.trunks["Twilio Production"] = record.model_copy(update={"config": config})

    applied_state(tmp_path, edit)
    result = plan_importtime(tmp_path)
    assert result.returncode == 0, result.stderr
    assert '        + "+15550100000"\n        - "+15550100009"' in result.stdout
    assert "deepdiff" in imported(result.stderr)
