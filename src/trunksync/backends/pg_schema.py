"""The PostgreSQL backend's schema: its version, and the migration steps to reach it.

Each step is a list of statements that move the schema from version N-1 to N.
`migrate` runs every missing step in ONE transaction under a transaction-level
advisory lock, so two runners that both find an empty database on first use
cannot both create it, and a failed step leaves the previous version intact
(DDL is transactional in PostgreSQL).
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from trunksync.errors import StateError

# Version 1: a row per workspace (lineage, serial, where it moved), a row per
# trunk, intent and retired trunk, and the history of every commit.
_V1 = [
    """CREATE TABLE {schema}.schema_version (version integer NOT NULL)""",
    """INSERT INTO {schema}.schema_version (version) VALUES (0)""",
    """CREATE TABLE {schema}.workspaces (
        name text PRIMARY KEY,
        lineage text NOT NULL,
        serial bigint NOT NULL CHECK (serial >= 0),
        format_version integer NOT NULL,
        moved_to text,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE {schema}.trunks (
        workspace text NOT NULL REFERENCES {schema}.workspaces (name),
        name text NOT NULL,
        trunk_id text NOT NULL,
        record jsonb NOT NULL,
        PRIMARY KEY (workspace, name)
    )""",
    """CREATE TABLE {schema}.intents (
        workspace text NOT NULL REFERENCES {schema}.workspaces (name),
        name text NOT NULL,
        intent jsonb NOT NULL,
        PRIMARY KEY (workspace, name)
    )""",
    """CREATE TABLE {schema}.retired (
        workspace text NOT NULL REFERENCES {schema}.workspaces (name),
        trunk_id text NOT NULL,
        retired jsonb NOT NULL,
        PRIMARY KEY (workspace, trunk_id)
    )""",
    """CREATE TABLE {schema}.history (
        workspace text NOT NULL REFERENCES {schema}.workspaces (name),
        serial bigint NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        changes jsonb NOT NULL,
        PRIMARY KEY (workspace, serial)
    )""",
]

# Version 2: who holds a workspace's lock (so "locked by ..." can name them),
# and the command and CI run URL of each history entry as their own columns.
_V2 = [
    """CREATE TABLE {schema}.lock_holders (
        workspace text PRIMARY KEY,
        backend_pid integer NOT NULL,
        info jsonb NOT NULL
    )""",
    """ALTER TABLE {schema}.history ADD COLUMN command text NOT NULL DEFAULT ''""",
    """ALTER TABLE {schema}.history ADD COLUMN run_url text""",
]

MIGRATIONS: list[list[str]] = [_V1, _V2]
CURRENT_VERSION = len(MIGRATIONS)


def advisory_key(*parts: str) -> tuple[int, int]:
    """Two signed 32-bit keys for pg_advisory_lock(int, int), derived from `parts`.

    Derived from what the lock protects (schema, workspace), never from a row id,
    so two schemas or workspaces in one database never block each other.
    """
    digest = hashlib.blake2b("\0".join(("trunksync", *parts)).encode(), digest_size=8).digest()
    return (
        int.from_bytes(digest[:4], "big", signed=True),
        int.from_bytes(digest[4:], "big", signed=True),
    )


def migration_key(schema: str) -> tuple[int, int]:
    """The advisory key that serialises schema migrations of `schema`.

    Its first part can be no schema name ('-' is not allowed in one), so it never
    equals a workspace's run lock, advisory_key(schema, workspace): with
    (schema, "migrate") a run on the workspace named `migrate` blocked every
    schema upgrade, and an upgrade blocked that workspace."""
    return advisory_key("schema-migration", schema)


def current_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The schema's version in the database: 0 when it has none yet."""
    table = f"{schema}.schema_version"
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_quoted(table, schema),)).fetchone()
    if row is None or not row[0]:
        return 0
    found = conn.execute(
        sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    return int(str(found[0])) if found is not None else 0


def migrate(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, target: int = CURRENT_VERSION
) -> int:
    """Bring `schema` to version `target` (creating it on first use); returns the version.

    Refuses a schema newer than this trunksync knows: an older runner must never
    write rows whose meaning it does not know.
    """
    version = current_version(conn, schema)
    if version == target:
        return version
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", migration_key(schema))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        version = current_version(conn, schema)  # again: another runner may have migrated
        if version > CURRENT_VERSION:
            raise StateError(
                f"the PostgreSQL state schema {schema!r} is at version {version}, newer than "
                f"this trunksync knows ({CURRENT_VERSION}); upgrade trunksync. Nothing was changed"
            )
        for step in MIGRATIONS[version:target]:
            for statement in step:
                conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
        if version < target:
            conn.execute(
                sql.SQL("UPDATE {}.schema_version SET version = %s").format(sql.Identifier(schema)),
                (target,),
            )
        return max(version, target)


def _quoted(table: str, schema: str) -> str:
    # to_regclass takes a (possibly quoted) name: quote the schema as an identifier.
    return '"' + schema.replace('"', '""') + '"' + table[len(schema) :]
