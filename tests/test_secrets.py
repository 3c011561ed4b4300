"""Sentinel secrets through every command, including failing ones: they never
appear in any output, nor in the state, its backup or the lock files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from helpers import API_KEY, SECRET_ENV, SENTINELS, TWO_TRUNKS, write
from trunksync.cli import cli


def test_no_command_ever_shows_or_stores_a_secret(make_emulator: Any, isolated: Path) -> None:
    emulator = make_emulator(faults=["error-after", "drop-after"])
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    write(isolated / "bad.yaml", TWO_TRUNKS.replace("address:", "adress:"))
    write(
        isolated / "plain.yaml",
        TWO_TRUNKS.replace("${TWILIO_AUTH_TOKEN}", SECRET_ENV["TWILIO_AUTH_TOKEN"]),
    )
    env = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    wrong_key = {**env, "TRUNKSYNC_API_KEY": "wrong-" + API_KEY}
    runs = [
        (["validate"], env),
        (["validate", "-f", "bad.yaml"], env),
        (["validate", "-f", "plain.yaml"], env),
        (["plan", "-f", "plain.yaml", "--allow-plaintext-secrets"], env),
        (["plan"], env),
        (["plan", "--json"], env),
        (["apply", "--auto-approve"], wrong_key),
        (["apply", "--auto-approve", "--parallelism", "1"], env),
        (["plan", "--refresh", "--json"], env),
        (["apply", "--auto-approve", "--json"], env),
        (["apply", "--auto-approve"], {**env, "TWILIO_AUTH_TOKEN": "changed-token"}),
        (["output", "--json"], env),
        (["state", "list"], env),
        (["state", "show", "Twilio Production"], env),
        (["import", "Twilio Production", "ST_nope"], env),
        (["plan", "--refresh"], wrong_key),
    ]
    outputs = []
    for args, run_env in runs:
        result = CliRunner().invoke(cli, args, env=run_env)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        outputs.append(result.output)
    files = [p.read_text() for p in (isolated / "state").iterdir() if p.is_file()]
    assert any("ST_" in text for text in files)  # the runs did write state
    assert len(emulator.active_trunks()) == 2
    for text in outputs + files:
        for sentinel in (*SENTINELS, "changed-token"):
            assert sentinel not in text
