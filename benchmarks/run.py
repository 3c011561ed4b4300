"""Benchmarks: trunksync next to its floors and a peer, measured side by side in one run.

    python benchmarks/run.py            # the full run (a few minutes on 2 cores)
    python benchmarks/run.py --quick    # smaller sizes, fewer repetitions (well under a minute)
    python benchmarks/run.py --smoke    # the smallest run: only proves the script works

Every measurement is a whole process, timed from the outside (wall clock, and peak
RSS from wait4), as a user or a CI job would run it. The cases of one section run
interleaved, in a rotating order, for several repetitions; the table shows medians
and ratios. Targets are judged only at the sizes they are stated for (the full
run), except the `--help` wall time, which does not depend on size. Speed is never
asserted by the unit tests; `--check` makes this script exit 1 on a missed target.

The peer, octoDNS, is optional: `pip install octodns` into the same environment;
without it its rows say "skipped". Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

PYTHON = sys.executable
API_KEY = "bench-key"
SECRET_ENV = {
    "TWILIO_ACCOUNT_SID": "ACbench0000000000000000000000000001",
    "TWILIO_AUTH_TOKEN": "bench-auth-token",
}
LATENCY_MS = 50
PROCESS_TIMEOUT = 300.0  # seconds; no single run may take longer
HEADER = "| benchmark | trunksync | reference | ratio | target | result |"
SKIP_OCTODNS = "skipped (pip install octodns)"

FLOOR_SCRIPT = "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"
# Not a target: the parse alone, with the cyclic GC paused as trunksync pauses it.
PARSE_SCRIPT = (
    "import gc, sys, yaml; gc.disable(); "
    "yaml.compose(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"
)
STATE_SCRIPT = """
import os, sys
from pathlib import Path
from trunksync.apply import record_created
from trunksync.config import load_desired
from trunksync.state import State, StateStore

desired = load_desired(Path(sys.argv[1]), os.environ)
state = State.new()
for index, trunk in enumerate(desired.trunks):
    record_created(state, trunk, f"ST_bench{index:08d}")
StateStore(Path(sys.argv[2])).save(state)
"""
OCTODNS_SCRIPT = (
    "import sys; from octodns.cmds.sync import main; sys.argv[0] = 'octodns-sync'; main()"
)
CURL_LOOP = """\
#!/usr/bin/env bash
# What a user would write instead of trunksync: one POST after another.
set -eu
url=$1
count=$2
for i in $(seq 1 "$count"); do
  curl -sS -f -X POST "$url/sip/create-outbound-trunk" \\
    -H "Authorization: Bearer $TRUNKSYNC_API_KEY" -H "Content-Type: application/json" \\
    -d "{\\"trunk_name\\": \\"Curl $i\\", \\"trunk_type\\": \\"exotel\\", \\
\\"trunk_config\\": {\\"exotel_number\\": \\"+9180$(printf %08d "$i")\\"}}" >> responses.jsonl
  echo >> responses.jsonl
