"""The soak script of docs/reliability.md keeps working (a tiny run of it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


def test_soak_smoke_run_finds_no_duplicates_and_no_lost_ids() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "2", "--names", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  duplicates       0\n" in result.stdout
    assert "  lost_ids         0\n" in result.stdout
