"""compute_plan: a pure comparison of the desired trunks with the recorded ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from trunksync.apply import record_created
from trunksync.config import Desired, DesiredTrunk
from trunksync.diffs import ADDED, ORDER, ItemChange
from trunksync.plan import (
    CHANGED,
    CREATE,
    NOOP,
    ORPHAN,
    SENSITIVE,
    Change,
    FieldChange,
    Plan,
    compute_plan,
)
from trunksync.state import Intent, State, parse_state

USERNAME = "AC-SENTINEL-USERNAME-111"
PASSWORD = "SENTINEL-PASSWORD-123"
NEW_PASSWORD = "SENTINEL-PASSWORD-456"


def twilio(
    name: str = "Twilio Production",
    address: str = "example.pstn.twilio.com",
    numbers: list[str] | None = None,
    password: str = PASSWORD,
    username: str = USERNAME,
) -> DesiredTrunk:
    return DesiredTrunk(
        name=name,
        trunk_type="twilio",
        config={"address": address, "numbers": numbers or ["+15550100000"]},
        secrets={"username": SecretStr(username), "password": SecretStr(password)},
        line=3,
    )


def exotel(name: str = "Exotel India", number: str = "+918044319240", **extra: Any) -> DesiredTrunk:
    return DesiredTrunk(
        name=name,
        trunk_type="exotel",
        config={"exotel_number": number, **extra},
        secrets={},
        line=10,
    )


def desired(*trunks: DesiredTrunk) -> Desired:
    return Desired("trunks.yaml", tuple(trunks))


def state_with(*trunks: DesiredTrunk) -> State:
    state = State.new()
    for index, trunk in enumerate(trunks):
        record_created(state, trunk, f"ST_{index}", created_at="2024-01-15T10:00:00Z")
    return state


def counts(plan: Plan) -> dict[str, int]:
    """The non-zero counts of the summary (which lists every action, zero or not)."""
    summary = plan.summary()
    assert {CREATE, CHANGED, ORPHAN, NOOP} <= set(summary)
    assert sum(summary.values()) == len(plan.changes)
    return {action: count for action, count in summary.items() if count}


def by_name(plan: Plan) -> dict[str, Change]:
    return {change.name: change for change in plan.changes}


# --- create -----------------------------------------------------------------------------------


def test_empty_state_plans_creates_with_sensitive_fields_hidden() -> None:
    plan = compute_plan(desired(twilio(), exotel()), State.new())
    assert [change.action for change in plan.changes] == [CREATE, CREATE]
    first = plan.changes[0]
    assert first.name == "Twilio Production"
    assert first.trunk_type == "twilio"
    assert first.trunk_id is None
    assert first.note is None
    assert first.desired == twilio()
    assert first.fields == (
        FieldChange("address", None, "example.pstn.twilio.com"),
        FieldChange("numbers", None, ["+15550100000"]),
        FieldChange("password", None, SENSITIVE, True),
        FieldChange("username", None, SENSITIVE, True),
    )
    assert plan.changes[1].fields == (FieldChange("exotel_number", None, "+918044319240"),)
    assert PASSWORD not in repr(plan) and USERNAME not in repr(plan)
    assert [change.name for change in plan.creates()] == ["Twilio Production", "Exotel India"]


def test_create_with_pending_intent_carries_a_note() -> None:
    state = State.new()
    state.intents["Exotel India"] = Intent(
        trunk_type="exotel",
        request_fingerprint="hmac-sha256:00:00",
        started_at="2024-02-02T02:02:02.000000Z",
    )
    plan = compute_plan(desired(exotel(), twilio()), state)
    changes = by_name(plan)
    assert changes["Exotel India"].action == CREATE
    note = changes["Exotel India"].note
    assert note is not None
    assert "2024-02-02T02:02:02.000000Z" in note
    assert "unknown" in note
    assert changes["Twilio Production"].note is None


# --- noop -------------------------------------------------------------------------------------


def test_unchanged_trunks_are_noop() -> None:
    trunks = (twilio(), exotel(sip_port=5060, sip_host="sip.example.com"))
    plan = compute_plan(desired(*trunks), state_with(*trunks))
    assert [change.action for change in plan.changes] == [NOOP, NOOP]
    assert [change.trunk_id for change in plan.changes] == ["ST_0", "ST_1"]
    assert all(change.fields == () and change.note is None for change in plan.changes)
    assert plan.has_changes is False
    assert plan.creates() == []


def test_noop_survives_a_round_trip_through_the_state_file() -> None:
    trunks = (twilio(), exotel(sip_port=5061))
    reloaded = parse_state(state_with(*trunks).to_json(), Path("state.json"))
    plan = compute_plan(desired(*trunks), reloaded)
    assert [change.action for change in plan.changes] == [NOOP, NOOP]


# --- changed ----------------------------------------------------------------------------------


def test_changed_address_shows_before_and_after() -> None:
    plan = compute_plan(desired(twilio(address="new.pstn.twilio.com")), state_with(twilio()))
    (change,) = plan.changes
    assert change.action == CHANGED
    assert change.trunk_id == "ST_0"
    assert change.fields == (
        FieldChange("address", "example.pstn.twilio.com", "new.pstn.twilio.com"),
    )
    assert change.note is not None and "cannot update" in change.note
    assert plan.has_changes is True


def test_changed_password_is_sensitive_and_never_shows_values() -> None:
    plan = compute_plan(desired(twilio(password=NEW_PASSWORD)), state_with(twilio()))
    (change,) = plan.changes
    assert change.action == CHANGED
    assert change.fields == (FieldChange("password", SENSITIVE, SENSITIVE, True),)
    text = repr(plan) + str(plan.summary())
    assert PASSWORD not in text and NEW_PASSWORD not in text


def test_changed_username_only_reports_username() -> None:
    plan = compute_plan(desired(twilio(username="AC-other")), state_with(twilio()))
    assert plan.changes[0].fields == (FieldChange("username", SENSITIVE, SENSITIVE, True),)


def test_changed_numbers_list() -> None:
    before = twilio(numbers=["+15550100000"])
    after = twilio(numbers=["+15550100000", "+15550100001"])
    (change,) = compute_plan(desired(after), state_with(before)).changes
    assert change.action == CHANGED
    added = ItemChange(ADDED, (1,), None, "+15550100001")
    assert change.fields == (
        FieldChange("numbers", ["+15550100000"], ["+15550100000", "+15550100001"], items=(added,)),
    )


def test_reordered_numbers_count_as_a_change() -> None:
    before = twilio(numbers=["+15550100000", "+15550100001"])
    after = twilio(numbers=["+15550100001", "+15550100000"])
    (change,) = compute_plan(desired(after), state_with(before)).changes
    assert change.action == CHANGED
    assert [field.field for field in change.fields] == ["numbers"]
    assert change.fields[0].items == (ItemChange(ORDER, ()),)


def test_added_and_removed_optional_fields() -> None:
    before = exotel(sip_port=5060)
    after = exotel(sip_host="sip.example.com")
    (change,) = compute_plan(desired(after), state_with(before)).changes
    assert change.fields == (
        FieldChange("sip_host", None, "sip.example.com"),
        FieldChange("sip_port", 5060, None),
    )


def test_type_change_is_reported_with_all_field_differences() -> None:
    state = state_with(exotel(name="Main"))
    plan = compute_plan(desired(twilio(name="Main")), state)
    (change,) = plan.changes
    assert change.action == CHANGED
    assert change.trunk_type == "twilio"
    assert change.fields == (
        FieldChange("trunk_type", "exotel", "twilio"),
        FieldChange("address", None, "example.pstn.twilio.com"),
        FieldChange("exotel_number", "+918044319240", None),
        FieldChange("numbers", None, ["+15550100000"]),
        FieldChange("password", None, SENSITIVE, True),
        FieldChange("username", None, SENSITIVE, True),
    )
    assert PASSWORD not in repr(plan)


def test_type_change_the_other_way_drops_secrets() -> None:
    (change,) = compute_plan(desired(exotel(name="Main")), state_with(twilio(name="Main"))).changes
    sensitive = [field for field in change.fields if field.sensitive]
    assert sensitive == [
        FieldChange("password", SENSITIVE, None, True),
        FieldChange("username", SENSITIVE, None, True),
    ]


def test_garbage_fingerprint_in_state_counts_as_changed_secret() -> None:
    state = state_with(twilio())
    state.trunks["Twilio Production"].secret_fingerprints["password"] = "not-a-fingerprint"
    (change,) = compute_plan(desired(twilio()), state).changes
    assert change.action == CHANGED
    assert change.fields == (FieldChange("password", SENSITIVE, SENSITIVE, True),)


# --- orphans, order and summary ---------------------------------------------------------------


def test_orphans_follow_file_order_sorted_by_name() -> None:
    kept = exotel(name="b-kept", number="+918000000002")
    state = state_with(
        exotel(name="zeta", number="+918000000009"),
        kept,
        exotel(name="alpha", number="+918000000001"),
        exotel(name="Mid", number="+918000000005"),
    )
    wanted = desired(
        exotel(name="new-2", number="+918000000012"),
        kept,
        exotel(name="new-1", number="+918000000011"),
    )
    plan = compute_plan(wanted, state)
    assert [(change.name, change.action) for change in plan.changes] == [
        ("new-2", CREATE),
        ("b-kept", NOOP),
        ("new-1", CREATE),
        ("Mid", ORPHAN),
        ("alpha", ORPHAN),
        ("zeta", ORPHAN),
    ]
    orphan = by_name(plan)["zeta"]
    assert orphan.trunk_id == "ST_0"
    assert orphan.trunk_type == "exotel"
    assert orphan.desired is None
    assert orphan.fields == ()


def test_summary_counts_every_action() -> None:
    state = state_with(
        exotel(name="same"), exotel(name="diff"), exotel(name="gone-1"), exotel(name="gone-2")
    )
    wanted = desired(
        exotel(name="same"),
        exotel(name="diff", number="+918000000000"),
        twilio(name="new"),
    )
    plan = compute_plan(wanted, state)
    assert counts(plan) == {CREATE: 1, CHANGED: 1, ORPHAN: 2, NOOP: 1}
    assert plan.has_changes is True


def test_empty_everything() -> None:
    plan = compute_plan(desired(), State.new())
    assert plan.changes == ()
    assert counts(plan) == {}
    assert set(plan.summary().values()) == {0}
    assert plan.has_changes is False


def test_only_orphans_is_a_change() -> None:
    plan = compute_plan(desired(), state_with(exotel()))
    assert counts(plan) == {ORPHAN: 1}
    assert plan.has_changes is True


def test_only_changed_is_a_change() -> None:
    plan = compute_plan(desired(exotel(number="+918000000000")), state_with(exotel()))
    assert counts(plan) == {CHANGED: 1}
    assert plan.has_changes is True


# --- purity -----------------------------------------------------------------------------------


def test_compute_plan_does_not_modify_the_state() -> None:
    state = state_with(twilio(), exotel(name="orphan"), exotel(name="diff"))
    state.intents["new"] = Intent(
        trunk_type="twilio",
        request_fingerprint="hmac-sha256:00:00",
        started_at="2024-01-15T10:00:00Z",
    )
    before = state.to_json()
    wanted = desired(
        twilio(password=NEW_PASSWORD, numbers=["+15550100009"]),
        exotel(name="diff", number="+918000000000"),
        twilio(name="new"),
    )
    first = compute_plan(wanted, state)
    assert state.to_json() == before
    second = compute_plan(wanted, state)
    assert first == second
    assert state.to_json() == before


def test_compute_plan_does_not_modify_the_desired_trunks() -> None:
    trunk = twilio(numbers=["+15550100000"])
    snapshot = repr(trunk), trunk.request_body()
    compute_plan(desired(trunk), state_with(twilio(numbers=["+15550100001"])))
    assert (repr(trunk), trunk.request_body()) == snapshot
