"""The local backend's cost per durable change, against the size of the state.

    python benchmarks/local_commits.py                 # 500 creates, 10 workers, 50 ms each
    python benchmarks/local_commits.py --latency-ms 0  # the backend alone

Each case is one whole lock as apply holds it: take the lock (folding nothing),
load the state, then 500 creates from 10 worker threads, each writing its
intent, waiting the simulated request latency and writing its id (two
journal records, each fsynced), then the fold at the end of the lock. The
same run against an empty state and against one that already holds 10,000
trunks; the cases interleave, the table shows medians. Target: growth <= 1.1x.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordId, RecordIntent
from trunksync.state import Intent, State, StateStore, TrunkRecord

T0 = "2024-01-15T10:00:00.000000Z"


def _intent(index: int) -> Intent:
    return Intent(
        trunk_type="exotel",  # type: ignore[arg-type]
        config={"exotel_number": f"+9180{index:08d}", "sip_port": 5060},
        request_fingerprint="hmac-sha256:00:11",
        started_at=T0,
    )


def _prepare(folder: Path, existing: int) -> LocalBackend:
    path = folder / "state" / "trunks.json"
    state = State.new()
    for index in range(existing):
        state.trunks[f"Existing {index}"] = TrunkRecord(
            trunk_id=f"ST_old{index:08d}",
            trunk_type="twilio",  # type: ignore[arg-type]
            config={"numbers": [f"+1555{index:07d}"], "address": "sip.example.com"},
            created_at=T0,
        )
    StateStore(path).save(state)
    return LocalBackend(path)


class Timing(NamedTuple):
    total: float  # the whole lock: take it, load, commit, fold
    commits: float  # the commits alone (what grows per create if anything does)


def _one_run(backend: LocalBackend, creates: int, workers: int, latency: float) -> Timing:
    started = time.perf_counter()
    with backend.lock(timeout=0, command="benchmark") as locked:
        # As `trunksync apply` does once the state is loaded: the collector need
        # not rescan what lives until the end while the workers allocate.
        gc.freeze()

        def create(index: int) -> None:
            name = f"New {index}"
            intent = _intent(index)
            locked.commit([RecordIntent(name, intent)])
            time.sleep(latency)  # the POST to the platform
            locked.commit([RecordId(name, intent.record(f"ST_new{index:08d}", T0))])

        committing = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, range(creates)))
        commits = time.perf_counter() - committing
    elapsed = time.perf_counter() - started
    gc.unfreeze()
    gc.collect()
    return Timing(elapsed, commits)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--existing", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args(argv)
    latency = options.latency_ms / 1000
    sizes = (0, options.existing)
    times: dict[int, list[Timing]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory() as scratch:
        for rep in range(options.reps):
            for size in sizes if rep % 2 == 0 else sizes[::-1]:
                folder = Path(scratch) / f"{size}-{rep}"
                backend = _prepare(folder, size)
                times[size].append(_one_run(backend, options.creates, options.workers, latency))
    empty, full = (statistics.median(t.total for t in times[size]) for size in sizes)
    phase_empty, phase_full = (statistics.median(t.commits for t in times[s]) for s in sizes)
    print(
        f"{options.creates} creates, {options.workers} workers, "
        f"{options.latency_ms:g} ms latency, {options.reps} reps (median)"
    )
    for label, total, phase in (
        ("into an empty state", empty, phase_empty),
        (f"into {options.existing:,} trunks", full, phase_full),
    ):
        print(f"  {label:24s} {total:.3f} s; commits alone {phase:.3f} s, lock+load+fold "
              f"{total - phase:.3f} s")  # fmt: skip
    print(f"  growth: {full / empty:.3f}x (target <= 1.1x); commits alone: "
          f"{phase_full / phase_empty:.3f}x")  # fmt: skip
    return 0 if full / empty <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