done
"""


class Mode(NamedTuple):
    name: str
    plan_sizes: tuple[int, ...]
    plan_reps: int
    startup_reps: int
    creates: int
    apply_reps: int  # parallelism 10 and 32
    serial_reps: int  # parallelism 1 and the curl loop: 25 s+ a run at 500 creates
    warm_up: bool
    full: bool


MODES = {
    "full": Mode("full", (1_000, 10_000), 5, 10, 500, 3, 2, True, True),
    "quick": Mode("quick", (1_000,), 3, 5, 40, 2, 1, True, False),
    "smoke": Mode("smoke", (100,), 1, 1, 10, 1, 1, False, False),
}


class Sample(NamedTuple):
    seconds: float
    max_rss_mb: float


@dataclass
class Case:
    name: str
    run: Callable[[], Sample]
    reps: int


@dataclass
class Row:
    benchmark: str
    trunksync: str
    reference: str
    ratio: str
    target: str = "-"
    result: str = "-"


class BenchmarkError(Exception):
    """A benchmarked command failed: the table would be meaningless."""


# ---------------------------------------------------------------- processes


def trunksync_command() -> list[str]:
    """The installed console script, as users run it (else `python -m trunksync`)."""
    script = Path(PYTHON).parent / "trunksync"
    return [str(script)] if script.exists() else [PYTHON, "-m", "trunksync"]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKSYNC_")}
    return {**env, **SECRET_ENV}


def timed(argv: Sequence[str], env: dict[str, str], cwd: Path) -> Sample:
    """Run one process to completion: its wall time and its own peak RSS."""
    log = cwd / "last-run.log"
    with log.open("wb") as output:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=output
        )
        killer = threading.Timer(PROCESS_TIMEOUT, _kill, (process.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise BenchmarkError(f"{' '.join(argv)} exited {process.returncode}:\n{tail}")
    return Sample(seconds, usage.ru_maxrss / 1024)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def measure(cases: list[Case], warm_up: bool) -> dict[str, list[Sample]]:
    """Run the cases interleaved, rotating the order each repetition."""
    if warm_up:  # page cache and .pyc files, for every case alike
        for case in cases:
            case.run()
    samples: dict[str, list[Sample]] = {case.name: [] for case in cases}
    for rep in range(max(case.reps for case in cases)):
        shift = rep % len(cases)
        for case in cases[shift:] + cases[:shift]:
            if rep < case.reps:
                samples[case.name].append(case.run())
    return samples


def median(samples: list[Sample]) -> float:
    return statistics.median(sample.seconds for sample in samples)


def seconds_text(value: float, count: int) -> str:
    return f"{value:.3f} s (n={count})"


def judge(met: bool, applies: bool) -> str:
    if not applies:
        return "(full run only)"
    return "met" if met else "MISSED"


# ---------------------------------------------------------------- inputs


def trunks_yaml(count: int, prefix: str = "Trunk") -> str:
    """`count` trunks, alternating twilio (secrets from ${VAR}) and exotel."""
    lines = ["version: 1", "trunks:"]
    for index in range(count):
        lines += [f"  - trunk_name: {prefix} {index:06d}"]
        if index % 2 == 0:
            lines += [
                "    trunk_type: twilio",
                "    trunk_config:",
                f"      address: t{index}.pstn.twilio.com",
                f'      numbers: ["+1555{index:07d}", "+1666{index:07d}"]',
                "      username: ${TWILIO_ACCOUNT_SID}",
                "      password: ${TWILIO_AUTH_TOKEN}",
            ]
        else:
            lines += [
                "    trunk_type: exotel",
                "    trunk_config:",
                f'      exotel_number: "+9180{index:08d}"',
                f"      sip_host: sip{index}.example.in",
                "      sip_port: 5070",
            ]
    return "\n".join(lines) + "\n"


def write_in_sync_state(trunks_file: Path, state_file: Path) -> None:
    """The state an apply of `trunks_file` would leave, built with trunksync's own API.

    In a child process: the peak RSS that wait4 reports for a child counts the
    parent's memory at fork time, so this process must stay small.
    """
    env = base_env()
    subprocess.run(
        [PYTHON, "-c", STATE_SCRIPT, str(trunks_file), str(state_file)],
        env=env,
        check=True,
        timeout=PROCESS_TIMEOUT,
    )


def octodns_config(folder: Path, count: int) -> Path:
    """A zone of `count` records (A and TXT) that two YamlProviders hold identically."""
    lines = ["---"]
    for index in range(count):
        lines.append(f"host-{index:06d}:")
        if index % 2 == 0:
            address = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
            lines += ["  type: A", f"  value: {address}"]
        else:
            lines += ["  type: TXT", f"  value: v=trunk{index:06d}"]
    zone = "\n".join(lines) + "\n"
    for side in ("source", "target"):
        (folder / side).mkdir(parents=True)
        (folder / side / "example.com.yaml").write_text(zone)
    config = folder / "octodns.yaml"
    config.write_text(
        "---\nproviders:\n"
        "  source:\n    class: octodns.provider.yaml.YamlProvider\n    directory: ./source\n"
        "  target:\n    class: octodns.provider.yaml.YamlProvider\n    directory: ./target\n"
        "zones:\n  example.com.:\n    sources: [source]\n    targets: [target]\n"
    )
    return config


def has_octodns() -> bool:
    return importlib.util.find_spec("octodns") is not None


# ---------------------------------------------------------------- sections


def plan_section(mode: Mode, work: Path) -> list[Row]:
    rows: list[Row] = []
    for count in mode.plan_sizes:
        rows += plan_rows(count, measure(plan_cases(count, mode, work), mode.warm_up), mode)
    return rows


def plan_cases(count: int, mode: Mode, work: Path) -> list[Case]:
    """The floor, the parse, trunksync's two plans and octoDNS, on `count` entries."""
    env, reps = base_env(), mode.plan_reps
    folder = work / f"plan-{count}"
    folder.mkdir()
    trunks = folder / "trunks.yaml"
    trunks.write_text(trunks_yaml(count))
    in_sync = folder / "in-sync.json"
    write_in_sync_state(trunks, in_sync)
    empty = folder / "absent" / "state.json"  # no file yet: every trunk is a create
    plan = [*trunksync_command(), "plan", "-f", str(trunks), "--state"]
    floor = [PYTHON, "-c", FLOOR_SCRIPT, str(trunks)]
    parse = [PYTHON, "-c", PARSE_SCRIPT, str(trunks)]
    cases = [
        Case("floor", lambda: timed(floor, env, folder), reps),
        Case("parse", lambda: timed(parse, env, folder), reps),
        Case("noop", lambda: timed([*plan, str(in_sync)], env, folder), reps),
        Case("create", lambda: timed([*plan, str(empty)], env, folder), reps),
    ]
    if has_octodns():
        config = octodns_config(folder / "octodns", count)
        octodns = [PYTHON, "-c", OCTODNS_SCRIPT, "--config-file", str(config)]
        cases.append(Case("octodns", lambda: timed(octodns, env, config.parent), reps))
    return cases


