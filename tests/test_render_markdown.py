"""The Markdown plan and apply summaries: their exact shape, escaping and the
GITHUB_STEP_SUMMARY file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trunksync.errors import TrunksyncError
from trunksync.plan import CHANGED, CREATE, NOOP, ORPHAN, Change, FieldChange, Plan
from trunksync.render_markdown import (
    append_step_summary,
    apply_markdown,
    escape,
    plan_markdown,
)
from trunksync.results import Result


def change(
    name: str,
    action: str,
    trunk_type: str = "exotel",
    trunk_id: str | None = None,
    fields: tuple[FieldChange, ...] = (),
    note: str | None = None,
) -> Change:
    return Change(name, action, trunk_type, trunk_id, fields, None, note)


CREATE_TWILIO = change(
    "Twilio Production",
    CREATE,
    "twilio",
    fields=(
        FieldChange("address", None, "example.pstn.twilio.com"),
        FieldChange("numbers", None, ["+15550100000"]),
        FieldChange("password", None, "(sensitive)", True),
    ),
)
CHANGED_EXOTEL = change(
    "Exotel India",
    CHANGED,
    trunk_id="ST_exo",
    fields=(
        FieldChange("sip_port", 5060, 5070),
        FieldChange("sip_host", "old.example.in", None),
        FieldChange("password", "(sensitive)", "(sensitive)", True),
    ),
    note="the API cannot update a trunk: not applied",
)
ORPHAN_OLD = change("Old one", ORPHAN, "twilio", "ST_old")


def test_plan_markdown_pins_table_summary_and_folded_noops() -> None:
    plan = Plan(
        (CREATE_TWILIO, CHANGED_EXOTEL, change("Same", NOOP, trunk_id="ST_same"), ORPHAN_OLD)
    )
    assert plan_markdown(plan) == (
        "### trunksync plan\n"
        "\n"
        "Plan: 1 to create, 1 changed (not applied), 1 orphaned (left alone), 1 unchanged.\n"
        "\n"
        "**Warnings** (apply leaves these alone; each needs a person):\n"
        "\n"
        "- **Exotel India** (changed): differs from what was applied; apply leaves it alone "
        "(the API cannot update a trunk: --replace NAME recreates it)\n"
        "- **Old one** (orphan): in the state, not in the file; apply leaves it alone "
        "(--prune deactivates it)\n"
        "\n"
        "|  | name | action | type | trunk id | what differs |\n"
        "|---|---|---|---|---|---|\n"
        '| + | Twilio Production | create | twilio |  | address = "example.pstn.twilio.com"'
        '<br>numbers = \\["+15550100000"\\]<br>password = (sensitive) |\n'
        "| ~ | Exotel India | changed | exotel | ST\\_exo | sip\\_port: 5060 -> 5070"
        '<br>sip\\_host: "old.example.in" -> (absent)<br>password: (sensitive) -> (sensitive)'
        "<br>*the API cannot update a trunk: not applied* |\n"
        "| ! | Old one | orphan | twilio | ST\\_old | in the state, not in the file: left alone |\n"
        "\n"
        "<details><summary>1 unchanged</summary>\n"
        "\n"
        "| name | type | trunk id |\n"
        "|---|---|---|\n"
        "| Same | exotel | ST\\_same |\n"
        "\n"
        "</details>\n"
    )


def test_plan_markdown_without_changes_has_no_table() -> None:
    plan = Plan((change("A", NOOP, trunk_id="ST_a"),))
    text = plan_markdown(plan)
    assert text.startswith(
        "### trunksync plan\n\nNo changes: 1 trunk(s) match the state.\n\n<details>"
    )
    assert "what differs" not in text


def test_empty_plan_is_heading_and_summary_only() -> None:
    assert (
        plan_markdown(Plan(())) == "### trunksync plan\n\nNo changes: 0 trunk(s) match the state.\n"
    )


def test_thousands_of_noops_are_folded_and_capped() -> None:
    noops = tuple(change(f"T{index:04d}", NOOP, trunk_id=f"ST_{index}") for index in range(3000))
    text = plan_markdown(Plan(noops), noop_limit=100)
    assert "<details><summary>3000 unchanged</summary>" in text
    assert "| T0099 |" in text and "| T0100 |" not in text
    assert "… and 2900 more." in text
    assert text.index("</details>") > text.index("… and 2900 more.")


def test_secret_values_never_appear_even_if_a_field_carries_one() -> None:
    leaky = change(
        "X", CHANGED, fields=(FieldChange("password", "old-secret", "new-secret", True),)
    )
    text = plan_markdown(Plan((leaky,)))
    assert "secret" not in text
    assert "password: (sensitive) -> (sensitive)" in text


def test_names_with_pipes_newlines_and_html_cannot_break_the_table() -> None:
    name = "a|b\nc</details><img src=x>"
    text = plan_markdown(Plan((change(name, CREATE),)))
    row = text.splitlines()[6]
    assert row == "| + | a\\|b\\nc\\</details\\>\\<img src=x\\> | create | exotel |  |  |"
    # Every unescaped pipe is a cell border: exactly 7 of them for 6 columns.
    assert row.replace("\\|", "").count("|") == 7
    assert "</details>" not in text


def test_escape_makes_markdown_specials_literal() -> None:
    assert escape("*b* _i_ `c` [l](u) ~s~ &amp; \\ #1 !") == (
        "\\*b\\* \\_i\\_ \\`c\\` \\[l\\](u) \\~s\\~ \\&amp; \\\\ \\#1 \\!"
    )
    assert escape("one\r\ntwo\rthree") == "one\\ntwo\\rthree"


def test_apply_markdown_lists_results_in_plan_order() -> None:
    plan = Plan((change("A", CREATE), change("B", CREATE), change("C", CREATE), ORPHAN_OLD))
    results = [
        Result("C", "unknown", None, "timed out\nafter 30s"),
        Result("A", "created", "ST_a", None),
        Result("B", "failed", None, "400: bad | input"),
    ]
    assert apply_markdown(plan, results) == (
        "### trunksync apply\n"
        "\n"
        "Apply finished: 1 created, 1 failed, 1 with unknown outcome, 0 not started.\n"
        "\n"
        "Plan: 3 to create, 0 changed (not applied), 1 orphaned (left alone), 0 unchanged.\n"
        "\n"
        "**Warnings** (apply leaves these alone; each needs a person):\n"
        "\n"
        "- **Old one** (orphan): in the state, not in the file; apply leaves it alone "
        "(--prune deactivates it)\n"
        "\n"
        "|  | name | status | trunk id | message |\n"
        "|---|---|---|---|---|\n"
        "| + | A | created | ST\\_a |  |\n"
        "| x | B | failed |  | 400: bad \\| input |\n"
        "| ? | C | unknown |  | timed out\\nafter 30s |\n"
    )


def test_apply_markdown_counts_not_started_and_nothing_to_create() -> None:
    plan = Plan((change("A", CREATE), change("B", CREATE)))
    text = apply_markdown(plan, [Result("A", "created", "ST_a")])
    assert "1 created, 0 failed, 0 with unknown outcome, 1 not started." in text
    nothing = apply_markdown(Plan((change("A", NOOP, trunk_id="ST_a"),)), [])
    assert nothing == (
        "### trunksync apply\n\nNothing to create.\n\nNo changes: 1 trunk(s) match the state.\n"
    )


def test_append_step_summary_appends_when_set(isolated: Path) -> None:
    target = isolated / "summary.md"
    target.write_text("earlier step\n")
    environ = {"GITHUB_STEP_SUMMARY": str(target)}
    append_step_summary("### one\n", environ)
    append_step_summary("### two", environ)
    assert target.read_text() == "earlier step\n### one\n\n### two\n\n"


def test_append_step_summary_is_a_noop_when_unset(isolated: Path) -> None:
    append_step_summary("### one\n", {})
    append_step_summary("### one\n", {"GITHUB_STEP_SUMMARY": ""})
    assert list(isolated.iterdir()) == []


def test_unwritable_step_summary_is_a_clear_error(isolated: Path) -> None:
    target = isolated / "missing-folder" / "summary.md"
    with pytest.raises(TrunksyncError) as caught:
        append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(target)})
    assert str(caught.value) == (
        f"cannot append the summary to GITHUB_STEP_SUMMARY ({target}): No such file or directory"
    )


def test_recreate_shows_new_fields_and_unknown_actions_still_render() -> None:
    recreate = change(
        "Gone remote",
        "recreate",
        trunk_id="ST_old",
        fields=(FieldChange("exotel_number", None, "+918044319240"),),
        note="already deactivated on the platform",
    )
    future = change("Later", "some-future-action", trunk_id="ST_f")
    text = plan_markdown(Plan((recreate, future)))
    assert (
        '| + | Gone remote | recreate | exotel | ST\\_old | exotel\\_number = "+918044319240"'
        "<br>*already deactivated on the platform* |"
    ) in text
    assert "| ? | Later | some-future-action | exotel | ST\\_f |  |" in text
