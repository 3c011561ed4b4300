"""Reliability soak: kill -9 `trunksync apply` at random moments while the emulator
injects random faults; rerun until it converges; count duplicates, lost ids, missing
trunks and leftover intents (all must be 0).

Each trial draws its own faults (from one seeded generator, so a run is repeatable
but no two trials replay the same ones) and queues them on the emulator; the
report gives the fault rate actually measured (faults injected / create calls).

    python scripts/soak.py --trials 200            # the figures in docs/reliability.md
    python scripts/soak.py --trials 3 --names 4    # a smoke run (the test suite does this)

Loopback only; every loop is bounded; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

TRUNKSYNC = [sys.executable, "-m", "trunksync"]
API_KEY = "soak-key"
MAX_RERUNS = 8
FAULT_KINDS = ("error-before", "error-after", "drop-after", "slow", "rate-limit")
# Faults queued per trunk of a trial: more than the creates a trial sends (retries and
# reruns included), so every create call draws from this trial's own faults.
FAULTS_PER_TRUNK = 4
MUST_BE_ZERO = ("duplicates", "missing", "lost_ids", "stale_ids", "intents_left", "unconverged")


def main() -> int:
    options = _parse()
    rng = random.Random(options.seed)
    totals: Counter[str] = Counter()
    emulator, url = _start_emulator(options)
    try:
        env = {**os.environ, "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}
        with tempfile.TemporaryDirectory() as folder:
            for trial in range(options.trials):
                faults = draw_faults(rng, options.names * FAULTS_PER_TRUNK, options.fault_rate)
                totals += _trial(Path(folder) / f"t{trial}", url, env, rng, options.names, faults)
    finally:
        emulator.terminate()
        emulator.wait(timeout=20)
    _print(options, totals)
    return 0 if all(totals[key] == 0 for key in MUST_BE_ZERO) else 1


def draw_faults(rng: random.Random, count: int, rate: float) -> list[str]:
    """`count` queue entries: a fault kind with probability `rate`, else "none"."""
    return [rng.choice(FAULT_KINDS) if rng.random() < rate else "none" for _ in range(count)]


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--names", type=int, default=12, help="trunks per trial")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    return parser.parse_args()


def _start_emulator(options: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    command = [
        *TRUNKSYNC, "emulator", "--port", "0", "--api-key", API_KEY,
        "--latency-ms", str(options.latency_ms), "--fault-rate", "0",
        "--slow-seconds", "1.5", "--retry-after", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().split()[-1]


def _trial(
    cwd: Path, url: str, env: dict[str, str], rng: random.Random, names: int, faults: list[str]
) -> Counter[str]:
    httpx.post(f"{url}/_emulator/reset").raise_for_status()
    httpx.post(f"{url}/_emulator/faults", json={"create": faults}).raise_for_status()
    cwd.mkdir(parents=True)
    (cwd / "trunks.yaml").write_text(_trunks(names))
    kill_after = rng.randint(0, names)
    apply = subprocess.Popen(
        _apply(), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while apply.poll() is None and _stats(url)["create_calls"] < kill_after:
        if time.monotonic() > deadline:
            break
        time.sleep(0.005)
    apply.send_signal(signal.SIGKILL)
    apply.wait()
    reruns, converged = 0, False
    while reruns < MAX_RERUNS and not converged:
        reruns += 1
        converged = not subprocess.call(
            _apply(), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return _check(cwd, url, names, reruns) + Counter(unconverged=0 if converged else 1)


def _apply() -> list[str]:
    return [*TRUNKSYNC, "apply", "--auto-approve", "--timeout", "1", "--parallelism", "4"]


def _check(cwd: Path, url: str, names: int, reruns: int) -> Counter[str]:
    trunks = httpx.get(f"{url}/_emulator/trunks").json()["trunks"]
    active = [t for t in trunks if t["active"]]
    per_name = Counter(t["trunk_name"] for t in active)
    state_file = cwd / "state" / "trunks.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    records = state.get("trunks", {})
    recorded = {record["trunk_id"] for record in records.values()}
    stats = _stats(url)
    return Counter(
        trials=1,
        kills=1,
        reruns=reruns,
        create_calls=stats["create_calls"],
        faults_injected=stats["faults_injected"],
        trunks_created=stats["trunks_created"],
        duplicates=sum(count - 1 for count in per_name.values()),
        # Names of the file with no active trunk (the file's names are Soak 0000...).
        missing=sum(1 for i in range(names) if per_name[f"Soak {i:04d}"] == 0),
        lost_ids=sum(1 for t in active if t["trunk_id"] not in recorded),
        stale_ids=len(recorded - {t["trunk_id"] for t in active}),
        intents_left=len(state.get("intents", {})),
    )


def _stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{url}/_emulator/stats").json()
    return stats


def _trunks(count: int) -> str:
    body = "".join(
        f"  - trunk_name: Soak {i:04d}\n    trunk_type: exotel\n    trunk_config:\n"
        f'      exotel_number: "+9180{i:08d}"\n'
        for i in range(count)
    )
    return "version: 1\ntrunks:\n" + body


def _print(options: argparse.Namespace, totals: Counter[str]) -> None:
    print(
        f"soak: {options.trials} trials x {options.names} trunks, fault rate "
        f"{options.fault_rate}, latency {options.latency_ms} ms, seed {options.seed}"
    )
    for key in ("trials", "kills", "reruns", "create_calls", "faults_injected", "trunks_created",
                "duplicates", "missing", "lost_ids", "stale_ids", "intents_left",
                "unconverged"):  # fmt: skip
        print(f"  {key:<16} {totals[key]}")
    calls = totals["create_calls"]
    measured = totals["faults_injected"] / calls if calls else 0.0
    print(
        f"  measured fault rate {measured:.1%} of create calls (asked for {options.fault_rate:.0%})"
    )


if __name__ == "__main__":
    sys.exit(main())