def plan_rows(count: int, samples: dict[str, list[Sample]], mode: Mode) -> list[Row]:
    at_target_size = mode.full and count == 10_000
    floor, parse = median(samples["floor"]), median(samples["parse"])
    noop, create = median(samples["noop"]), median(samples["create"])
    reps = len(samples["noop"])
    floor_text = f"CSafeLoader load {floor:.3f} s"
    rows = [
        Row(
            f"plan {count:,} trunks, in sync (all noop)",
            seconds_text(noop, reps),
            floor_text,
            f"{noop / floor:.2f}x floor",
            "<= 1.5x floor" if count == 10_000 else "-",
            judge(noop <= 1.5 * floor, at_target_size) if count == 10_000 else "-",
        ),
        Row(
            f"plan {count:,} trunks, empty state (all create)",
            seconds_text(create, reps),
            floor_text,
            f"{create / floor:.2f}x floor",
        ),
        Row(
            f"plan {count:,} trunks, in sync, vs parse only",
            seconds_text(noop, reps),
            f"CSafeLoader compose, GC off {parse:.3f} s",
            f"{noop / parse:.2f}x parse",
        ),
    ]
    peer = f"plan {count:,} trunks, in sync, vs octoDNS"
    if "octodns" in samples:
        octodns = median(samples["octodns"])
        rows.append(
            Row(
                peer,
                seconds_text(noop, reps),
                f"octoDNS no-change plan {octodns:.3f} s",
                f"{octodns / noop:.1f}x faster",
                ">= 2x faster" if count == 10_000 else "-",
                judge(octodns >= 2 * noop, at_target_size) if count == 10_000 else "-",
            )
        )
    else:
        rows.append(Row(peer, seconds_text(noop, reps), SKIP_OCTODNS, "-"))
    if count == max(mode.plan_sizes):
        rss = max(sample.max_rss_mb for sample in samples["noop"])
        floor_rss = max(sample.max_rss_mb for sample in samples["floor"])
        rows.append(
            Row(
                f"peak RSS, plan {count:,} trunks in sync",
                f"{rss:.0f} MB",
                f"CSafeLoader load {floor_rss:.0f} MB",
                f"{rss / floor_rss:.2f}x floor",
                "<= 150 MB" if count == 10_000 else "-",
                judge(rss <= 150, at_target_size) if count == 10_000 else "-",
            )
        )
    return rows


