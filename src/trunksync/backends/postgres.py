"""The PostgreSQL backend (needs trunksync[postgres]): team state, one row per trunk.

URL: `postgresql://[user[:password]@]host[:port]/dbname?sslmode=...&workspace=prod&schema=...`.
`workspace` (default "default") names one of several states in a database, and
`schema` (default "trunksync") the schema that holds the tables; both are taken
out of the URL before it reaches libpq, which refuses parameters it does not
know. Everything else is libpq's: PG* environment variables, ~/.pgpass, sslmode.

Guarantees, and how:
- One lock per (schema, workspace): a session-level advisory lock on ONE
  dedicated connection, held for the run. The session holds it, so a runner
  killed with kill -9 frees it as soon as its connection dies. Who holds it
  (pid, host, user, command, since, CI run URL) is stored in a row, so the next
  runner is told by whom.
- Every commit is one transaction on that same connection, committed before
  `commit` returns, that also compares-and-swaps the workspace's serial. A
  dropped connection is never reopened: the runner that lost it (and with it
  its lock) gets a StateError on every later write.
- Every commit is recorded in the history with its actor and its changes
  (change_to_json: never a secret).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from trunksync.backends import pg_url
from trunksync.backends.base import BackendIdentity, HistoryEntry
from trunksync.backends.pg_schema import CURRENT_VERSION, advisory_key, migrate
from trunksync.changes import (
    ForgetIntent,
    ForgetTrunk,
    RecordId,
    RecordIntent,
    Retire,
    StateChange,
    Unretire,
    apply_changes,
    change_to_json,
)
from trunksync.errors import LockError, StateError
from trunksync.runner import ci_run_url, host_name, user_name
from trunksync.sanitize import Scrubber, printable
from trunksync.state import FORMAT_VERSION, RetiredTrunk, State, utc_now

try:
    import psycopg
    from psycopg import sql
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - the extra is not installed
    psycopg = None  # type: ignore[assignment]

DEFAULT_WORKSPACE = "default"
DEFAULT_SCHEMA = "trunksync"
CONNECT_TIMEOUT_S = 10
# Client-side TCP keepalives and a TCP user timeout (libpq parameters), unless the URL
# sets them: in a network partition no reply ever comes, and without these a commit
# waits on its socket forever (statement_timeout and the server's keepalives only end
# the server's side). Dead peers are noticed within about a minute.
CLIENT_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",  # ms: unacknowledged data for this long drops the link
}
STATEMENT_TIMEOUT_MS = 30_000
# Poll for a held lock with short waits first (most runs are short), then
# at most this long between tries.
_MAX_POLL_S = 1.0

_WORKSPACE_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_SCHEMA_RULE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

if TYPE_CHECKING:
    Connection = psycopg.Connection[tuple[Any, ...]]


class PgTarget(NamedTuple):
    """A parsed state URL: what libpq gets, and what trunksync keeps for itself."""

    conninfo: str  # the URL without workspace/schema (may hold a password: never print it)
    workspace: str
    schema: str
    secrets: tuple[str, ...]  # its password and sslpassword, decoded: scrubbed from errors


def parse_url(url: str) -> PgTarget:
    """Split a state URL into libpq's part and trunksync's (workspace, schema)."""
    parts = pg_url.split(url)
    query = pg_url.query_items(parts.query)
    ours = {key: value for key, value, _ in query if key in ("workspace", "schema")}
    # libpq's items are passed on as written, not decoded and encoded again.
    theirs = [(key, raw) for key, _, raw in query if key not in ("workspace", "schema")]
    workspace = ours.get("workspace", DEFAULT_WORKSPACE)
    schema = ours.get("schema", DEFAULT_SCHEMA)
    if not _WORKSPACE_RULE.fullmatch(workspace):
        raise StateError(
            f"workspace {printable(workspace)!r} in the state URL is not a valid name: "
            "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    if not _SCHEMA_RULE.fullmatch(schema):
        raise StateError(
            f"schema {printable(schema)!r} in the state URL is not a valid name: "
            "1 to 63 lowercase letters, digits or '_', not starting with a digit"
        )
    if not any(key == "connect_timeout" for key, _ in theirs) and not os.environ.get(
        "PGCONNECT_TIMEOUT"
    ):
        theirs.append(("connect_timeout", f"connect_timeout={CONNECT_TIMEOUT_S}"))
    given = {key for key, _ in theirs}
    theirs += [
        (key, f"{key}={value}") for key, value in CLIENT_KEEPALIVES.items() if key not in given
    ]
    conninfo = pg_url.join(parts._replace(query="&".join(raw for _, raw in theirs)))
    return PgTarget(conninfo, workspace, schema, tuple(pg_url.secrets(url)))


def _actor() -> str:
    """Who writes: user@host (the CI run URL has its own column)."""
    return f"{user_name()}@{host_name()}"


class PostgresBackend:
    """StateBackend on PostgreSQL: see the module docstring for the guarantees."""

    def __init__(self, target: PgTarget) -> None:
        if psycopg is None:  # pragma: no cover - the extra is not installed
            raise StateError(
                "a postgresql:// state needs the PostgreSQL extra: "
                "pip install 'trunksync[postgres]'"
            )
        self._target = target
        self._scrubber = Scrubber(target.secrets)
        self._identity = _identity(target)
        # The LockedPgState this object holds right now, if any: `state migrate` marks
        # the source as moved while it holds the source's lock, and a second session
        # of this same process could never take that lock.
        self._held: LockedPgState | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        return cls(parse_url(url))

    @property
    def workspace(self) -> str:
        return self._target.workspace

    @property
    def schema(self) -> str:
        return self._target.schema

    def identity(self) -> BackendIdentity:
        return self._identity

    # -- connections ---------------------------------------------------------

    def connect(self) -> Connection:
        """A new autocommit connection with a statement timeout, the schema migrated."""
        try:
            conn = psycopg.connect(self._target.conninfo, autocommit=True)
        except psycopg.Error as error:
            raise StateError(
                f"cannot connect to the PostgreSQL state {self._identity}: {self._reason(error)}"
            ) from None
        try:
            # The server-side keepalives matter for the lock: a runner whose machine
            # vanished (no FIN, no RST) loses its session, and so the lock, within
            # about a minute instead of the kernel's default two hours.
            # synchronous_commit = on whatever the database or role says: with `off`
            # (a common tuning) COMMIT returns before the WAL is flushed, and an intent
            # reported durable, whose create is then sent, could vanish in a crash.
            conn.execute(
                "SET synchronous_commit = on; "
                f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}; "
                "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                "SET tcp_keepalives_count = 3"
            )
            migrate(conn, self.schema)
        except psycopg.Error as error:
            conn.close()
            raise StateError(
                f"cannot prepare the PostgreSQL state {self._identity}: {self._reason(error)}"
            ) from None
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _session(self) -> Iterator[Connection]:
        conn = self.connect()
        try:
            yield conn
        except psycopg.Error as error:
            raise StateError(
                f"the PostgreSQL state {self._identity} failed: {self._reason(error)}"
            ) from None
        finally:
            conn.close()

    def _reason(self, error: BaseException) -> str:
        """The server's or libpq's message, one line, never with the password."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return self._scrubber.clean(first, 300)

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(schema=sql.Identifier(self.schema))

    # -- reading -------------------------------------------------------------

    def exists(self) -> bool:
        with self._session() as conn:
            row = conn.execute(
                self._sql("SELECT 1 FROM {schema}.workspaces WHERE name = %s"), (self.workspace,)
            ).fetchone()
            return row is not None

    def load(self) -> State:
        with self._session() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                state, _, _ = self._read(conn)
            return state

    def _read(self, conn: Connection) -> tuple[State, str | None, bool]:
        """The workspace's state (new and empty when it has none), where it moved,
        and whether it exists."""
        row = conn.execute(
            self._sql(
                "SELECT lineage, serial, format_version, moved_to FROM {schema}.workspaces "
                "WHERE name = %s"
            ),
            (self.workspace,),
        ).fetchone()
        if row is None:
            return State.new(), None, False
        lineage, serial, format_version, moved_to = row
        if format_version > FORMAT_VERSION:
            raise StateError(
                f"the PostgreSQL state {self._identity} has format version {format_version}, "
                f"newer than this trunksync reads ({FORMAT_VERSION}); upgrade trunksync"
            )
        # Each section comes back as one JSON object, parsed and validated with the
        # rest of the state in one go by pydantic's Rust parser: a 10,000-trunk state
        # loads in a fraction of the time of validating row by row.
        sections = conn.execute(
            self._sql(
                "SELECT "
                "(SELECT coalesce(json_object_agg(name, record), '{{}}')::text "
                "FROM {schema}.trunks WHERE workspace = %s), "
                "(SELECT coalesce(json_object_agg(name, intent), '{{}}')::text "
                "FROM {schema}.intents WHERE workspace = %s), "
                "(SELECT coalesce(json_object_agg(trunk_id, retired), '{{}}')::text "
                "FROM {schema}.retired WHERE workspace = %s)"
            ),
            (self.workspace,) * 3,
        ).fetchone()
        trunks, intents, retired = sections if sections is not None else ("{}", "{}", "{}")
        document = (
            f'{{"format_version": {int(format_version)}, "lineage": {json.dumps(lineage)}, '
            f'"serial": {int(serial)}, "trunks": {trunks}, "intents": {intents}, '
            f'"retired": {retired}}}'
        )
        try:
            state = State.model_validate_json(document)
        except ValueError as error:
            raise StateError(
                f"the PostgreSQL state {self._identity} holds a row trunksync cannot read: "
                f"{printable(str(error).splitlines()[0])}; nothing was changed"
            ) from None
        return state, moved_to, True

    def moved_state(self) -> State | None:
        """The state of a workspace `state migrate` marked as moved, with `moved_to` set
        (frozen: every lock of it is refused, so no lock is needed), or None while it is
        live. A migration interrupted after the mark resumes from it."""
        with self._session() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            state, moved_to, _ = self._read(conn)
        if moved_to is None:
            return None
        return state.model_copy(update={"moved_to": moved_to})

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        """Without the lock, in a read-only transaction: a read-only role may call it,
        and a moved workspace's history stays readable."""
        with self._session() as conn, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            rows = conn.execute(
                self._sql(
                    "SELECT serial, at, actor, command, run_url, changes FROM {schema}.history "
                    "WHERE workspace = %s ORDER BY serial DESC LIMIT %s"
                ),
                (self.workspace, limit),
            ).fetchall()
        entries = []
        for serial, at, actor, command, run_url, changes in rows:
            entries.append(
                HistoryEntry(
                    serial=int(serial),
                    time=at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    actor=printable(f"{actor} ({run_url})" if run_url else actor),
                    summary=printable(_summary(command, changes)),
                )
            )
        return entries

    # -- the lock ------------------------------------------------------------

    @contextlib.contextmanager
    def lock(
        self, *, timeout: float, command: str, on_locked: Callable[[], None] | None = None
    ) -> Iterator[LockedPgState]:
        conn = self.connect()
        try:
            self._acquire(conn, timeout, command)
            try:
                if on_locked is not None:
                    on_locked()
                with _errors_as_state_errors(self), conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    state, moved_to, existed = self._read(conn)
                if moved_to is not None:
                    raise StateError(
                        f"the PostgreSQL state {self._identity} was moved to {printable(moved_to)} "
                        "by `trunksync state migrate`: use that state (--state) instead"
                    )
                self._held = LockedPgState(self, conn, state, existed, command)
                yield self._held
            finally:
                self._held = None
                self._release(conn)
        finally:
            conn.close()

    def _acquire(self, conn: Connection, timeout: float, command: str) -> None:
        """Take the advisory lock on `conn`, polling with bounded waits until `timeout`."""
        key = advisory_key(self.schema, self.workspace)
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = 0.02
        with _errors_as_state_errors(self):
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
                if row is not None and row[0]:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockError(self._locked_message(conn, key, timeout))
                time.sleep(min(pause, left))
                pause = min(pause * 2, _MAX_POLL_S)
            info = {
                "pid": os.getpid(),
                "host": host_name(),
                "user": user_name(),
                "command": command,
                "since": utc_now(),
                "run_url": ci_run_url(),
            }
            conn.execute(
                self._sql(
                    "INSERT INTO {schema}.lock_holders (workspace, backend_pid, info) "
                    "VALUES (%s, pg_backend_pid(), %s) ON CONFLICT (workspace) DO UPDATE "
                    "SET backend_pid = excluded.backend_pid, info = excluded.info"
                ),
                (self.workspace, Jsonb(info)),
            )

    def _locked_message(self, conn: Connection, key: tuple[int, int], timeout: float) -> str:
        holder_pid = _advisory_holder(conn, key)
        row = conn.execute(
            self._sql("SELECT backend_pid, info FROM {schema}.lock_holders WHERE workspace = %s"),
            (self.workspace,),
        ).fetchone()
        if row is not None and holder_pid is not None and row[0] == holder_pid:
            info = row[1]
            holder = (
                f"{info.get('command')} (pid {info.get('pid')} on {info.get('host')}, "
                f"user {info.get('user')}) since {info.get('since')}"
            )
            if info.get("run_url"):
                holder += f", CI run {info['run_url']}"
            holder = printable(holder)
        elif holder_pid is not None:
            holder = f"another session (PostgreSQL backend pid {holder_pid})"
        else:
            holder = "another session"
        waited = f" after waiting {timeout:g}s" if timeout else ""
        return (
            f"the PostgreSQL state {self._identity} is locked by {holder}{waited}; "
            "wait for it to finish, or pass --lock-timeout SECONDS to wait"
        )

    def _release(self, conn: Connection) -> None:
        # A broken connection already released the lock (the session ended).
        if conn.closed or conn.broken:
            return
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                self._sql(
                    "DELETE FROM {schema}.lock_holders "
                    "WHERE workspace = %s AND backend_pid = pg_backend_pid()"
                ),
                (self.workspace,),
            )
            conn.execute(
                "SELECT pg_advisory_unlock(%s, %s)", advisory_key(self.schema, self.workspace)
            )

    # -- state migrate -------------------------------------------------------

    def seed(self, state: State, *, command: str) -> None:
        if self._held is not None:
            self._held.seed(state)
            return
        with self.lock(timeout=0, command=command) as locked:
            locked.seed(state)

    def mark_moved(self, to: BackendIdentity, *, command: str) -> None:
        """Refuse every later lock of this workspace; on the held lock's connection when
        this object holds it (the caller's lock), else under a lock of its own."""
        if self._held is not None:
            self._held.mark_moved(str(to))
            return
        with self.lock(timeout=0, command=command) as locked:
            locked.mark_moved(str(to))


