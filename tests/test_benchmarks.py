"""The benchmark script keeps working: its --quick mode runs end to end (~15 s).

Only that it runs and prints its table is checked here; speed is measured by
the script itself (docs/performance.md), never asserted in tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
HEADER = "| benchmark | trunksync | reference | ratio | target | result |"


def test_benchmark_script_quick_run_prints_the_table(isolated: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=isolated,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| benchmark "))
    assert " ".join(header.split()) == HEADER
    for section in ("plan 1,000 trunks", "trunksync --help", "apply 40 creates", "peak RSS"):
        assert any(section in line for line in lines), section
