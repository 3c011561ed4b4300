"""The CLI through click's CliRunner, asserting exact output, against a real
emulator over loopback where the API is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, SENTINELS, TWO_TRUNKS, write
from trunksync.cli import cli


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), env={**SECRET_ENV, **(env or {})}, input=input)


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", TWO_TRUNKS)


@pytest.fixture
def api(emulator: EmulatorHandle) -> dict[str, str]:
    return {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for sentinel in SENTINELS:
            assert sentinel not in text


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("validate", "plan", "apply", "output", "state", "emulator"):
        assert f"  {name} " in result.stdout


def test_validate_reports_trunk_count(trunks_file: Path) -> None:
    result = run("validate")
    assert (result.exit_code, result.stdout) == (0, "trunks.yaml: valid, 2 trunk(s).\n")


def test_validate_error_is_one_message_with_file_and_line(isolated: Path) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS.replace("address:", "adress:"))
    result = run("validate")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert (
        "trunks.yaml:6:7: trunks[0].trunk_config.adress: unknown field 'adress' "
        "(did you mean 'address'?)"
    ) in result.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = run("plan", "-f", "nope.yaml")
    assert result.exit_code == 1
    assert result.stderr == "Error: nope.yaml: file not found (pass -f FILE to choose another)\n"


def test_unset_variable_names_variable_and_line(trunks_file: Path) -> None:
    result = CliRunner().invoke(cli, ["validate"], env={"TWILIO_ACCOUNT_SID": "x"})
    assert result.exit_code == 1
    assert "trunks.yaml:9:17: environment variable TWILIO_AUTH_TOKEN is not set" in result.stderr


def test_plan_text_is_terraform_like_and_hides_secrets(trunks_file: Path) -> None:
    result = run("plan")
    assert result.exit_code == 0
    assert result.stdout == (
        '  + create "Twilio Production" (twilio)\n'
        '      address  = "example.pstn.twilio.com"\n'
        '      numbers  = ["+15550100000"]\n'
        "      password = (sensitive)\n"
        "      username = (sensitive)\n"
        "\n"
        '  + create "Exotel India" (exotel)\n'
        '      exotel_number = "+918044319240"\n'
        "\n"
        "Plan: 2 to create, 0 changed (not applied), 0 orphaned (left alone), 0 unchanged.\n"
    )
    assert_no_secrets(result.output)


def test_plan_needs_no_api_key_and_does_not_create_state(trunks_file: Path, isolated: Path) -> None:
    assert run("plan").exit_code == 0
    assert not (isolated / "state").exists()


def test_plan_json_shape(trunks_file: Path) -> None:
    result = run("plan", "--json")
    data = json.loads(result.stdout)
    assert data["format_version"] == 1
    assert data["summary"] == {
        "create": 2,
        "recreate": 0,
        "replace": 0,
        "adopt": 0,
        "changed": 0,
        "conflict": 0,
        "prune": 0,
        "retire": 0,
        "orphan": 0,
        "noop": 0,
    }
    assert [(c["name"], c["action"]) for c in data["changes"]] == [
        ("Twilio Production", "create"),
        ("Exotel India", "create"),
    ]
    password = next(f for f in data["changes"][0]["fields"] if f["field"] == "password")
    assert password == {
        "field": "password",
        "before": None,
        "after": "(sensitive)",
        "sensitive": True,
        "items": [],
    }
    assert_no_secrets(result.stdout)


def test_detailed_exitcode(trunks_file: Path, api: dict[str, str]) -> None:
    assert run("plan", "--detailed-exitcode").exit_code == 2
    assert run("apply", "--auto-approve", env=api).exit_code == 0
    assert run("plan", "--detailed-exitcode").exit_code == 0


def test_apply_creates_records_and_second_apply_creates_nothing(
    trunks_file: Path, api: dict[str, str], emulator: EmulatorHandle, isolated: Path
) -> None:
    first = run("apply", "--auto-approve", env=api)
    assert first.exit_code == 0, first.output
    assert first.stdout.endswith(
        "Apply finished: 2 created, 0 failed, 0 with unknown outcome, 0 not started.\n"
    )
    remote = {t["trunk_name"]: t for t in emulator.active_trunks()}
    state = json.loads((isolated / "state" / "trunks.json").read_text())
    assert {name: record["trunk_id"] for name, record in state["trunks"].items()} == {
        name: trunk["trunk_id"] for name, trunk in remote.items()
    }
    # The number is sent exactly as written, although YAML 1.1 reads it as an int.
    assert remote["Exotel India"]["trunk_config"]["exotel_number"] == "+918044319240"
    assert state["intents"] == {}

    second = run("apply", "--auto-approve", env=api)
    assert second.exit_code == 0
    assert second.stdout.endswith("No changes: 2 trunk(s) match the state.\nNothing to create.\n")
    assert emulator.stats()["create_calls"] == 2


def test_apply_refuses_without_terminal_or_auto_approve(
    trunks_file: Path, api: dict[str, str]
) -> None:
    result = run("apply", env=api)
    assert result.exit_code == 1
    assert "no terminal to ask on" in result.stderr
    assert not Path("state/trunks.json").exists()


@pytest.mark.parametrize(("answer", "code"), [("yes\n", 0), ("no\n", 1), ("y\n", 1)])
def test_apply_asks_on_a_terminal(
    trunks_file: Path,
    api: dict[str, str],
    emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
) -> None:
    monkeypatch.setattr("trunksync.commands.apply._stdin_is_terminal", lambda: True)
    result = run("apply", env=api, input=answer)
    assert result.exit_code == code
    assert len(emulator.active_trunks()) == (2 if code == 0 else 0)


def test_apply_without_api_key(trunks_file: Path, emulator: EmulatorHandle) -> None:
    result = run("apply", "--auto-approve", env={"TRUNKSYNC_API_URL": emulator.url})
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: TRUNKSYNC_API_KEY is not set: export the platform API key first\n"
    )


def test_apply_with_wrong_key_is_one_clear_error(
    trunks_file: Path, emulator: EmulatorHandle
) -> None:
    env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": "wrong"}
    result = run("apply", "--auto-approve", env=env)
    assert result.exit_code == 1
    assert "the API key was refused (HTTP 401)" in result.stderr
    assert "Traceback" not in result.output
    assert "wrong" not in result.output


def test_plain_http_refused_for_remote_hosts(trunks_file: Path) -> None:
    env = {"TRUNKSYNC_API_URL": "http://api.example.com", "TRUNKSYNC_API_KEY": API_KEY}
    result = run("apply", "--auto-approve", env=env)
    assert result.exit_code == 1
    assert "refusing plain http:// for api.example.com" in result.stderr


def test_network_down_is_a_clear_error(trunks_file: Path) -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    env = {"TRUNKSYNC_API_URL": "http://127.0.0.1:9", "TRUNKSYNC_API_KEY": API_KEY}
    result = run("apply", "--auto-approve", "--parallelism", "2", env=env)
    assert result.exit_code == 1
    assert "cannot reach the API" in result.stderr
    assert not Path("state/trunks.json").exists()


def test_overlong_address_is_refused_before_any_request(
    trunks_file: Path, emulator: EmulatorHandle, api: dict[str, str]
) -> None:
    write(Path("trunks.yaml"), TWO_TRUNKS.replace("example.pstn.twilio.com", "x" * 300 + ".com"))
    assert run("validate").exit_code == 1  # refused offline already
    # apply has the API at hand: it must refuse before sending anything (validate has no API
    # to call, so only apply can show this).
    result = run("apply", "--auto-approve", env=api)
    assert result.exit_code == 1
    assert "address" in result.stderr
    assert emulator.stats()["create_calls"] == emulator.stats()["list_calls"] == 0


def test_output_and_state_commands(trunks_file: Path, api: dict[str, str]) -> None:
    assert run("apply", "--auto-approve", env=api).exit_code == 0
    ids: dict[str, Any] = json.loads(run("output", "--json").stdout)
    assert sorted(ids) == ["Exotel India", "Twilio Production"]
    assert all(value.startswith("ST_") for value in ids.values())
    text = run("output").stdout
    assert text == "".join(f"{name} = {ids[name]}\n" for name in sorted(ids))
    assert run("state", "list").stdout == "Exotel India\nTwilio Production\n"
    shown = run("state", "show", "Twilio Production").stdout
    assert f"trunk_id   = {ids['Twilio Production']}" in shown
    assert "password = (sensitive; fingerprint recorded)" in shown
    assert_no_secrets(shown, Path("state/trunks.json").read_text())
    missing = run("state", "show", "Twilio Prod")
    assert missing.exit_code == 1
    assert "did you mean 'Twilio Production'?" in missing.stderr


def test_changed_and_orphan_are_reported_not_applied(
    trunks_file: Path, api: dict[str, str], emulator: EmulatorHandle
) -> None:
    assert run("apply", "--auto-approve", env=api).exit_code == 0
    edited = TWO_TRUNKS.replace("+15550100000", "+15550100009").split("  - trunk_name: Exotel")[0]
    write(trunks_file, edited)
    result = run("apply", "--auto-approve", env={**api, "TWILIO_AUTH_TOKEN": "another-token"})
    assert result.exit_code == 0
    assert '  ~ changed "Twilio Production" (twilio) ST_' in result.stdout
    assert '    ~ numbers  :\n        + "+15550100009"\n        - "+15550100000"\n' in result.stdout
    assert "    ~ password : (sensitive) -> (sensitive)" in result.stdout
    assert '  ! orphan "Exotel India" (exotel) ST_' in result.stdout
    assert "another-token" not in result.output
    assert emulator.stats()["create_calls"] == 2


def test_corrupt_state_is_refused_and_kept(trunks_file: Path) -> None:
    state = write(
        Path("state/trunks.json"), '{"format_version": 1, "lineage": "x", "serial": 1, "trunks": {'
    )
    before = state.read_bytes()
    result = run("plan")
    assert result.exit_code == 1
    assert "state/trunks.json is corrupt or not a trunksync state" in result.stderr
    assert state.read_bytes() == before


def test_the_timeout_can_come_from_the_environment(trunks_file: Path) -> None:
    # Pipelines set it once (TRUNKSYNC_TIMEOUT) instead of on every command line.
    result = run("apply", "--auto-approve", env={"TRUNKSYNC_TIMEOUT": "0.01"})
    assert result.exit_code == 1  # 2 means "changes" to a pipeline, never a usage error
    assert "Invalid value for '--timeout': 0.01 is not in the range x>=0.1." in result.output