class LockedPgState:
    """A workspace held under its advisory lock; writes go on the lock's connection."""

    def __init__(
        self, backend: PostgresBackend, conn: Connection, state: State, existed: bool, command: str
    ) -> None:
        self._backend = backend
        self._conn = conn
        self._state = state
        self._existed = existed
        self._row_written = existed
        self._command = command
        self._lost: str | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def existed(self) -> bool:
        return self._existed

    def commit(self, changes: Sequence[StateChange]) -> None:
        """One transaction: lock still held, serial compare-and-swap, rows, history."""
        if not changes:
            return
        self._write(changes, self._state.serial + 1)
        apply_changes(self._state, changes)
        self._state.serial += 1

    def seed(self, state: State) -> None:
        if self._existed:
            raise StateError(
                f"the PostgreSQL state {self._backend.identity()} already holds a state: "
                "migrate only into an empty one"
            )
        self._state = State(
            format_version=state.format_version, lineage=state.lineage, serial=state.serial
        )
        self._write_seed(state)
        self._state = state.model_copy(deep=True)
        self._existed = True

    def mark_moved(self, to: str) -> None:
        if not self._existed:
            raise StateError(f"the PostgreSQL state {self._backend.identity()} holds no state")
        backend = self._backend
        with self._transaction() as conn:
            self._check_fenced(conn, self._fence(conn, self._state.serial + 1))
            conn.execute(
                backend._sql("UPDATE {schema}.workspaces SET moved_to = %s WHERE name = %s"),
                (to, backend.workspace),
            )
            self._insert_history(conn, self._state.serial + 1, [{"kind": "Moved", "to": to}])
        self._state.serial += 1

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction on the lock's own connection; a failure is final (no reconnect)."""
        if self._lost is not None:
            raise StateError(self._lost)
        try:
            with self._conn.transaction():
                yield self._conn
        except psycopg.Error as error:
            reason = self._backend._reason(error)
            if self._conn.broken or self._conn.closed:
                self._lost = (
                    f"lost the connection to the PostgreSQL state {self._backend.identity()} "
                    f"({reason}), and with it the lock: this run writes nothing more; the next "
                    "apply resolves any create in flight"
                )
            else:
                self._lost = (
                    f"cannot write the PostgreSQL state {self._backend.identity()}: {reason}; "
                    "this run writes nothing more; the next apply resolves any create in flight"
                )
            raise StateError(self._lost) from None

    def _fence(self, conn: Connection, new_serial: int) -> psycopg.Cursor[Any]:
        """Queue the fence: bump the serial from what this run last wrote, and only while
        this session holds the lock (one statement). The caller checks `rowcount == 1`
        (see `_check_fenced`) before it commits."""
        backend = self._backend
        lock_held = (
            "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND classid::bigint = %s AND objid::bigint = %s "
            "AND objsubid = 2)"
        )
        key = _as_oids(advisory_key(backend.schema, backend.workspace))
        cursor = conn.cursor()
        if not self._row_written:
            # First write of a new workspace: the row must not exist yet.
            cursor.execute(
                backend._sql(
                    "INSERT INTO {schema}.workspaces (name, lineage, serial, format_version) "
                    f"SELECT %s, %s, %s, %s WHERE {lock_held} ON CONFLICT (name) DO NOTHING"
                ),
                (
                    backend.workspace,
                    self._state.lineage,
                    new_serial,
                    self._state.format_version,
                    *key,
                ),
            )
        else:
            cursor.execute(
                backend._sql(
                    "UPDATE {schema}.workspaces SET serial = %s WHERE name = %s AND serial = %s "
                    f"AND lineage = %s AND moved_to IS NULL AND {lock_held}"
                ),
                (new_serial, backend.workspace, new_serial - 1, self._state.lineage, *key),
            )
        return cursor

    def _check_fenced(self, conn: Connection, fence: psycopg.Cursor[Any]) -> None:
        """Raise (so the open transaction rolls back) unless the fence changed one row."""
        if fence.rowcount == 1:
            return
        if _advisory_holder(conn, advisory_key(self._backend.schema, self._backend.workspace)) != (
            conn.info.backend_pid
        ):
            raise self._fenced("this run no longer holds the lock")
        if not self._row_written:
            raise self._fenced("another run created this workspace meanwhile")
        raise self._fenced("its serial or lineage changed under this run")

    def _fenced(self, why: str) -> StateError:
        self._lost = (
            f"refusing to write the PostgreSQL state {self._backend.identity()}: {why}; "
            "nothing of this batch was written"
        )
        return StateError(self._lost)

    def _write(self, changes: Sequence[StateChange], new_serial: int) -> None:
        # One transaction; its statements go in one pipeline (one round trip), and
        # the fence's outcome is checked before COMMIT, so a fenced batch rolls back.
        with self._transaction() as conn:
            with conn.pipeline():
                fence = self._fence(conn, new_serial)
                with conn.cursor() as cursor:
                    for statement, params in _change_statements(self._backend, changes):
                        cursor.execute(statement, params)
                self._insert_history(conn, new_serial, [change_to_json(c) for c in changes])
            self._check_fenced(conn, fence)
        self._row_written = True

    def _write_seed(self, state: State) -> None:
        backend = self._backend
        ws = backend.workspace
        with self._transaction() as conn:
            self._check_fenced(conn, self._fence(conn, state.serial))
            with conn.cursor() as cursor:
                copy_trunks = "COPY {schema}.trunks (workspace, name, trunk_id, record) FROM STDIN"
                with cursor.copy(backend._sql(copy_trunks)) as copy:
                    for name, record in state.trunks.items():
                        copy.write_row((ws, name, record.trunk_id, Jsonb(record.model_dump())))
                copy_intents = "COPY {schema}.intents (workspace, name, intent) FROM STDIN"
                with cursor.copy(backend._sql(copy_intents)) as copy:
                    for name, intent in state.intents.items():
                        copy.write_row((ws, name, Jsonb(intent.model_dump())))
                copy_retired = "COPY {schema}.retired (workspace, trunk_id, retired) FROM STDIN"
                with cursor.copy(backend._sql(copy_retired)) as copy:
                    for trunk_id, retired in state.retired.items():
                        copy.write_row((ws, trunk_id, Jsonb(retired.model_dump())))
            summary = {
                "kind": "Seeded",
                "trunks": len(state.trunks),
                "intents": len(state.intents),
                "retired": len(state.retired),
            }
            self._insert_history(conn, state.serial, [summary])
        self._row_written = True

    def _insert_history(self, conn: Connection, serial: int, changes: list[dict[str, Any]]) -> None:
        backend = self._backend
        conn.execute(
            backend._sql(
                "INSERT INTO {schema}.history (workspace, serial, actor, command, run_url, "
                "changes) VALUES (%s, %s, %s, %s, %s, %s)"
            ),
            (backend.workspace, serial, _actor(), self._command, ci_run_url(), Jsonb(changes)),
        )


