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

State backends are measured side by side: the local file always, PostgreSQL when
given one (`--state postgresql://...` is what trunksync is run with):

    python benchmarks/run.py --pg-url postgresql://user@127.0.0.1:5432/postgres
    python benchmarks/run.py --pg       # a throwaway cluster: initdb in a temp folder
                                        # (as the `postgres` user when run as root)

With --pg-url the role must be allowed to CREATE DATABASE: every run gets a fresh
database (the grown-state runs a copy of a seeded one, `CREATE DATABASE ... TEMPLATE`),
and the databases it made are dropped at the end. `--only apply,growth` runs only
those sections.
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
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
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
    grown_state: int  # trunks already in the state (and on the platform) for the growth rows
    growth_reps: int


MODES = {
    "full": Mode("full", (1_000, 10_000), 5, 10, 500, 3, 2, True, True, 10_000, 5),
    "quick": Mode("quick", (1_000,), 3, 5, 40, 2, 1, True, False, 200, 1),
    "smoke": Mode("smoke", (100,), 1, 1, 10, 1, 1, False, False, 20, 1),
}
SECTIONS = ("plan", "startup", "apply", "growth")
# Targets of the apply rows, as multiples of the latency floor (issue 9).
APPLY_LIMITS = {("local", 10): 1.25, ("local", 32): 1.6, ("postgresql", 10): 1.35}
GROWTH_LIMIT = 1.1
# The libraries every trunksync command stands on: the floor of any CLI built on them.
STACK_IMPORTS = "import pydantic, httpx, yaml, click"


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
def emulator(latency_ms: int, folder: Path, data: Path | None = None) -> Iterator[str]:
    """`trunksync emulator` on a free loopback port; yields its URL, stops it after.

    With `data`, the emulator keeps its trunks in that file (and FILE.log); it is
    stopped with SIGTERM, so the log is folded into the file before this returns.
    """
    options = ["--data", str(data)] if data is not None else []
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
            *options,
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
            process.wait(timeout=60)
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


# ---------------------------------------------------------------- state backends


class PgServer:
    """A PostgreSQL server the benchmark may create (and drops) databases in.

    Either one the caller names (`--pg-url`, a role with CREATEDB), or a
    throwaway cluster (`--pg`): initdb in a temporary folder, as the `postgres`
    user when this runs as root (PostgreSQL refuses root), on a free loopback
    port; stopped and deleted at the end.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._made: list[str] = []
        self._names = iter(range(1_000_000))

    def url(self, database: str) -> str:
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + database))

    def new_database(self, template: str | None = None) -> str:
        """A fresh database (a copy of `template`, if given); returns its name."""
        name = f"trunksync_bench_{os.getpid()}_{next(self._names)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self._execute(f'CREATE DATABASE "{name}"{copy}')
        self._made.append(name)
        return name

    def has_tables(self, url: str) -> bool:
        import psycopg

        with psycopg.connect(url, connect_timeout=10) as connection:
            row = connection.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        return row is not None and row[0] > 0

    def drop_all(self) -> None:
        for name in reversed(self._made):
            with suppress(Exception):
                self._execute(f'DROP DATABASE IF EXISTS "{name}"')
        self._made.clear()

    def _execute(self, sql: str) -> None:
        import psycopg  # the `postgres` extra; only needed with --pg or --pg-url

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(sql.encode())


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise BenchmarkError("--pg: no PostgreSQL under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """initdb + pg_ctl start in a temporary folder; yields an admin URL; removes it all."""
    binaries = postgres_bin()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="trunksync-bench-pg-"))
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    user = "postgres" if as_postgres else os.environ.get("USER", "postgres")

    def run(*argv: str) -> None:
        subprocess.run([*as_postgres, *argv], check=True, capture_output=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}"
        log = str(folder / "log")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-o", options, "-l", log,
            "start")  # fmt: skip
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        with suppress(Exception):
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


class Backend(NamedTuple):
    """How one state backend gets a fresh (or seeded) state for every run."""

    kind: str  # "local" or "postgresql"
    pg: PgServer | None = None

    def fresh(self, folder: Path, seed: str | None = None) -> str:
        """A `--state` spec: an empty state, or a copy of the `seed` spec's state."""
        if self.pg is None:
            state = folder / "state" / "trunks.json"
            if seed is not None:  # the whole folder: the file and any journal beside it
                shutil.copytree(Path(seed).parent, state.parent, ignore=_lock_files)
            return str(state)
        template = None if seed is None else urllib.parse.urlsplit(seed).path.lstrip("/")
        return self.pg.url(self.pg.new_database(template))


def _lock_files(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if ".lock" in name]


def local_trunk_count(spec: str) -> int | None:
    """How many trunks a local state holds (None for other backends: not read here)."""
    if "://" in spec:
        return None
    return len(json.loads(Path(spec).read_text())["trunks"])


