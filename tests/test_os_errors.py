"""Ordinary OS errors are one line (`Error: ...`, exit 1), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, exotel_trunks, write
from trunksync.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "--auto-approve"],
        ["import", "Trunk 00000", "ST_abc"],
        ["state", "rm", "Trunk 00000"],
        ["state", "list"],
        ["output"],
        ["plan"],
    ],
)
def test_a_state_folder_that_is_a_file_is_one_line(
    emulator: EmulatorHandle, isolated: Path, args: list[str]
) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(1))
    write(isolated / "state", "not a folder")
    env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert emulator.stats()["create_calls"] == 0
    assert (isolated / "state").read_text() == "not a folder"