def startup_section(mode: Mode, work: Path) -> list[Row]:
    folder = work / "startup"
    folder.mkdir()
    trunks = folder / "trunks.yaml"
    trunks.write_text(trunks_yaml(10))
    env, command, reps = base_env(), trunksync_command(), mode.startup_reps
    validate_argv = [*command, "validate", "-f", str(trunks)]
    cases = [
        Case("pass", lambda: timed([PYTHON, "-c", "pass"], env, folder), reps),
        Case("click", lambda: timed([PYTHON, "-c", "import click"], env, folder), reps),
        Case("help", lambda: timed([*command, "--help"], env, folder), reps),
        Case("validate", lambda: timed(validate_argv, env, folder), reps),
    ]
    samples = measure(cases, mode.warm_up)
    bare, click = median(samples["pass"]), median(samples["click"])
    helped, validate = median(samples["help"]), median(samples["validate"])
    reps = len(samples["help"])
    return [
        Row(
            "trunksync --help",
            seconds_text(helped, reps),
            f"python -c pass {bare:.3f} s; import click {click:.3f} s",
            f"{helped / click:.2f}x import click",
            "<= 0.150 s",
            judge(helped <= 0.150, True),
        ),
        Row(
            "trunksync validate, 10 trunks",
            seconds_text(validate, reps),
            f"python -c 'import click' {click:.3f} s",
            f"{validate / click:.2f}x import click",
        ),
    ]


