"""A throwaway PostgreSQL cluster for the tests: `pg_cluster` (session) and `pg_url` (a
fresh database per test).

The cluster is initdb'd in a temporary folder, listens on a free loopback port
(and a socket in that folder), trusts loopback connections, and is stopped and
removed at the end of the session. PostgreSQL refuses to run as root, so as
root the server runs as the `postgres` system user (runuser). Without the
binaries the tests skip, unless TRUNKSYNC_REQUIRE_POSTGRES=1 (CI sets it):
then a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SERVER_USER = "postgres"
_database_numbers = itertools.count(1)


def find_bin_dir() -> Path | None:
    """Debian's newest PostgreSQL bin folder (not on PATH), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """A running throwaway cluster: start/stop it, make databases, build URLs."""

    def __init__(self, bin_dir: Path, folder: Path) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=True, cwd=self.folder
        )

    def init(self) -> None:
        if self.as_root:
            shutil.chown(self.folder, SERVER_USER, SERVER_USER)
        self.folder.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", SERVER_USER, "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        # fsync off: the tests kill processes and stop the server, never the OS.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=60).returncode == 0

    def url(self, dbname: str = "postgres", **query: str) -> str:
        suffix = "&".join(f"{key}={value}" for key, value in query.items())
        base = f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"
        return f"{base}?{suffix}" if suffix else base

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(_database_numbers)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)"
        if os.environ.get("TRUNKSYNC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message}, and TRUNKSYNC_REQUIRE_POSTGRES=1 says it must be")
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="trunksync-pg-"))
    cluster = PgCluster(bin_dir, folder)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if cluster.is_running():
                cluster.stop("fast")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a new, empty database on the cluster (running again after the test)."""
    yield pg_cluster.url(pg_cluster.create_database())
    if not pg_cluster.is_running():
        pg_cluster.start()