def _change_statements(
    backend: PostgresBackend, changes: Sequence[StateChange]
) -> Iterator[tuple[sql.Composed, tuple[Any, ...]]]:
    """The SQL for each change, in order: the same meaning as changes.apply_change."""
    ws = backend.workspace
    upsert_intent = backend._sql(
        "INSERT INTO {schema}.intents (workspace, name, intent) VALUES (%s, %s, %s) "
        "ON CONFLICT (workspace, name) DO UPDATE SET intent = excluded.intent"
    )
    delete_intent = backend._sql("DELETE FROM {schema}.intents WHERE workspace = %s AND name = %s")
    upsert_trunk = backend._sql(
        "INSERT INTO {schema}.trunks (workspace, name, trunk_id, record) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (workspace, name) DO UPDATE "
        "SET trunk_id = excluded.trunk_id, record = excluded.record"
    )
    delete_trunk = backend._sql(
        "DELETE FROM {schema}.trunks WHERE workspace = %s AND name = %s AND trunk_id = %s"
    )
    upsert_retired = backend._sql(
        "INSERT INTO {schema}.retired (workspace, trunk_id, retired) VALUES (%s, %s, %s) "
        "ON CONFLICT (workspace, trunk_id) DO UPDATE SET retired = excluded.retired"
    )
    delete_retired = backend._sql(
        "DELETE FROM {schema}.retired WHERE workspace = %s AND trunk_id = %s"
    )
    for change in changes:
        if isinstance(change, RecordIntent):
            yield upsert_intent, (ws, change.name, Jsonb(change.intent.model_dump()))
        elif isinstance(change, RecordId):
            record = change.record
            yield upsert_trunk, (ws, change.name, record.trunk_id, Jsonb(record.model_dump()))
            yield delete_intent, (ws, change.name)
            if change.retires and change.retires != record.trunk_id:
                retired = RetiredTrunk(name=change.name, since=change.since or record.created_at)
                yield upsert_retired, (ws, change.retires, Jsonb(retired.model_dump()))
        elif isinstance(change, ForgetIntent):
            yield delete_intent, (ws, change.name)
        elif isinstance(change, ForgetTrunk):
            yield delete_trunk, (ws, change.name, change.trunk_id)
        elif isinstance(change, Retire):
            yield upsert_retired, (ws, change.trunk_id, Jsonb(change.retired.model_dump()))
        elif isinstance(change, Unretire):
            yield delete_retired, (ws, change.trunk_id)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not a state change: {change!r}")


