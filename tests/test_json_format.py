"""docs/json-format.md and the real `plan --json` / `apply --json` output agree:
the examples in the doc have exactly the keys the commands print."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, TWO_TRUNKS, write
from trunksync.cli import cli
from trunksync.diffs import ITEM_CHANGES, item_changes
from trunksync.plan import ACTIONS
from trunksync.render import JSON_FORMAT_VERSION
from trunksync.state import State, StateStore, TrunkRecord

DOC = Path(__file__).resolve().parent.parent / "docs" / "json-format.md"
STALE = "docs/json-format.md no longer matches the JSON output: update the doc (and tests)"


def doc_examples() -> list[Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def keys(obj: Any) -> set[str]:
    assert isinstance(obj, dict)
    return set(obj)


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, list(args), env={**SECRET_ENV, **(env or {})})
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def plan_output(isolated: Path) -> Any:
    """plan --json with a create, a changed, an orphan and a secret field."""
    write(isolated / "trunks.yaml", TWO_TRUNKS.replace("+918044319240", '"+918044319240"'))
    state = State.new()
    state.trunks["Exotel India"] = TrunkRecord(
        trunk_id="ST_india",
        trunk_type="exotel",
        config={"exotel_number": "+918044319240", "sip_host": "old.example.in"},
        created_at="2026-01-01T00:00:00.000000Z",
    )
    state.trunks["Old trunk"] = TrunkRecord(
        trunk_id="ST_old",
        trunk_type="exotel",
        config={"exotel_number": "+12"},
        created_at="2024-01-15T10:00:00Z",
    )
    StateStore(Path("state/trunks.json")).save(state)
    code, data = run_json("plan", "--json")
    assert code == 0
    return data


def test_doc_is_version_1_like_the_output(plan_output: Any) -> None:
    assert JSON_FORMAT_VERSION == 1
    assert '`"format_version": 1`' in DOC.read_text()
    for example in doc_examples():
        assert example["format_version"] == plan_output["format_version"] == 1


def test_plan_json_keys_match_the_doc(plan_output: Any) -> None:
    example = doc_examples()[0]
    top = {"format_version", "changes", "summary", "would_change", "secrets_unchecked", "warnings"}
    assert keys(plan_output) == keys(example) == top, STALE
    actions = [change["action"] for change in plan_output["changes"]]
    assert actions == ["create", "changed", "orphan"]
    change_keys = {"name", "action", "trunk_type", "trunk_id", "note", "fields"}
    items = []
    for change in [*plan_output["changes"], *example["changes"]]:
        assert keys(change) == change_keys, STALE
        for field in change["fields"]:
            assert keys(field) == {"field", "before", "after", "sensitive", "items"}, STALE
            items += field["items"]
    assert items, "the doc's example shows no nested item: " + STALE
    for item in items:
        assert keys(item) == {"change", "path", "before", "after"}, STALE
        assert item["change"] in ITEM_CHANGES, STALE
    for warning in [*plan_output["warnings"], *example["warnings"]]:
        assert keys(warning) == {"name", "action", "message"}, STALE
    assert keys(plan_output["summary"]) == keys(example["summary"]) == set(ACTIONS), STALE


def test_the_docs_nested_example_is_what_the_plan_computes() -> None:
    example = doc_examples()[0]
    backup = next(change for change in example["changes"] if change["name"] == "Twilio Backup")
    (numbers,) = backup["fields"]
    computed = item_changes(numbers["before"], numbers["after"])
    assert [item._asdict() | {"path": list(item.path)} for item in computed] == numbers["items"]


def test_plan_json_values_are_as_documented(plan_output: Any) -> None:
    create, changed, orphan = plan_output["changes"]
    assert (create["trunk_id"], create["note"]) == (None, None)
    assert all(field["before"] is None for field in create["fields"])
    secrets = {f["field"]: f["after"] for f in create["fields"] if f["sensitive"]}
    assert secrets == {"username": "(sensitive)", "password": "(sensitive)"}
    assert changed["trunk_id"] == "ST_india"
    assert changed["fields"] == [
        {
            "field": "sip_host",
            "before": "old.example.in",
            "after": None,
            "sensitive": False,
            "items": [],
        }
    ]
    assert (orphan["trunk_id"], orphan["fields"]) == ("ST_old", [])
    assert plan_output["summary"]["create"] == 1
    assert (plan_output["would_change"], plan_output["secrets_unchecked"]) == (True, False)
    warned = [(warning["name"], warning["action"]) for warning in plan_output["warnings"]]
    assert warned == [("Exotel India", "changed"), ("Old trunk", "orphan")]


def test_every_action_is_documented() -> None:
    text = DOC.read_text()
    for action in ACTIONS:
        assert f"| `{action}` |" in text, f"action {action!r} is not documented: {STALE}"


def test_apply_json_keys_match_the_doc(isolated: Path, emulator: EmulatorHandle) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    code, data = run_json("apply", "--auto-approve", "--json", env=env)
    assert code == 0
    example = doc_examples()[1]
    assert keys(data) == keys(example) == {"format_version", "plan", "results", "summary"}, STALE
    assert keys(data["plan"]) == keys(example["plan"]), STALE
    assert keys(data["summary"]) == keys(example["summary"]), STALE
    result_keys = {"name", "status", "trunk_id", "message"}
    for result in [*data["results"], *example["results"]]:
        assert keys(result) == result_keys, STALE
    assert sorted(result["status"] for result in data["results"]) == ["created", "created"]
    assert data["summary"]["created"] == 2
