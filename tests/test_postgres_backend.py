"""The PostgreSQL backend through the state-backend seam, against the real throwaway
cluster the suite starts (tests/pg_cluster.py): never a mock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import exotel_record
from pg_cluster import PgCluster
from trunksync.backends import BackendIdentity, open_backend
from trunksync.backends.pg_schema import CURRENT_VERSION, migrate
from trunksync.backends.postgres import PostgresBackend, parse_url
from trunksync.changes import (
    ForgetIntent,
    ForgetTrunk,
    RecordId,
    RecordIntent,
    Retire,
    StateChange,
    Unretire,
    apply_changes,
    change_from_json,
    change_to_json,
)
from trunksync.errors import LockError, StateError
from trunksync.state import Intent, RetiredTrunk, State

pytestmark = pytest.mark.postgres

PASSWORD = "Pa55-w0rd-SENTINEL-never-print"


def intent(fingerprint: str = "fp1", replaces: str | None = None) -> Intent:
    return Intent(
        trunk_type="exotel",
        config={"exotel_number": "+918000000001"},
        secret_fingerprints={"password": "sha256:abcd"},
        request_fingerprint=fingerprint,
        started_at="2026-01-01T00:00:00.000000Z",
        replaces=replaces,
    )


def retired(name: str) -> RetiredTrunk:
    return RetiredTrunk(name=name, since="2026-01-02T00:00:00.000000Z")


# Every kind of change, including the no-ops apply_change defines (a ForgetTrunk
# whose id does not match, an id that "retires" itself, forgetting what is absent).
EVERY_KIND: list[list[StateChange]] = [
    [RecordIntent("a", intent()), RecordIntent("b", intent("fp2")), RecordIntent("c", intent())],
    [RecordId("a", exotel_record("ST_a1"))],
    [RecordId("b", exotel_record("ST_b1")), ForgetIntent("c"), ForgetIntent("never")],
    [RecordIntent("a", intent("fp3", replaces="ST_a1"))],
    [RecordId("a", exotel_record("ST_a2"), retires="ST_a1", since="2026-01-03T00:00:00.000000Z")],
    [RecordId("b", exotel_record("ST_b1", "+918000000009"), retires="ST_b1")],
    [ForgetTrunk("b", "ST_other"), Retire("ST_x", retired("x")), Retire("ST_y", retired("y"))],
    [Unretire("ST_a1"), Unretire("ST_absent"), ForgetTrunk("a", "ST_a2")],
    [RecordId("d", exotel_record("ST_d1")), Retire("ST_x", retired("x2"))],
]


def count_rows(url: str, table: str, workspace: str = "default") -> int:
    with psycopg.connect(parse_url(url).conninfo) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM trunksync.{table} WHERE workspace = %s", (workspace,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(parse_url(url).conninfo, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def test_the_factory_gives_the_postgres_backend_and_first_use_creates_the_schema(
    pg_url: str,
) -> None:
    backend = open_backend(pg_url)
    assert isinstance(backend, PostgresBackend)
    assert backend.exists() is False
    state = backend.load()
    assert (state.serial, state.trunks, state.intents, state.retired) == (0, {}, {}, {})
    assert sql(pg_url, "SELECT version FROM trunksync.schema_version") == [(CURRENT_VERSION,)]
    with backend.lock(timeout=0, command="test") as locked:
        assert locked.existed is False
    assert backend.exists() is False  # taking the lock alone writes no state


def test_commits_mirror_apply_changes_one_row_per_record(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    expected = State.new()
    with backend.lock(timeout=0, command="trunksync apply") as locked:
        expected.lineage = locked.state.lineage
        for batch in EVERY_KIND:
            locked.commit(batch)
            apply_changes(expected, batch)
            expected.serial += 1
            assert locked.state == expected
    loaded = backend.load()
    assert loaded == expected
    assert loaded.serial == len(EVERY_KIND)
    assert count_rows(pg_url, "trunks") == len(expected.trunks) == 2
    assert count_rows(pg_url, "intents") == len(expected.intents) == 0
    assert count_rows(pg_url, "retired") == len(expected.retired) == 2
    assert backend.exists() is True
    with backend.lock(timeout=0, command="again") as locked:
        assert locked.existed is True
        assert locked.state == expected


def test_a_batch_is_one_transaction_and_a_failed_batch_stops_all_writes(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with backend.lock(timeout=0, command="test") as locked:
        locked.commit([RecordIntent("first", intent())])
        before = locked.state.model_copy(deep=True)
        # PostgreSQL text cannot hold NUL: the third statement of the batch fails.
        bad = [RecordIntent("x", intent()), RecordIntent("y", intent()), ForgetIntent("bad\x00")]
        with pytest.raises(StateError, match="cannot write"):
            locked.commit(bad)
        assert locked.state == before
        with pytest.raises(StateError):
            locked.commit([RecordIntent("z", intent())])
    assert backend.load() == before
    assert count_rows(pg_url, "intents") == 1


def test_the_lock_names_its_holder_and_is_freed_on_exit(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/trunks")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    first = PostgresBackend.from_url(pg_url)
    second = PostgresBackend.from_url(pg_url)
    with first.lock(timeout=0, command="trunksync apply"):
        with pytest.raises(LockError) as error, second.lock(timeout=0, command="trunksync plan"):
            pass
        message = str(error.value)
        assert "locked by trunksync apply" in message
        assert f"pid {os.getpid()}" in message
        assert "https://github.com/acme/trunks/actions/runs/42" in message
        with (
            pytest.raises(LockError, match=r"after waiting 0\.2s"),
            second.lock(timeout=0.2, command="trunksync plan"),
        ):
            pass
    with second.lock(timeout=0, command="trunksync plan") as locked:
        assert locked.existed is False


def test_a_waiting_runner_gets_the_lock_when_the_holder_finishes(pg_url: str) -> None:
    first = PostgresBackend.from_url(pg_url)
    acquired = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with first.lock(timeout=0, command="holder") as locked:
            locked.commit([RecordIntent("a", intent())])
            acquired.set()
            release.wait(30)
            locked.commit([RecordId("a", exotel_record("ST_a"))])

    holder = threading.Thread(target=hold)
    holder.start()
    assert acquired.wait(30)
    release.set()
    with PostgresBackend.from_url(pg_url).lock(timeout=60, command="waiter") as locked:
        # The holder's last commit is visible to the next holder: no stale read.
        assert locked.state.trunks["a"].trunk_id == "ST_a"
        assert locked.state.serial == 2
    holder.join(30)


HOLD_LOCK = """
import sys, time
from trunksync.backends.postgres import PostgresBackend
from trunksync.changes import ForgetIntent
with PostgresBackend.from_url(sys.argv[1]).lock(timeout=0, command="doomed") as locked:
    locked.commit([ForgetIntent("nothing")])
    print("locked", flush=True)
    time.sleep(600)
