"""The PostgreSQL backend's edges, against the real throwaway cluster (tests/pg_cluster.py):
passwords in state URLs never printed, odd but valid URLs, durability settings of the
session, `state migrate` interrupted at any step, history without the lock."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from pg_cluster import PgCluster
from trunksync.backends.postgres import PostgresBackend
from trunksync.changes import RecordId
from trunksync.cli import cli
from trunksync.state import TrunkRecord

pytestmark = pytest.mark.postgres

PASSWORD = "Pa55-SENTINEL-in-the-url"


def record(trunk_id: str) -> TrunkRecord:
    return TrunkRecord(
        trunk_id=trunk_id,
        trunk_type="exotel",
        config={"exotel_number": "+918000000000"},
        created_at="2026-01-01T00:00:00.000000Z",
    )


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def with_password(pg_cluster: PgCluster, pg_url: str) -> str:
    dbname = pg_url.rsplit("/", 1)[1]
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_cluster.port}/{dbname}"


def seeded(url: str, *names: str) -> None:
    with PostgresBackend.from_url(url).lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId(name, record(f"ST_{name}")) for name in names])


def test_state_rm_and_mv_never_print_the_urls_password(pg_cluster: PgCluster, pg_url: str) -> None:
    url = with_password(pg_cluster, pg_url)
    seeded(url, "a", "b")
    results = {
        "mv": run("state", "mv", "a", "renamed", "--state", url),
        "mv-taken": run("state", "mv", "renamed", "b", "--state", url),
        "rm": run("state", "rm", "renamed", "--state", url),
        "rm-missing": run("state", "rm", "nope", "--state", url),
        "rm-empty": run("state", "rm", "x", "--state", url + "?workspace=empty"),
    }
    assert [results[k].exit_code for k in results] == [0, 1, 0, 1, 1]
    assert "postgres@127.0.0.1" in results["rm"].stdout  # still says which state
    leaks = {k: r.stdout + r.stderr for k, r in results.items() if PASSWORD in r.stdout + r.stderr}
    assert leaks == {}