@contextmanager
def emulator(latency_ms: int, folder: Path) -> Iterator[str]:
    """`trunksync emulator` on a free loopback port; yields its URL, stops it after."""
    process = subprocess.Popen(
        [
            *trunksync_command(),
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--latency-ms",
            str(latency_ms),
        ],
        env=base_env(),
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        killer = threading.Timer(60, _kill, (process.pid,))  # never wait forever for the line
        killer.start()
        line = process.stdout.readline()
        killer.cancel()
        if not line.startswith("trunksync emulator listening on "):
            raise BenchmarkError(f"the emulator did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def admin(url: str, method: str, path: str) -> dict[str, object]:
    request = urllib.request.Request(f"{url}/_emulator/{path}", method=method, data=b"")
    if method == "GET":
        request = urllib.request.Request(f"{url}/_emulator/{path}")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def apply_section(mode: Mode, work: Path) -> list[Row]:
    folder = work / "apply"
    folder.mkdir()
    trunks = folder / "trunks.yaml"
    trunks.write_text(trunks_yaml(mode.creates, prefix="Apply"))
    loop = folder / "curl-loop.sh"
    loop.write_text(CURL_LOOP)
    runs = iter(range(1_000_000))
    with emulator(LATENCY_MS, folder) as url:
        env = {**base_env(), "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}

        def run_apply(parallelism: int) -> Sample:
            admin(url, "POST", "reset")
            state = folder / f"run-{next(runs)}" / "trunks.json"
            argv = [*trunksync_command(), "apply", "-f", str(trunks), "--state", str(state)]
            argv += ["--auto-approve", "--parallelism", str(parallelism)]
            sample = timed(argv, env, folder)
            recorded = len(json.loads(state.read_text())["trunks"])
            if recorded != mode.creates:
                raise BenchmarkError(f"apply recorded {recorded} of {mode.creates} trunk ids")
            return sample

        def run_curl() -> Sample:
            admin(url, "POST", "reset")
            run_folder = folder / f"run-{next(runs)}"
            run_folder.mkdir()
            sample = timed(["bash", str(loop), url, str(mode.creates)], env, run_folder)
            created = admin(url, "GET", "stats")["trunks_created"]
            if created != mode.creates:
                raise BenchmarkError(f"the curl loop created {created} of {mode.creates}")
            return sample

        cases = [
            Case("p1", lambda: run_apply(1), mode.serial_reps),
            Case("p10", lambda: run_apply(10), mode.apply_reps),
            Case("p32", lambda: run_apply(32), mode.apply_reps),
        ]
        curl = shutil.which("curl") is not None
        if curl:
            cases.append(Case("curl", run_curl, mode.serial_reps))
        samples = measure(cases, warm_up=False)  # the emulator is warm after its first run
    return apply_rows(mode, samples)


def apply_rows(mode: Mode, samples: dict[str, list[Sample]]) -> list[Row]:
    rows: list[Row] = []
    limits = {1: None, 10: 1.3, 32: 1.6}
    for parallelism, limit in limits.items():
        seconds = median(samples[f"p{parallelism}"])
        floor = mode.creates * LATENCY_MS / 1000 / parallelism
        rows.append(
            Row(
                f"apply {mode.creates} creates at {LATENCY_MS} ms, --parallelism {parallelism}",
                seconds_text(seconds, len(samples[f"p{parallelism}"])),
                f"floor {mode.creates} x {LATENCY_MS} ms / {parallelism} = {floor:.3f} s",
                f"{seconds / floor:.2f}x floor",
                f"<= {limit}x floor" if limit else "-",
                judge(seconds <= limit * floor, mode.full) if limit else "-",
            )
        )
    default = median(samples["p10"])
    name = f"apply {mode.creates} creates, --parallelism 10, vs a curl loop"
    if "curl" in samples:
        curl = median(samples["curl"])
        rows.append(
            Row(
                name,
                seconds_text(default, len(samples["p10"])),
                f"shell loop of curl POSTs {curl:.3f} s (n={len(samples['curl'])})",
                f"{curl / default:.1f}x faster",
                ">= 8x faster",
                judge(curl >= 8 * default, mode.full),
            )
        )
    else:
        rows.append(Row(name, seconds_text(default, len(samples["p10"])), "skipped (no curl)", "-"))
    return rows


# ---------------------------------------------------------------- output


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
        f"{platform.machine()}, {platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    cells = [[r.benchmark, r.trunksync, r.reference, r.ratio, r.target, r.result] for r in rows]
    titles = [part.strip() for part in HEADER.strip("|").split("|")]
    widths = [max(len(text) for text in column) for column in zip(titles, *cells, strict=False)]

    def line(texts: list[str]) -> str:
        return "| " + " | ".join(t.ljust(w) for t, w in zip(texts, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(titles), separator, *(line(c) for c in cells)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions")
    size.add_argument("--smoke", action="store_true", help="the smallest run (for the tests)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    options = parser.parse_args(argv)
    mode = MODES["quick" if options.quick else "smoke" if options.smoke else "full"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trunksync-bench-") as folder:
        work = Path(folder)
        rows: list[Row] = []
        for section in (plan_section, startup_section, apply_section):
            print(f"running {section.__name__.removesuffix('_section')}...", file=sys.stderr)
            rows += section(mode, work)
    print(f"mode: {mode.name}; machine: {machine()}")
    if not has_octodns():
        print(f"octoDNS rows: {SKIP_OCTODNS}")
    print()
    print(table(rows))
    print(f"\nmedians of interleaved runs; {time.perf_counter() - started:.0f} s in all")
    missed = [row.benchmark for row in rows if row.result == "MISSED"]
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
