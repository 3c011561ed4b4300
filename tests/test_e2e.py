"""End to end: `python -m trunksync` in a subprocess against `trunksync emulator`
in another, on a real loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import API_KEY, SECRET_ENV, SENTINELS, exotel_trunks, write
from processes import emulator_process, trunksync

pytestmark = pytest.mark.e2e


def test_plan_apply_plan_apply_converges(isolated: Path) -> None:
    count = 25
    write(isolated / "trunks.yaml", exotel_trunks(count))
    with emulator_process("--latency-ms", "5") as emulator:
        env = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}

        plan = trunksync("plan", "--json", env=env, cwd=isolated)
        assert json.loads(plan.stdout)["summary"]["create"] == count

        apply = trunksync("apply", "--auto-approve", "--parallelism", "8", env=env, cwd=isolated)
        assert apply.returncode == 0, apply.stderr
        assert f"Apply finished: {count} created, 0 failed" in apply.stdout

        remote = {t["trunk_name"]: t["trunk_id"] for t in emulator.active_trunks()}
        state = json.loads((isolated / "state/trunks.json").read_text())
        assert {name: rec["trunk_id"] for name, rec in state["trunks"].items()} == remote
        assert len(remote) == count

        again = trunksync("plan", "--detailed-exitcode", "--json", env=env, cwd=isolated)
        assert again.returncode == 0
        assert json.loads(again.stdout)["summary"]["noop"] == count

        second = trunksync("apply", "--auto-approve", env=env, cwd=isolated)
        assert second.returncode == 0
        assert emulator.admin("GET", "stats")["create_calls"] == count


def test_secrets_never_leave_the_process(isolated: Path) -> None:
    write(
        isolated / "trunks.yaml",
        "version: 1\ntrunks:\n  - trunk_name: T\n    trunk_type: twilio\n    trunk_config:\n"
        "      address: example.pstn.twilio.com\n      numbers: ['+15550100000']\n"
        "      username: ${TWILIO_ACCOUNT_SID}\n      password: ${TWILIO_AUTH_TOKEN}\n",
    )
    with emulator_process() as emulator:
        env = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        outputs = [
            trunksync(*args, env=env, cwd=isolated)
            for args in (
                ("validate",),
                ("plan",),
                ("plan", "--json"),
                ("apply", "--auto-approve"),
                ("apply", "--auto-approve", "--json"),
                ("output", "--json"),
                ("state", "show", "T"),
            )
        ]
    assert all(result.returncode == 0 for result in outputs), [r.stderr for r in outputs]
    files = [p.read_text() for p in (isolated / "state").iterdir() if p.is_file()]
    for text in [*(r.stdout + r.stderr for r in outputs), *files]:
        for sentinel in SENTINELS:
            assert sentinel not in text


def test_python_dash_m_reports_errors_without_traceback(isolated: Path) -> None:
    write(isolated / "trunks.yaml", "version: 1\ntrunks: [\n")
    result = trunksync("plan", env={}, cwd=isolated)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: trunks.yaml:3:1: invalid YAML")
    assert "Traceback" not in result.stderr
