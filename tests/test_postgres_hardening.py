"""The PostgreSQL backend's edges, against the real throwaway cluster (tests/pg_cluster.py):
passwords in state URLs never printed, odd but valid URLs, durability settings of the
session, `state migrate` interrupted at any step, history without the lock."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from helpers import API_KEY, exotel_record, exotel_trunks, write
from pg_cluster import PgCluster
from trunksync import api
from trunksync.api import spec_without_password
from trunksync.backends import StateBackend, open_backend, pg_schema
from trunksync.backends.pg_schema import migration_key
from trunksync.backends.postgres import CLIENT_KEEPALIVES, PostgresBackend, parse_url
from trunksync.changes import RecordId
from trunksync.cli import cli
from trunksync.errors import StateError, TrunksyncError

pytestmark = pytest.mark.postgres

PASSWORD = "Pa55-SENTINEL-in-the-url"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def with_password(pg_cluster: PgCluster, pg_url: str) -> str:
    dbname = pg_url.rsplit("/", 1)[1]
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_cluster.port}/{dbname}"


def seeded(url: str, *names: str) -> None:
    with PostgresBackend.from_url(url).lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId(name, exotel_record(f"ST_{name}")) for name in names])


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


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        (
            "postgresql://u:secret@[::1]:5432/db?workspace=prod",
            "postgresql://u@[::1]:5432/db?workspace=prod",
        ),
        ("postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u@h1:5432,h2:5433/db"),
        (
            "postgresql://u:p%40ss@h/db?password=x&sslmode=require&sslpassword=y",
            "postgresql://u@h/db?sslmode=require",
        ),
        (
            "postgresql://h/db?application_name=a+b%20c&sslmode=require",
            "postgresql://h/db?application_name=a+b%20c&sslmode=require",
        ),
        ("postgresql://:pw@h/db", "postgresql://h/db"),
        ("postgresql:///db", "postgresql:///db"),
        ("state/trunks.json", "state/trunks.json"),
    ],
)
def test_a_recorded_spec_has_no_secret_and_names_the_same_state(url: str, recorded: str) -> None:
    assert spec_without_password(url) == recorded
    if url.startswith("postgresql"):
        assert (
            PostgresBackend.from_url(recorded).identity()
            == PostgresBackend.from_url(url).identity()
        )


def test_every_secret_of_a_url_is_scrubbed_from_errors() -> None:
    target = parse_url("postgresql://u:p%40ss@h/db?password=q%26w&sslpassword=ssl-secret")
    assert target.secrets == ("p@ss", "q&w", "ssl-secret")
    assert "password=q%26w" in target.conninfo  # libpq still gets it, as written


def test_plan_out_records_neither_a_query_password_nor_fails_on_several_hosts(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(write(tmp_path / "trunks.yaml", exotel_trunks(1)).parent)
    monkeypatch.setenv("TRUNKSYNC_API_KEY", API_KEY)
    dbname = pg_url.rsplit("/", 1)[1]
    port = pg_cluster.port
    urls = {
        "query": f"{pg_url}?password={PASSWORD}&sslpassword={PASSWORD}x&workspace=prod",
        "hosts": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port},127.0.0.1:{port}/{dbname}",
    }
    for kind, url in urls.items():
        planned = run("plan", "--state", url, "--out", f"{kind}.json")
        assert planned.exit_code == 0, planned.output
        saved = (tmp_path / f"{kind}.json").read_text()
        assert PASSWORD not in saved + planned.stdout + planned.stderr
        assert json.loads(saved)["state"]["spec"] == spec_without_password(url)


def test_sessions_commit_synchronously_whatever_the_database_says(pg_url: str) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(parse_url(pg_url).conninfo, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" SET synchronous_commit = off')
    with psycopg.connect(parse_url(pg_url).conninfo) as plain:
        assert plain.execute("SHOW synchronous_commit").fetchone() == ("off",)
    with PostgresBackend.from_url(pg_url).connect() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def seeded_backend(backend: StateBackend, *names: str) -> None:
    with backend.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId(name, exotel_record(f"ST_{name}")) for name in names])


def refused(backend: StateBackend) -> bool:
    try:
        with backend.lock(timeout=0, command="apply"):
            return False
    except StateError as error:
        return "moved" in str(error)


@pytest.mark.parametrize("source_kind", ["postgresql", "local"])
def test_a_migrate_interrupted_after_the_mark_leaves_no_second_live_copy_and_resumes(
    tmp_path: Path, pg_url: str, source_kind: str
) -> None:
    source_spec = pg_url + "?workspace=old" if source_kind == "postgresql" else "old.json"
    target_spec = pg_url + "?workspace=new"
    source, target = open_backend(source_spec), open_backend(target_spec)
    seeded_backend(source, "a", "b")
    # Another session holds the target's lock: the seed fails after the source was marked.
    with PostgresBackend.from_url(target_spec).lock(timeout=0, command="someone"):
        failed = run("state", "migrate", "--state", source_spec, "--to", target_spec)
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: ") and failed.stderr.count("\n") == 1
    assert "run the same `trunksync state migrate` again" in failed.stderr
    assert refused(source) and not target.exists()  # no live copy, never two
    finished = run("state", "migrate", "--state", source_spec, "--to", target_spec)
    assert finished.exit_code == 0, finished.output
    again = run("state", "migrate", "--state", source_spec, "--to", target_spec)
    assert again.exit_code == 0, again.output  # already seeded: nothing more to do
    assert refused(source)
    frozen = source.moved_state()
    assert frozen is not None
    moved = target.load()
    assert (moved.lineage, moved.serial, moved.trunks) == (
        frozen.lineage,
        frozen.serial,
        frozen.trunks,
    )
    with target.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId("c", exotel_record("ST_c"))])
    elsewhere = run("state", "migrate", "--state", source_spec, "--to", "other.json")
    assert elsewhere.exit_code == 1 and "already moved to postgresql" in elsewhere.stderr


def test_a_migrate_that_cannot_reach_the_target_leaves_the_source_live(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    source = PostgresBackend.from_url(pg_url + "?workspace=old")
    seeded_backend(source, "a")
    nowhere = pg_cluster.url("no_such_database")
    failed = run("state", "migrate", "--state", pg_url + "?workspace=old", "--to", nowhere)
    assert failed.exit_code == 1 and "no_such_database" in failed.stderr
    assert not refused(source) and source.load().trunks.keys() == {"a"}


def test_connections_have_client_side_keepalives_unless_the_url_sets_them(pg_url: str) -> None:
    with PostgresBackend.from_url(pg_url).connect() as conn:
        parameters = conn.info.get_parameters()
    assert {key: parameters.get(key) for key in CLIENT_KEEPALIVES} == CLIENT_KEEPALIVES
    given = f"{pg_url}?keepalives_idle=5&tcp_user_timeout=9000&workspace=w"
    with PostgresBackend.from_url(given).connect() as conn:
        parameters = conn.info.get_parameters()
    assert (parameters["keepalives_idle"], parameters["tcp_user_timeout"]) == ("5", "9000")
    assert parameters["keepalives_count"] == "3"


def test_a_service_is_part_of_the_identity_and_a_host_less_url_works(
    tmp_path: Path, pg_cluster: PgCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod, staging = pg_cluster.create_database(), pg_cluster.create_database()
    services = tmp_path / "pg_service.conf"
    services.write_text(
        "".join(
            f"[{name}]\nhost=127.0.0.1\nport={pg_cluster.port}\ndbname={db}\nuser=postgres\n"
            for name, db in (("prod", prod), ("staging", staging))
        )
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    a = PostgresBackend.from_url("postgresql://?service=prod&workspace=w")
    b = PostgresBackend.from_url("postgresql://?service=staging&workspace=w")
    seeded_backend(a, "x")
    assert a.exists() and not b.exists()
    assert a.identity() != b.identity() and "service=prod" in a.identity().location
    seeded_backend(b, "y")
    with pytest.raises(TrunksyncError, match="already holds a state"):
        api.migrate_state(b, a)  # two states, not "the same state"
    monkeypatch.setenv("PGHOST", str(pg_cluster.folder))
    monkeypatch.setenv("PGPORT", str(pg_cluster.port))
    monkeypatch.setenv("PGUSER", "postgres")
    dbname = pg_url.rsplit("/", 1)[1]
    assert PostgresBackend.from_url(f"postgresql:///{dbname}").load().serial == 0


def test_history_needs_no_lock_nor_write_access_and_survives_a_move(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    seeded(pg_url, "a")
    dbname = pg_url.rsplit("/", 1)[1]
    reader_role = f"reader_{dbname}"
    with psycopg.connect(parse_url(pg_url).conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{reader_role}" LOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA trunksync TO "{reader_role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA trunksync TO "{reader_role}"')
    reader = f"postgresql://{reader_role}@127.0.0.1:{pg_cluster.port}/{dbname}"
    shown = run("state", "history", "--state", reader)
    assert shown.exit_code == 0, shown.output
    assert "apply: RecordId (a)" in shown.stdout
    moved = run("state", "migrate", "--state", pg_url, "--to", pg_url + "?workspace=new")
    assert moved.exit_code == 0, moved.output
    after = run("state", "history", "--state", pg_url)
    assert after.exit_code == 0, after.output
    assert "Moved" in after.stdout and "apply: RecordId (a)" in after.stdout


def test_a_run_on_workspace_migrate_never_blocks_a_schema_upgrade(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = PostgresBackend.from_url(pg_url + "?workspace=migrate")
    runner.load()  # the schema exists
    with psycopg.connect(parse_url(pg_url).conninfo) as upgrading:  # what migrate() holds
        upgrading.execute("SELECT pg_advisory_xact_lock(%s, %s)", migration_key("trunksync"))
        with runner.lock(timeout=0, command="trunksync apply"):
            pass
    newer = [*pg_schema.MIGRATIONS, ["CREATE TABLE {schema}.v_next (x int)"]]
    with runner.lock(timeout=0, command="trunksync apply"):
        # A newer trunksync (one more schema step) starts while that apply runs.
        monkeypatch.setattr(pg_schema, "MIGRATIONS", newer)
        monkeypatch.setattr(pg_schema, "CURRENT_VERSION", len(newer))
        with psycopg.connect(parse_url(pg_url).conninfo, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '100ms'")  # a wait is an error, not a hang
            assert pg_schema.migrate(conn, "trunksync", target=len(newer)) == len(newer)
