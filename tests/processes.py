"""Run `trunksync` and `trunksync emulator` as real subprocesses over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TRUNKSYNC = [sys.executable, "-m", "trunksync"]


class EmulatorProcess:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_emulator/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def active_trunks(self) -> list[dict[str, Any]]:
        return [t for t in self.admin("GET", "trunks")["trunks"] if t["active"]]


@contextmanager
def emulator_process(*options: str, api_key: str = "test-key") -> Iterator[EmulatorProcess]:
    process = subprocess.Popen(
        [*TRUNKSYNC, "emulator", "--port", "0", "--api-key", api_key, *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server announces itself
        assert line.startswith("trunksync emulator listening on "), line
        yield EmulatorProcess(process, line.split()[-1])
    finally:
        process.terminate()
        process.wait(timeout=20)


def trunksync(
    *args: str, env: dict[str, str], cwd: Path, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TRUNKSYNC, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
