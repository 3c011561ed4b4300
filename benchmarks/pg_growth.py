"""PostgreSQL backend: 500 creates at 50 ms latency, --parallelism 10, into an empty
state and into a 10,000-trunk state (and the file backend beside it), whole processes.

    python benchmarks/pg_growth.py                 # both backends, 3 repetitions
    KINDS=pg REPS=5 python benchmarks/pg_growth.py
    EXISTING=0 python benchmarks/pg_growth.py      # only the empty state

Starts a throwaway PostgreSQL cluster (tests/pg_cluster.py: Debian's binaries) and
the emulator; everything on 127.0.0.1. benchmarks/run.py is the main benchmark.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import exotel_trunks
from pg_cluster import PgCluster, find_bin_dir
from trunksync.backends import open_backend
from trunksync.state import State, TrunkRecord

KINDS = os.environ.get("KINDS", "pg,file").split(",")
EXISTING = [int(x) for x in os.environ.get("EXISTING", "0,10000").split(",")]
REPS = int(os.environ.get("REPS", "3"))
CREATES, LATENCY_MS, PARALLELISM = 500, 50, 10


def big_state(count: int) -> State:
    state = State.new()
    for index in range(count):
        state.trunks[f"Existing {index:05d}"] = TrunkRecord(
            trunk_id=f"ST_old{index:08d}",
            trunk_type="exotel",
            config={"exotel_number": f"+9170{index:08d}"},
            created_at="2026-01-01T00:00:00.000000Z",
        )
    state.serial = 1
    return state


def main() -> None:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL is not installed (/usr/lib/postgresql/*/bin)")
    cluster = PgCluster(bin_dir, Path(tempfile.mkdtemp(prefix="bench-pg-")))
    cluster.init()
    cluster.start()
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trunksync",
            "emulator",
            "--port",
            "0",
            "--api-key",
            "k",
            "--latency-ms",
            str(LATENCY_MS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert emulator.stdout is not None
    env = {**os.environ, "TRUNKSYNC_API_URL": emulator.stdout.readline().split()[-1]}
    env["TRUNKSYNC_API_KEY"] = "k"
    results: dict[tuple[str, int], list[float]] = {}
    try:
        for rep in range(REPS):
            for kind in KINDS:
                for existing in EXISTING:
                    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
                    prefix = f"New{rep}{kind}{existing}"
                    (work / "trunks.yaml").write_text(exotel_trunks(CREATES, prefix=prefix))
                    if kind == "pg":
                        spec = cluster.url(cluster.create_database())
                    else:
                        spec = str(work / "state" / "trunks.json")
                    if existing:
                        open_backend(spec).seed(big_state(existing), command="bench")
                    argv = [sys.executable, "-m", "trunksync", "apply", "--auto-approve"]
                    argv += ["--parallelism", str(PARALLELISM), "--state", spec]
                    start = time.monotonic()
                    run = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
                    seconds = time.monotonic() - start
                    if run.returncode != 0:
                        sys.exit(run.stderr[-2000:])
                    assert len(open_backend(spec).load().trunks) == CREATES + existing
                    results.setdefault((kind, existing), []).append(seconds)
                    print(f"{kind} {existing}: {seconds:.2f}s", flush=True)
    finally:
        emulator.terminate()
        cluster.stop("fast")
    floor = CREATES * LATENCY_MS / 1000 / PARALLELISM
    for (kind, existing), times in sorted(results.items()):
        median = statistics.median(times)
        print(f"{kind:4} {existing:6} trunks: median {median:.2f}s = {median / floor:.2f}x floor")
    for kind in KINDS:
        if all((kind, n) in results for n in (0, 10_000)):
            growth = statistics.median(results[(kind, 10_000)]) / statistics.median(
                results[(kind, 0)]
            )
            print(f"{kind} growth, empty -> 10,000 trunks: {growth:.2f}x")


if __name__ == "__main__":
    main()
