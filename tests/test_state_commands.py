"""`trunksync state rm` and `state mv`: local edits of the state, with backup,
lock, did-you-mean and refusal of names with an unresolved intent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpers import exotel_record
from trunksync.cli import cli
from trunksync.state import Intent, State, StateStore, TrunkRecord

STATE = Path("state/trunks.json")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def record(trunk_id: str) -> TrunkRecord:
    return exotel_record(trunk_id, "+918044319240")


@pytest.fixture
def saved(isolated: Path) -> State:
    """A state with two trunks and one intent, saved once (serial 1)."""
    state = State.new()
    state.trunks["Exotel India"] = record("ST_india")
    state.trunks["Exotel Mumbai"] = record("ST_mumbai")
    state.intents["Pending"] = Intent(
        trunk_type="exotel", request_fingerprint="x", started_at="2026-01-02T00:00:00Z"
    )
    StateStore(STATE).save(state)
    return state


def on_disk() -> dict[str, object]:
    data: dict[str, object] = json.loads(STATE.read_text())
    return data


def test_rm_forgets_the_trunk_prints_its_id_and_keeps_a_backup(saved: State) -> None:
    before = STATE.read_bytes()
    result = run("state", "rm", "Exotel India")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        'Removed "Exotel India" (exotel) ST_india from state/trunks.json.\n'
        "The trunk was not deactivated: ST_india still exists on the platform.\n"
        "The previous state is kept in state/trunks.json.backup.\n"
    )
    data = on_disk()
    assert list(data["trunks"]) == ["Exotel Mumbai"]  # type: ignore[call-overload]
    assert data["serial"] == 2
    assert data["lineage"] == saved.lineage
    assert Path("state/trunks.json.backup").read_bytes() == before
    # The lineage check still passes: the edited state loads.
    assert set(StateStore(STATE).load().trunks) == {"Exotel Mumbai"}


def test_mv_renames_keeping_the_id(saved: State) -> None:
    result = run("state", "mv", "Exotel India", "Exotel India (main)")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        'Moved "Exotel India" to "Exotel India (main)" (ST_india) in state/trunks.json.\n'
        "Nothing changed on the platform; the trunk keeps its id and its name there.\n"
        "The previous state is kept in state/trunks.json.backup.\n"
    )
    trunks = StateStore(STATE).load().trunks
    assert set(trunks) == {"Exotel India (main)", "Exotel Mumbai"}
    assert trunks["Exotel India (main)"] == saved.trunks["Exotel India"]
    assert Path("state/trunks.json.backup").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("rm", "Exotel Indya"),
            "Error: no trunk named 'Exotel Indya' in state/trunks.json "
            "(did you mean 'Exotel India'?)\n",
        ),
        (("rm", "Zzz"), "Error: no trunk named 'Zzz' in state/trunks.json\n"),
        (
            ("mv", "Exotel Indya", "New"),
            "Error: no trunk named 'Exotel Indya' in state/trunks.json "
            "(did you mean 'Exotel India'?)\n",
        ),
        (
            ("mv", "Exotel India", "Exotel Mumbai"),
            "Error: 'Exotel Mumbai' is already in state/trunks.json (ST_mumbai); remove it "
            "first with 'trunksync state rm' if it should go; nothing was changed\n",
        ),
        (
            ("rm", "Pending"),
            "Error: 'Pending' has a create sent at 2026-01-02T00:00:00Z whose outcome is "
            "unknown; run apply first to resolve it; nothing was changed\n",
        ),
        (
            ("mv", "Exotel India", "Pending"),
            "Error: 'Pending' has a create sent at 2026-01-02T00:00:00Z whose outcome is "
            "unknown; run apply first to resolve it; nothing was changed\n",
        ),
        (
            ("mv", "Exotel India", "Exotel India"),
            "Error: OLD and NEW are the same name ('Exotel India'): nothing to move\n",
        ),
        (
            ("mv", "Exotel India", "B\x1b[2J"),
            "Error: NEW must be 1 to 100 characters without control characters, like trunk_name\n",
        ),
        (
            ("mv", "Exotel India", "x" * 101),
            "Error: NEW must be 1 to 100 characters without control characters, like trunk_name\n",
        ),
    ],
)
def test_refusals_change_nothing(saved: State, args: tuple[str, ...], message: str) -> None:
    before = STATE.read_bytes()
    result = run("state", *args)
    assert (result.exit_code, result.stderr) == (1, message)
    assert STATE.read_bytes() == before
    assert not Path("state/trunks.json.backup").exists()


def test_mv_refuses_an_old_name_with_an_intent(saved: State) -> None:
    state = StateStore(STATE).load()
    state.intents["Exotel India"] = state.intents.pop("Pending")
    StateStore(STATE).save(state)
    before = STATE.read_bytes()
    result = run("state", "mv", "Exotel India", "Other")
    assert result.exit_code == 1
    assert "'Exotel India' has a create sent at" in result.stderr
    assert "run apply first to resolve it" in result.stderr
    assert STATE.read_bytes() == before


@pytest.mark.parametrize("args", [("rm", "A"), ("mv", "A", "B")])
def test_no_state_file_is_an_error_and_creates_nothing(
    isolated: Path, args: tuple[str, ...]
) -> None:
    result = run("state", *args, "--state", "elsewhere/trunks.json")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no state at elsewhere/trunks.json (pass --state to choose another)\n"
    )
    assert not Path("elsewhere").exists()


def test_rm_and_mv_wait_for_the_lock_and_then_fail(saved: State) -> None:
    with StateStore(STATE).locked(0, "trunksync apply"):
        for args in (("rm", "Exotel India"), ("mv", "Exotel India", "New")):
            result = run("state", *args, "--lock-timeout", "0.05")
            assert result.exit_code == 1
            assert "is locked by trunksync apply" in result.stderr
            assert "after waiting 0.05s" in result.stderr
    assert set(StateStore(STATE).load().trunks) == {"Exotel India", "Exotel Mumbai"}


def test_list_after_rm_and_mv(saved: State) -> None:
    assert run("state", "rm", "Exotel Mumbai").exit_code == 0
    assert run("state", "mv", "Exotel India", "Renamed").exit_code == 0
    assert run("state", "list").stdout == "Renamed\n"
    # The backup is the state from before this command, not from before the first one.
    backup = json.loads(Path("state/trunks.json.backup").read_text())
    assert sorted(backup["trunks"]) == ["Exotel India"]