def check_backend(backend: Backend, folder: Path) -> str | None:
    """None if trunksync keeps its state in this backend now, else why not (one line).

    One apply of one trunk: it must succeed, leave tables in the database, and
    leave no local file behind (an old CLI would take the URL for a path).
    """
    probe = folder / f"probe-{backend.kind}"
    probe.mkdir()
    trunks = probe / "trunks.yaml"
    trunks.write_text(trunks_yaml(1))
    spec = backend.fresh(probe)
    with emulator(0, probe) as url:
        env = {**base_env(), "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}
        result = subprocess.run(
            apply_argv(trunks, spec, 1),
            env=env,
            cwd=probe,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
        )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        return f"apply --state {backend.kind}://... exited {result.returncode}: {lines[-1][:80]}"
    stray = sorted(p.name for p in probe.iterdir() if p.name.startswith("postgres"))
    if stray:
        return f"trunksync took the URL for a path (wrote {stray[0]!r})"
    if backend.pg is not None and not backend.pg.has_tables(spec):
        return "apply left no tables in the database"
    return None


# ---------------------------------------------------------------- apply


def apply_argv(trunks: Path, spec: str, parallelism: int) -> list[str]:
    argv = [*trunksync_command(), "apply", "-f", str(trunks), "--state", spec]
    return [*argv, "--auto-approve", "--parallelism", str(parallelism)]


def apply_section(mode: Mode, work: Path, backends: list[Backend]) -> list[Row]:
    folder = work / "apply"
    folder.mkdir()
    trunks = folder / "trunks.yaml"
    trunks.write_text(trunks_yaml(mode.creates, prefix="Apply"))
    loop = folder / "curl-loop.sh"
    loop.write_text(CURL_LOOP)
    runs = iter(range(1_000_000))
    with emulator(LATENCY_MS, folder) as url:
        env = {**base_env(), "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}

        def run_apply(backend: Backend, parallelism: int) -> Sample:
            admin(url, "POST", "reset")
            spec = backend.fresh(folder / f"run-{next(runs)}")
            sample = timed(apply_argv(trunks, spec, parallelism), env, folder)
            created = admin(url, "GET", "stats")["trunks_created"]
            recorded = local_trunk_count(spec)
            if created != mode.creates or recorded not in (None, mode.creates):
                raise BenchmarkError(
                    f"apply created {created} and recorded {recorded} of {mode.creates}"
                )
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

        def run_noop() -> Sample:
            """The fixed cost of a run: the same file and state, every trunk already there."""
            admin(url, "POST", "reset")
            spec = local.fresh(folder / f"run-{next(runs)}")
            timed(apply_argv(trunks, spec, 32), env, folder)  # creates them; not measured
            sample = timed(apply_argv(trunks, spec, 32), env, folder)
            created = admin(url, "GET", "stats")["trunks_created"]
            if created != mode.creates:
                raise BenchmarkError(f"the in-sync apply created {created - mode.creates}")
            return sample

        def run_imports() -> Sample:
            return timed([PYTHON, "-c", STACK_IMPORTS], env, folder)

        local = Backend("local")
        cases = [
            Case("fixed noop", run_noop, mode.apply_reps),
            Case("fixed imports", run_imports, mode.apply_reps),
            Case("local p1", lambda: run_apply(local, 1), mode.serial_reps),
            Case("local p10", lambda: run_apply(local, 10), mode.apply_reps),
            Case("local p32", lambda: run_apply(local, 32), mode.apply_reps),
        ]
        for backend in backends:
            if backend.kind != "local":
                run = (lambda b: lambda: run_apply(b, 10))(backend)
                cases.append(Case(f"{backend.kind} p10", run, mode.apply_reps))
        if shutil.which("curl") is not None:
            cases.append(Case("curl", run_curl, mode.serial_reps))
        samples = measure(cases, warm_up=False)  # the emulator is warm after its first run
    return apply_rows(mode, samples)


def apply_rows(mode: Mode, samples: dict[str, list[Sample]]) -> list[Row]:
    rows: list[Row] = []
    for case in samples:
        if case == "curl" or case.startswith("fixed "):
            continue
        kind, parallelism = case.split()[0], int(case.split()[1][1:])
        limit = APPLY_LIMITS.get((kind, parallelism))
        seconds = median(samples[case])
        floor = mode.creates * LATENCY_MS / 1000 / parallelism
        rows.append(
            Row(
                f"apply {mode.creates} creates at {LATENCY_MS} ms, --parallelism {parallelism}, "
                f"{kind} state",
                seconds_text(seconds, len(samples[case])),
                f"floor {mode.creates} x {LATENCY_MS} ms / {parallelism} = {floor:.3f} s",
                f"{seconds / floor:.2f}x floor",
                f"<= {limit}x floor" if limit else "-",
                judge(seconds <= limit * floor, mode.full) if limit else "-",
            )
        )
    rows += fixed_cost_rows(mode, samples)
    default = median(samples["local p10"])
    name = f"apply {mode.creates} creates, --parallelism 10, vs a curl loop"
    if "curl" in samples:
        curl = median(samples["curl"])
        rows.append(
            Row(
                name,
                seconds_text(default, len(samples["local p10"])),
                f"shell loop of curl POSTs {curl:.3f} s (n={len(samples['curl'])})",
                f"{curl / default:.1f}x faster",
                ">= 8x faster",
                judge(curl >= 8 * default, mode.full),
            )
        )
    else:
        rows.append(
            Row(name, seconds_text(default, len(samples["local p10"])), "skipped (no curl)", "-")
        )
    return rows


def fixed_cost_rows(mode: Mode, samples: dict[str, list[Sample]]) -> list[Row]:
    """What every run pays before and after its creates, and the creates without it.

    The floor counts only the creates' latency; a CLI also starts Python, imports
    its libraries, reads the file, locks and loads the state, lists the platform
    and folds the journal. On a slow machine that alone can exceed a target's
    slack (0.625 s at --parallelism 10), so it is shown on its own.
    """
    noop = median(samples["fixed noop"])
    imports = median(samples["fixed imports"])
    p10 = median(samples["local p10"])
    floor = mode.creates * LATENCY_MS / 1000 / 10
    reps = len(samples["fixed noop"])
    return [
        Row(
            f"apply of the same {mode.creates} trunks, all in sync (no create): a run's fixed cost",
            seconds_text(noop, reps),
            f"importing pydantic, httpx, PyYAML and click alone {imports:.3f} s",
            f"{noop / imports:.2f}x imports",
        ),
        Row(
            f"the creates alone: apply {mode.creates} at {LATENCY_MS} ms, --parallelism 10, "
            "local state, less that fixed cost",
            f"{p10 - noop:.3f} s",
            f"floor {floor:.3f} s",
            f"{(p10 - noop) / floor:.2f}x floor",
        ),
    ]


def unavailable_rows(mode: Mode, kind: str, why: str) -> list[Row]:
    """Rows that say a backend was asked for but could not be measured, and why."""
    return [
        Row(
            f"apply {mode.creates} creates at {LATENCY_MS} ms, --parallelism 10, {kind} state",
            f"not measured: {why}",
            "-",
            "-",
            f"<= {APPLY_LIMITS[(kind, 10)]}x floor",
            "-",
        ),
        Row(growth_name(mode, kind), f"not measured: {why}", "-", "-", f"<= {GROWTH_LIMIT}x", "-"),
    ]


# ---------------------------------------------------------------- growth


def growth_name(mode: Mode, kind: str) -> str:
    return (
        f"apply {mode.creates} creates, --parallelism 10, into {mode.grown_state:,} trunks "
        f"vs none, {kind} state"
    )


def growth_section(mode: Mode, work: Path, backends: list[Backend]) -> list[Row]:
    """The same creates into an empty state and into one that holds `grown_state` trunks.

    The grown state is made once per backend by trunksync itself (an apply of
    `grown_state` trunks against an emulator with no latency), and every run
    starts from a copy of it: a copied state folder, or a database made with
    `CREATE DATABASE ... TEMPLATE`. The platform holds those trunks too (the
    emulator's --data file, copied per run), so its list is as long as the
    state. The desired file holds only the new trunks: the grown state's trunks
    are orphans that apply leaves alone, so both runs send the same creates.
    """
    folder = work / "growth"
    folder.mkdir()
    trunks = folder / "trunks.yaml"
    trunks.write_text(trunks_yaml(mode.creates, prefix="Apply"))
    seed_trunks = folder / "seed.yaml"
    seed_trunks.write_text(trunks_yaml(mode.grown_state, prefix="Seed"))
    runs = iter(range(1_000_000))
    cases: list[Case] = []
    for backend in backends:
        seed_folder = folder / f"seed-{backend.kind}"
        seed_folder.mkdir()
        seed_data = seed_folder / "emulator.json"
        seed_spec = backend.fresh(seed_folder)
        with emulator(0, seed_folder, data=seed_data) as url:
            env = {**base_env(), "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}
            print(f"  seeding {mode.grown_state:,} trunks ({backend.kind})...", file=sys.stderr)
            timed(apply_argv(seed_trunks, seed_spec, 32), env, seed_folder)

        def run(backend: Backend, seed_spec: str | None, seed_data: Path | None) -> Sample:
            run_folder = folder / f"run-{next(runs)}"
            run_folder.mkdir()
            data = run_folder / "emulator.json"
            if seed_data is not None:
                shutil.copyfile(seed_data, data)
            spec = backend.fresh(run_folder, seed_spec)
            with emulator(LATENCY_MS, run_folder, data=data) as url:
                env = {**base_env(), "TRUNKSYNC_API_URL": url, "TRUNKSYNC_API_KEY": API_KEY}
                # The copies just made (8 MB for a grown run) are written back now, not
                # during the run, where they would slow the journal's first fsyncs.
                os.sync()
                sample = timed(apply_argv(trunks, spec, 10), env, run_folder)
                created = admin(url, "GET", "stats")["trunks_created"]
            expected = mode.creates + (mode.grown_state if seed_spec else 0)
            recorded = local_trunk_count(spec)
            if created != mode.creates or recorded not in (None, expected):
                raise BenchmarkError(f"apply created {created} and recorded {recorded}")
            return sample

        empty = (lambda b: lambda: run(b, None, None))(backend)
        grown = (lambda b, s, d: lambda: run(b, s, d))(backend, seed_spec, seed_data)
        cases += [
            Case(f"{backend.kind} empty", empty, mode.growth_reps),
            Case(f"{backend.kind} grown", grown, mode.growth_reps),
        ]
    samples = measure(cases, mode.warm_up)
    rows = []
    for backend in backends:
        empty_s = median(samples[f"{backend.kind} empty"])
        grown_s = median(samples[f"{backend.kind} grown"])
        reps = len(samples[f"{backend.kind} grown"])
        rows.append(
            Row(
                growth_name(mode, backend.kind),
                seconds_text(grown_s, reps),
                f"into an empty state {empty_s:.3f} s (n={reps})",
                f"{grown_s / empty_s:.2f}x",
                f"<= {GROWTH_LIMIT}x",
                judge(grown_s <= GROWTH_LIMIT * empty_s, mode.full),
            )
        )
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
    postgres = parser.add_mutually_exclusive_group()
    postgres.add_argument(
        "--pg-url",
        metavar="URL",
        help="also measure a PostgreSQL state on this server (a role that may CREATE DATABASE)",
    )
    postgres.add_argument(
        "--pg",
        action="store_true",
        help="also measure a PostgreSQL state, on a throwaway cluster started for this run",
    )
    parser.add_argument(
        "--only",
        metavar="SECTIONS",
        default=",".join(SECTIONS),
        help=f"comma list of the sections to run (default: all of {','.join(SECTIONS)})",
    )
    options = parser.parse_args(argv)
    sections = [name.strip() for name in options.only.split(",") if name.strip()]
    if not sections or not set(sections) <= set(SECTIONS):
        parser.error(f"--only takes a comma list of {', '.join(SECTIONS)}")
    if (options.pg or options.pg_url) and importlib.util.find_spec("psycopg") is None:
        parser.error("--pg and --pg-url need psycopg: pip install 'trunksync[postgres]'")
    mode = MODES["quick" if options.quick else "smoke" if options.smoke else "full"]
    started = time.perf_counter()
    with ExitStack() as stack:
        pg_url = options.pg_url
        if options.pg:
            print("starting a throwaway PostgreSQL cluster...", file=sys.stderr)
            pg_url = stack.enter_context(throwaway_cluster())
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="trunksync-bench-"))
        rows = run_sections(mode, Path(folder), sections, pg_url)
    print(f"mode: {mode.name}; machine: {machine()}")
    if not has_octodns():
        print(f"octoDNS rows: {SKIP_OCTODNS}")
    if pg_url is None and {"apply", "growth"} & set(sections):
        print("PostgreSQL rows: skipped (pass --pg-url URL or --pg)")
    print()
    print(table(rows))
    print(f"\nmedians of interleaved runs; {time.perf_counter() - started:.0f} s in all")
    missed = [row.benchmark for row in rows if row.result == "MISSED"]
    return 1 if options.check and missed else 0


def run_sections(mode: Mode, work: Path, sections: list[str], pg_url: str | None) -> list[Row]:
    backends = [Backend("local")]
    rows: list[Row] = []
    pg = PgServer(pg_url) if pg_url else None
    try:
        if pg is not None:
            why = check_backend(Backend("postgresql", pg), work)
            if why is None:
                backends.append(Backend("postgresql", pg))
            else:
                rows += unavailable_rows(mode, "postgresql", why)
        for name in sections:
            print(f"running {name}...", file=sys.stderr)
            if name == "plan":
                rows += plan_section(mode, work)
            elif name == "startup":
                rows += startup_section(mode, work)
            elif name == "apply":
                rows += apply_section(mode, work, backends)
            else:
                rows += growth_section(mode, work, backends)
    finally:
        if pg is not None:
            pg.drop_all()
    return rows


if __name__ == "__main__":
    sys.exit(main())