"""


def test_kill_9_of_the_holder_frees_the_lock(pg_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, pg_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        backend = PostgresBackend.from_url(pg_url)
        with (
            pytest.raises(LockError, match="locked by doomed"),
            backend.lock(timeout=0, command="next"),
        ):
            pass
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        # The kernel closes the dead process's socket; the server ends its session
        # and with it the advisory lock. The wait is bounded, not a sleep.
        with backend.lock(timeout=30, command="next") as locked:
            assert locked.existed is True
            assert locked.state.serial == 1
            locked.commit([ForgetIntent("again")])
        assert backend.load().serial == 2
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_a_runner_whose_connection_was_killed_never_writes_again(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with backend.lock(timeout=0, command="victim") as locked:
        locked.commit([RecordIntent("a", intent())])
        [(pid,)] = sql(pg_url, "SELECT backend_pid FROM trunksync.lock_holders")
        assert sql(pg_url, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
        # The lock is free at once for the next runner...
        with PostgresBackend.from_url(pg_url).lock(timeout=30, command="next") as other:
            other.commit([RecordId("a", exotel_record("ST_next"))])
        # ...and the victim's writes fail, now and later: no silent reconnect.
        with pytest.raises(StateError, match="lost the connection"):
            locked.commit([RecordId("a", exotel_record("ST_victim"))])
        with pytest.raises(StateError, match="lost the connection"):
            locked.commit([ForgetIntent("a")])
    assert backend.load().trunks["a"].trunk_id == "ST_next"
    assert backend.load().serial == 2


def test_a_serial_changed_under_the_lock_fences_the_runner(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with backend.lock(timeout=0, command="runner") as locked:
        locked.commit([RecordIntent("a", intent())])
        # A writer that ignores the lock (a hand edit, an old tool) bumps the serial.
        sql(pg_url, "UPDATE trunksync.workspaces SET serial = serial + 1")
        with pytest.raises(StateError, match="serial or lineage changed"):
            locked.commit([RecordId("a", exotel_record("ST_a"))])
    assert count_rows(pg_url, "trunks") == 0
    assert "a" in backend.load().intents


def test_a_commit_without_the_lock_held_is_refused(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with backend.lock(timeout=0, command="runner") as locked:
        locked.commit([RecordIntent("a", intent())])
        sql_conn = locked._conn  # the lock's own session lets go of the lock
        sql_conn.execute("SELECT pg_advisory_unlock_all()")
        with pytest.raises(StateError, match="no longer holds the lock"):
            locked.commit([RecordId("a", exotel_record("ST_a"))])
    assert count_rows(pg_url, "trunks") == 0


def test_workspaces_and_schemas_are_isolated_and_lock_independently(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    prod = PostgresBackend.from_url(pg_url + "?workspace=prod")
    staging = PostgresBackend.from_url(pg_url + "?workspace=staging")
    other_schema = PostgresBackend.from_url(pg_url + "?workspace=prod&schema=team_b")
    with (
        prod.lock(timeout=0, command="p") as p,
        staging.lock(timeout=0, command="s") as s,
        other_schema.lock(timeout=0, command="o") as o,
    ):
        p.commit([RecordId("same", exotel_record("ST_prod"))])
        s.commit([RecordId("same", exotel_record("ST_staging"))])
        s.commit([RecordIntent("only-staging", intent())])
        o.commit([RecordId("same", exotel_record("ST_team_b"))])
    assert prod.load().trunks["same"].trunk_id == "ST_prod"
    assert staging.load().trunks["same"].trunk_id == "ST_staging"
    assert other_schema.load().trunks["same"].trunk_id == "ST_team_b"
    assert prod.load().intents == {} and prod.load().serial == 1
    assert staging.load().serial == 2
    assert prod.load().lineage != staging.load().lineage
    assert PostgresBackend.from_url(pg_url).exists() is False  # "default" untouched
    assert prod.identity() == BackendIdentity(
        "postgresql", f"127.0.0.1:{pg_cluster.port}/{pg_url.rsplit('/', 1)[1]}", "prod"
    )


def test_history_records_serial_time_actor_ci_url_and_the_changes(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example/acme/-/jobs/7")
    backend = PostgresBackend.from_url(pg_url)
    batches: list[list[StateChange]] = [
        [RecordIntent("a", intent()), RecordIntent("b", intent())],
        [RecordId("a", exotel_record("ST_a")), ForgetIntent("b")],
    ]
    with backend.lock(timeout=0, command="trunksync apply") as locked:
        for batch in batches:
            locked.commit(batch)
    entries = backend.history()
    assert [entry.serial for entry in entries] == [2, 1]
    assert entries[0].actor.endswith("(https://gitlab.example/acme/-/jobs/7)")
    assert "@" in entries[0].actor
    assert entries[0].time.endswith("Z")
    assert entries[1].summary == "trunksync apply: RecordIntent x2 (a, b)"
    assert backend.history(limit=1) == entries[:1]
    stored = sql(pg_url, "SELECT changes FROM trunksync.history ORDER BY serial")
    assert [[change_from_json(c) for c in row[0]] for row in stored] == batches
    assert [row[0] for row in stored] == [[change_to_json(c) for c in b] for b in batches]


def test_migrates_a_version_1_schema_to_the_current_one_keeping_the_data(pg_url: str) -> None:
    with psycopg.connect(parse_url(pg_url).conninfo, autocommit=True) as conn:
        assert migrate(conn, "trunksync", target=1) == 1
        conn.execute(
            "INSERT INTO trunksync.workspaces (name, lineage, serial, format_version) "
            "VALUES ('default', 'lineage-v1', 5, 1)"
        )
        conn.execute(
            "INSERT INTO trunksync.trunks (workspace, name, trunk_id, record) "
            "VALUES ('default', 'old', 'ST_old', %s)",
            (psycopg.types.json.Jsonb(exotel_record("ST_old").model_dump()),),
        )
        conn.execute(
            "INSERT INTO trunksync.history (workspace, serial, actor, changes) "
            "VALUES ('default', 5, 'someone@somewhere', '[]')"
        )
    backend = PostgresBackend.from_url(pg_url)
    state = backend.load()
    assert sql(pg_url, "SELECT version FROM trunksync.schema_version") == [(CURRENT_VERSION,)]
    assert (state.lineage, state.serial) == ("lineage-v1", 5)
    assert state.trunks == {"old": exotel_record("ST_old")}
    with backend.lock(timeout=0, command="after migration") as locked:  # needs version 2's table
        locked.commit([RecordId("new", exotel_record("ST_new"))])
    assert [entry.serial for entry in backend.history()] == [6, 5]


def test_a_schema_newer_than_this_trunksync_is_refused(pg_url: str) -> None:
    PostgresBackend.from_url(pg_url).load()
    sql(pg_url, "UPDATE trunksync.schema_version SET version = 99")
    with pytest.raises(StateError, match="version 99, newer than this trunksync"):
        PostgresBackend.from_url(pg_url).load()


def test_first_use_from_many_runners_at_once_creates_the_schema_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            PostgresBackend.from_url(pg_url).load()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sql(pg_url, "SELECT version FROM trunksync.schema_version") == [(CURRENT_VERSION,)]


def test_seed_keeps_lineage_and_serial_and_refuses_a_non_empty_target(pg_url: str) -> None:
    source = State.new()
    apply_changes(source, [c for batch in EVERY_KIND for c in batch])
    apply_changes(source, [RecordIntent("pending", intent())])
    source.serial = 41
    backend = PostgresBackend.from_url(pg_url + "?workspace=prod")
    backend.seed(source, command="trunksync state migrate")
    assert backend.load() == source
    with pytest.raises(StateError, match="already holds a state"):
        backend.seed(State.new(), command="trunksync state migrate")
    with backend.lock(timeout=0, command="apply") as locked:
        assert locked.existed is True
        locked.commit([ForgetIntent("pending")])
    assert backend.load().serial == 42
    assert [entry.serial for entry in backend.history()] == [42, 41]


def test_mark_moved_refuses_every_later_lock_but_still_reads(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with pytest.raises(StateError, match="holds no state"):
        backend.mark_moved(BackendIdentity("local", "/x/trunks.json"), command="migrate")
    with backend.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId("a", exotel_record("ST_a"))])
    backend.mark_moved(BackendIdentity("local", "/x/trunks.json"), command="migrate")
    with (
        pytest.raises(StateError, match=r"was moved to local /x/trunks\.json"),
        backend.lock(timeout=0, command="apply"),
    ):
        pass
    assert backend.load().trunks["a"].trunk_id == "ST_a"
    assert backend.history()[0].summary == "migrate: Moved"


def test_mark_moved_while_holding_the_lock_uses_the_lock_s_own_session(pg_url: str) -> None:
    # `state migrate` holds the source's lock while it seeds the target and marks the
    # source as moved: the same process must not wait for its own lock.
    source = PostgresBackend.from_url(pg_url + "?workspace=old")
    target = PostgresBackend.from_url(pg_url + "?workspace=new")
    with source.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId("a", exotel_record("ST_a"))])
    with source.lock(timeout=0, command="trunksync state migrate") as locked:
        target.seed(locked.state, command="trunksync state migrate")
        source.mark_moved(target.identity(), command="trunksync state migrate")
    assert target.load().lineage == source.load().lineage
    assert target.load().trunks == source.load().trunks
    with (
        pytest.raises(StateError, match="was moved to postgresql"),
        source.lock(timeout=0, command="apply"),
    ):
        pass
    with target.lock(timeout=0, command="apply") as locked:
        assert locked.existed and locked.state.serial == 1


def test_parse_url_takes_out_workspace_and_schema_and_keeps_libpq_settings() -> None:
    target = parse_url(
        "postgresql://u:p%40ss@db.example:6543/trunks?sslmode=require&workspace=prod&schema=t_s"
    )
    assert (target.workspace, target.schema, target.secrets) == ("prod", "t_s", ("p@ss",))
    assert "workspace" not in target.conninfo and "schema" not in target.conninfo
    assert "sslmode=require" in target.conninfo and "connect_timeout=10" in target.conninfo
    assert PostgresBackend(target).identity() == BackendIdentity(
        "postgresql", "db.example:6543/trunks?schema=t_s", "prod"
    )
    for bad in ("workspace=", "workspace=a%20b", "schema=Robert%27);--", "workspace=-x"):
        with pytest.raises(StateError, match="not a valid name"):
            parse_url(f"postgresql://db/trunks?{bad}")


def test_connections_have_timeouts(pg_url: str) -> None:
    backend = PostgresBackend.from_url(pg_url)
    with backend.connect() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        assert conn.info.get_parameters()["connect_timeout"] == "10"
        assert conn.execute("SHOW tcp_keepalives_idle").fetchone() == ("30",)


def test_the_password_never_appears_in_identity_or_errors(
    pg_cluster: PgCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbname = pg_url.rsplit("/", 1)[1]
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_cluster.port}/{dbname}?workspace=w"
    backend = PostgresBackend.from_url(url)
    assert PASSWORD not in str(backend.identity()) and "postgres@" not in str(backend.identity())
    with backend.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordIntent("a", intent())])
    with (
        backend.lock(timeout=0, command="apply"),
        pytest.raises(LockError) as locked_error,
        PostgresBackend.from_url(url).lock(timeout=0, command="apply"),
    ):
        pass
    assert PASSWORD not in str(locked_error.value)
    # A server that is not there, and one that does not know the database.
    closed_port = _closed_port()
    for failing in (
        f"postgresql://someone:{PASSWORD}@127.0.0.1:{closed_port}/db",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_cluster.port}/no_such_db",
    ):
        with pytest.raises(StateError) as error:
            PostgresBackend.from_url(failing).load()
        message = str(error.value)
        assert message.startswith("cannot connect to the PostgreSQL state postgresql 127.0.0.1:")
        assert PASSWORD not in message and PASSWORD[:8] not in message
        assert "\n" not in message


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_history_of_a_missing_workspace_is_empty(pg_url: str) -> None:
    assert PostgresBackend.from_url(pg_url + "?workspace=nothing").history() == []


def test_tests_run_against_a_real_server(pg_cluster: PgCluster) -> None:
    assert pg_cluster.is_running()
    assert Path(pg_cluster.data, "PG_VERSION").exists()


def test_a_read_only_role_can_read_the_state_and_history_but_never_write(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    owner = PostgresBackend.from_url(pg_url)
    with owner.lock(timeout=0, command="apply") as locked:
        locked.commit([RecordId("a", exotel_record("ST_a"))])
    dbname = pg_url.rsplit("/", 1)[1]
    sql(pg_url, f'CREATE ROLE "reader_{dbname}" LOGIN')
    sql(pg_url, f'GRANT USAGE ON SCHEMA trunksync TO "reader_{dbname}"')
    sql(pg_url, f'GRANT SELECT ON ALL TABLES IN SCHEMA trunksync TO "reader_{dbname}"')
    reader = PostgresBackend.from_url(
        f"postgresql://reader_{dbname}@127.0.0.1:{pg_cluster.port}/{dbname}"
    )
    assert reader.load() == owner.load()
    assert [entry.serial for entry in reader.history()] == [1]
    with (
        pytest.raises(StateError, match="permission denied"),
        reader.lock(timeout=0, command="apply"),
    ):
        pass
    assert owner.load().serial == 1
