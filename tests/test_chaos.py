"""Processes that die, race and get interrupted: `trunksync apply` in subprocesses
against `trunksync emulator` in another, on a real loopback port.

TRUNKSYNC_CHAOS_TRIALS raises the number of kill -9 trials for a soak run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import API_KEY, SECRET_ENV, exotel_trunks, write
from processes import TRUNKSYNC, EmulatorProcess, emulator_process, trunksync

pytestmark = pytest.mark.e2e

TRIALS = int(os.environ.get("TRUNKSYNC_CHAOS_TRIALS", "30"))
NAMES = 12


def wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll a condition (not a race-hiding sleep): bounded, fails loudly."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def start_apply(cwd: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*TRUNKSYNC, "apply", "--auto-approve", "--timeout", "1", *extra],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # pytest may run with SIGINT ignored (a background job), and an ignored
        # signal is inherited: give the child the default, as a terminal would.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def created_or_exited(
    emulator: EmulatorProcess, process: subprocess.Popen[str], count: int
) -> Callable[[], bool]:
    def reached() -> bool:
        return process.poll() is not None or emulator.admin("GET", "stats")["create_calls"] >= count

    return reached


def check_invariants(emulator: EmulatorProcess, cwd: Path, names: int) -> None:
    active = emulator.active_trunks()
    by_name: dict[str, int] = {}
    for trunk in active:
        by_name[trunk["trunk_name"]] = by_name.get(trunk["trunk_name"], 0) + 1
    duplicates = {name: n for name, n in by_name.items() if n > 1}
    assert not duplicates, f"duplicate trunks: {duplicates}"
    assert len(by_name) == names, "a trunk is missing"
    state = json.loads((cwd / "state/trunks.json").read_text())
    assert {n: r["trunk_id"] for n, r in state["trunks"].items()} == {
        t["trunk_name"]: t["trunk_id"] for t in active
    }, "a state id is not the active trunk"
    assert state["intents"] == {}, "an intent was left"


def converge(cwd: Path, env: dict[str, str]) -> None:
    for _ in range(6):
        if trunksync("apply", "--auto-approve", "--timeout", "1", env=env, cwd=cwd).returncode == 0:
            return
    raise AssertionError("apply did not converge in 6 runs")


def test_kill_minus_9_at_random_moments_never_loses_or_duplicates(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("TRUNKSYNC_CHAOS_SEED", "1234")))
    with emulator_process("--latency-ms", "20") as emulator:
        env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        for trial in range(TRIALS):
            emulator.admin("POST", "reset")
            cwd = tmp_path / f"trial-{trial}"
            write(cwd / "trunks.yaml", exotel_trunks(NAMES))
            kill_after = rng.randint(0, NAMES)
            process = start_apply(cwd, env, "--parallelism", "4")
            wait_for(created_or_exited(emulator, process, kill_after))
            process.send_signal(signal.SIGKILL)
            process.wait()
            converge(cwd, env)
            check_invariants(emulator, cwd, NAMES)


def test_concurrent_applies_on_one_state(isolated: Path) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(20))
    with emulator_process("--latency-ms", "10") as emulator:
        env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        processes = [start_apply(isolated, env, "--lock-timeout", "120") for _ in range(4)]
        outcomes = [(p.wait(timeout=300), p.stdout.read() if p.stdout else "") for p in processes]
        assert [code for code, _ in outcomes] == [0, 0, 0, 0]
        assert sum("Apply finished: 20 created" in out for _, out in outcomes) == 1
        assert emulator.admin("GET", "stats")["create_calls"] == 20
        check_invariants(emulator, isolated, 20)


def test_a_second_apply_fails_at_once_naming_the_lock_holder(isolated: Path) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(30))
    with emulator_process("--latency-ms", "300") as emulator:
        env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        first = start_apply(isolated, env, "--parallelism", "1")
        wait_for(lambda: emulator.admin("GET", "stats")["create_calls"] >= 1)
        second = trunksync("apply", "--auto-approve", env=env, cwd=isolated)
        first.kill()
        first.wait()
    assert second.returncode == 1
    assert f"is locked by trunksync apply (pid {first.pid} on " in second.stderr
    assert "--lock-timeout" in second.stderr


def test_ctrl_c_finishes_in_flight_creates_records_them_and_exits_130(isolated: Path) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(40))
    with emulator_process("--latency-ms", "200") as emulator:
        env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        process = start_apply(isolated, env, "--parallelism", "4")
        wait_for(lambda: emulator.admin("GET", "stats")["create_calls"] >= 4)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "interrupted: in-flight creates were recorded" in err
        active = {t["trunk_name"]: t["trunk_id"] for t in emulator.active_trunks()}
        state = json.loads((isolated / "state/trunks.json").read_text())
        assert {n: r["trunk_id"] for n, r in state["trunks"].items()} == active
        assert state["intents"] == {}
        assert 4 <= len(active) < 40  # stopped early, nothing in flight was lost
        converge(isolated, env)
        check_invariants(emulator, isolated, 40)


def test_every_emulator_fault_in_a_subprocess_run(isolated: Path) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(10))
    faults = ["error-before", "error-after", "drop-after", "slow", "rate-limit"]
    options = [opt for kind in faults for opt in ("--fault", kind)]
    with emulator_process(*options, "--slow-seconds", "2", "--retry-after", "0") as emulator:
        env = {"TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY, **SECRET_ENV}
        result = trunksync(
            "apply", "--auto-approve", "--timeout", "1", "--parallelism", "1", env=env, cwd=isolated
        )
        assert result.returncode == 0, result.stdout + result.stderr
        check_invariants(emulator, isolated, 10)


def test_python_executable_is_the_one_running_tests() -> None:
    # The subprocess tests run `sys.executable -m trunksync`: same environment as pytest.
    assert TRUNKSYNC[0] == sys.executable
