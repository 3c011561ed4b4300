"""Exit codes a pipeline can trust (issue 10 item 2), for every command alike:
0 success, 1 error (usage errors included, never 2), 2 only with
--detailed-exitcode when apply would change something."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, TWO_TRUNKS, write
from trunksync.cli import COMMANDS, cli


def run(emulator: EmulatorHandle | None, *args: str) -> Result:
    env = {**SECRET_ENV, "TRUNKSYNC_API_KEY": API_KEY}
    if emulator is not None:
        env["TRUNKSYNC_API_URL"] = emulator.url
    return CliRunner().invoke(cli, list(args), env=env)


def every_command() -> list[tuple[str, ...]]:
    context = click.Context(cli, info_name="trunksync")
    paths: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = cli.get_command(context, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            paths += [(name, sub) for sub in command.commands]
    return paths


@pytest.mark.parametrize("path", every_command(), ids=" ".join)
def test_an_unknown_option_is_exit_1_for_every_command(path: tuple[str, ...]) -> None:
    result = run(None, *path, "--bogus")
    assert result.exit_code == 1, result.output
    assert "No such option '--bogus'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "--detailed-exitcode", "--bogus"),
        ("plan", "--format", "yaml"),  # a bad option value
        ("plan", "--timeout", "zero"),
        ("apply", "--max-deactivate-share", "2"),
        ("--bogus",),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_1_never_the_changes_present_code(args: tuple[str, ...]) -> None:
    result = run(None, *args)
    assert result.exit_code == 1, result.output
    assert "Error:" in result.stderr


@pytest.mark.parametrize("path", every_command(), ids=" ".join)
def test_every_command_takes_no_color(path: tuple[str, ...]) -> None:
    result = run(None, *path, "--no-color", "--help")
    assert result.exit_code == 0, result.output
    assert "--no-color" in result.stdout


def test_a_stray_os_error_is_one_line_and_exit_1(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS)

    def unreadable(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "trunks.yaml")

    monkeypatch.setattr("trunksync.config.load_desired", unreadable)
    result = run(None, "validate")
    assert result.exit_code == 1
    assert result.stderr == "Error: trunks.yaml: Permission denied\n"
    as_json = run(None, "validate", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["message"] == "trunks.yaml: Permission denied"


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", TWO_TRUNKS)


def test_plan_exits_2_with_creates_then_0_once_applied(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--detailed-exitcode").exit_code == 2
    assert run(emulator, "plan").exit_code == 0  # without the flag: success is 0
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    assert run(emulator, "plan", "--detailed-exitcode").exit_code == 0


def test_changed_entry_left_alone_is_a_warning_not_exit_2(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    trunks_file.write_text(TWO_TRUNKS.replace("+918044319240", "+918044319241"))
    planned = run(emulator, "plan", "--detailed-exitcode")
    assert planned.exit_code == 0, planned.output
    assert "changed" in planned.stdout.lower()  # shown, never hidden
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    assert run(emulator, "plan", "--detailed-exitcode", "--replace", "Exotel India").exit_code == 2


def test_orphan_left_alone_is_a_warning_not_exit_2(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    trunks_file.write_text(TWO_TRUNKS.split("  - trunk_name: Exotel India")[0])
    planned = run(emulator, "plan", "--detailed-exitcode", "--json")
    assert planned.exit_code == 0, planned.output
    actions = [change["action"] for change in json.loads(planned.stdout)["changes"]]
    assert "orphan" in actions
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    assert run(emulator, "plan", "--detailed-exitcode", "--prune").exit_code == 2


def test_conflict_is_a_warning_in_plan_and_an_error_in_apply(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    with emulator.client() as client:  # a trunk of the same name made outside trunksync
        body = {
            "trunk_name": "Exotel India",
            "trunk_type": "exotel",
            "trunk_config": {"exotel_number": "+918044319240"},
        }
        assert client.post("/sip/create-outbound-trunk", json=body).status_code == 200
    exotel_only = (
        "version: 1\ntrunks:\n  - trunk_name: Exotel India"
        + TWO_TRUNKS.split("  - trunk_name: Exotel India")[1]
    )
    trunks_file.write_text(exotel_only)
    planned = run(emulator, "plan", "--refresh", "--detailed-exitcode")
    assert planned.exit_code == 0, planned.output
    assert "conflict" in planned.stdout.lower()
    assert run(emulator, "apply", "--auto-approve").exit_code == 1
