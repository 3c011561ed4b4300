"""The soak script of docs/reliability.md keeps working (a tiny run of it), and
its evidence is honest: faults are drawn anew for each trial, at the stated rate,
and missing trunks and leftover intents are counted and fail the run."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


def soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_trial_draws_its_own_faults_at_the_stated_rate() -> None:
    soak = soak_module()
    rng = random.Random(2026)
    trials = [soak.draw_faults(rng, 48, 0.2) for _ in range(200)]
    assert len({tuple(faults) for faults in trials}) == len(trials)  # no trial replays another
    entries = [entry for faults in trials for entry in faults]
    share = sum(entry != "none" for entry in entries) / len(entries)
    assert 0.18 < share < 0.22  # 9,600 draws: a deterministic seed, not a timing threshold
    assert {entry for entry in entries if entry != "none"} == set(soak.FAULT_KINDS)


def test_every_kind_of_damage_fails_the_run() -> None:
    assert set(soak_module().MUST_BE_ZERO) == {
        "duplicates",
        "missing",
        "lost_ids",
        "stale_ids",
        "intents_left",
        "unconverged",
    }


@pytest.mark.e2e
@pytest.mark.slow  # about 30 s: two trials of kill -9 and reruns
def test_soak_smoke_run_finds_no_damage_and_reports_the_measured_rate() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "2", "--names", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for key in ("duplicates", "missing", "lost_ids", "stale_ids", "intents_left", "unconverged"):
        assert f"  {key:<16} 0\n" in result.stdout
    assert "  measured fault rate " in result.stdout
    assert "of create calls (asked for 20%)" in result.stdout
