"""Exit codes a pipeline can trust: 2 only when apply would change (or changed)
something; warnings (changed entries, orphans) do not count; failures are 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, exotel_trunks, write
from trunksync.cli import cli


def run(emulator: EmulatorHandle, *args: str, input: str | None = None) -> Result:
    env = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    return CliRunner().invoke(cli, list(args), env=env, input=input)


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", exotel_trunks(2))


def test_plan_exits_2_only_when_apply_would_change_something(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--detailed-exitcode").exit_code == 2  # creates
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    assert run(emulator, "plan", "--detailed-exitcode").exit_code == 0  # nothing
    # A changed entry (no update call: a warning) and an orphan (no --prune): still 0.
    text = exotel_trunks(2).replace("+918000000000", "+918000000099")
    write(trunks_file, text.split("  - trunk_name: Trunk 00001")[0])
    result = run(emulator, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "changed" in result.stdout and "orphan" in result.stdout
    assert run(emulator, "plan", "--detailed-exitcode", "--prune").exit_code == 2


def test_apply_exits_2_when_it_changed_something_and_0_when_not(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve", "--detailed-exitcode").exit_code == 2
    assert run(emulator, "apply", "--auto-approve", "--detailed-exitcode").exit_code == 0
    assert run(emulator, "apply", "--auto-approve").exit_code == 0


def test_apply_exits_1_on_a_conflict(emulator: EmulatorHandle, trunks_file: Path) -> None:
    with emulator.client() as http:
        body = {
            "trunk_name": "Trunk 00000",
            "trunk_type": "exotel",
            "trunk_config": {"exotel_number": "+918000000000"},
        }
        assert http.post("/sip/create-outbound-trunk", json=body).status_code == 200
    result = run(emulator, "apply", "--auto-approve", "--detailed-exitcode")
    assert result.exit_code == 1
    assert "1 change(s) not carried out" in result.stderr


def test_apply_from_stdin_needs_auto_approve(emulator: EmulatorHandle, trunks_file: Path) -> None:
    result = run(emulator, "apply", "-f", "-", input=exotel_trunks(1))
    assert result.exit_code == 1
    assert "stdin, which then cannot answer the prompt" in result.stderr
    assert emulator.stats()["create_calls"] == 0