def _summary(command: str, changes: list[dict[str, Any]]) -> str:
    counts = Counter(str(change.get("kind")) for change in changes)
    parts = ", ".join(f"{kind} x{count}" if count > 1 else kind for kind, count in counts.items())
    names = sorted({str(c["name"]) for c in changes if "name" in c})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{command}: {parts}" + (f" ({shown})" if shown else "")


def _as_oids(key: tuple[int, int]) -> tuple[int, int]:
    # pg_locks shows the two int4 keys as oids (unsigned 32-bit).
    return key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF


def _advisory_holder(conn: Connection, key: tuple[int, int]) -> int | None:
    row = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 2 LIMIT 1",
        _as_oids(key),
    ).fetchone()
    return int(row[0]) if row is not None else None


@contextlib.contextmanager
def _errors_as_state_errors(backend: PostgresBackend) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as error:
        raise StateError(
            f"the PostgreSQL state {backend.identity()} failed: {backend._reason(error)}"
        ) from None


def _identity(target: PgTarget) -> BackendIdentity:
    """kind, host:port/dbname, workspace: libpq's defaults and PG* variables filled in,
    never the user or the password."""
    params: dict[str, str] = {}
    with contextlib.suppress(Exception):
        for option in psycopg.pq.Conninfo.get_defaults():
            if option.val is not None:
                params[option.keyword.decode()] = option.val.decode()
    try:
        params.update(
            {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(target.conninfo).items()}
        )
    except psycopg.Error:
        raise StateError(
            "the state URL is not a valid PostgreSQL URL (see libpq's connection URIs)"
        ) from None
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or user_name()
    location = f"{host}:{port}/{dbname}"
    # A service (pg_service.conf) may name another server or database than the URL's
    # host and dbname show: two services are two states. Never a credential.
    extra = [f"service={params['service']}"] if params.get("service") else []
    if target.schema != DEFAULT_SCHEMA:
        extra.append(f"schema={target.schema}")
    if extra:
        location += "?" + "&".join(extra)
    return BackendIdentity("postgresql", printable(location), target.workspace)


__all__ = ["CURRENT_VERSION", "LockedPgState", "PgTarget", "PostgresBackend", "parse_url"]
