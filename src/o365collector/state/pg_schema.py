"""The PostgreSQL state schema as ordered migration steps, applied once however many start.

Version ``n`` is reached by running ``MIGRATIONS[n - 1]``; the version a database holds is
``meta.schema_version`` in the configured schema (namespace). :func:`migrate` runs at every
writing open, in one transaction behind a transaction-level advisory lock, so replicas that
start together migrate exactly once and the others then see the finished schema; no
session-level lock is taken, which would break behind PgBouncer in transaction mode. A
release adds steps at the end and never edits a published one.
"""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
from psycopg import sql

from o365collector.errors import StateError

# ``{s}`` is the schema, quoted. Times are timestamptz; dedup expiries are epoch seconds.
# Checkpoint keys sort bytewise (COLLATE "C"), as SQLite sorts them, whatever the database.
MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (  # 1: everything SQLite keeps, plus the leases and replicas of a shared deployment
        """CREATE TABLE {s}.checkpoints (
            tenant text COLLATE "C" NOT NULL,
            stream text COLLATE "C" NOT NULL,
            lane text COLLATE "C" NOT NULL DEFAULT 'live',
            watermark timestamptz,
            inflight_start timestamptz,
            inflight_end timestamptz,
            next_link text,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (tenant, stream, lane))""",
        """CREATE TABLE {s}.seen (
            row_key bytea PRIMARY KEY,
            scope text NOT NULL,
            statuses text NOT NULL,
            expires_at bigint NOT NULL)""",
        "CREATE INDEX seen_expiry ON {s}.seen (expires_at)",
        """CREATE TABLE {s}.stream_status (
            tenant text NOT NULL,
            stream text NOT NULL,
            state text NOT NULL,
            error text NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (tenant, stream))""",
        """CREATE TABLE {s}.stream_resets (
            tenant text NOT NULL,
            stream text NOT NULL,
            marker text NOT NULL,
            applied_at timestamptz NOT NULL,
            PRIMARY KEY (tenant, stream))""",
        """CREATE TABLE {s}.leases (
            tenant text PRIMARY KEY,
            owner text NOT NULL,
            generation bigint NOT NULL,
            expires_at timestamptz NOT NULL,
            acquired_at timestamptz NOT NULL)""",
        """CREATE TABLE {s}.replicas (
            replica_id text PRIMARY KEY,
            host text NOT NULL DEFAULT '',
            pid integer,
            started_at timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL)""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK_CLASS = 0x0365  # first key of pg_advisory_xact_lock(int, int); the second hashes the schema

_META = "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL)"
_VERSION = "SELECT value FROM {s}.meta WHERE key = 'schema_version'"
_SET_VERSION = (
    "INSERT INTO {s}.meta (key, value) VALUES ('schema_version', %s) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
)
_HAS_SCHEMA = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
_HAS_META = "SELECT to_regclass(format('%%I.meta', %s::text)) IS NOT NULL"

Connection = psycopg.Connection[Any]


def migrate(conn: Connection, schema: str, where: str) -> int:
    """Create or upgrade ``schema`` to :data:`SCHEMA_VERSION`; returns that version.

    ``conn`` is in autocommit mode; the whole migration is one transaction. The schema is
    created only when missing, so a role without ``CREATE`` on the database can use one a
    DBA created for it.

    Raises:
        StateError: the schema holds a newer version (``where`` names the database).
        psycopg.Error: the database refused a statement.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, schema))
        if conn.execute(_HAS_SCHEMA, (schema,)).fetchone() is None:
            conn.execute(_q("CREATE SCHEMA {s}", schema))
        conn.execute(_q(_META, schema))
        row = conn.execute(_q(_VERSION, schema)).fetchone()
        version = int(row[0]) if row else 0
        _refuse_newer(version, where)
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(_q(statement, schema))
        if version != SCHEMA_VERSION:
            conn.execute(_q(_SET_VERSION, schema), (str(SCHEMA_VERSION),))
    return SCHEMA_VERSION


def check_version(conn: Connection, schema: str, where: str) -> int | None:
    """The version ``schema`` holds, ``None`` if it holds none yet; nothing is written.

    Raises:
        StateError: the schema holds a newer version than this package knows.
        psycopg.Error: the database refused a statement.
    """
    found = conn.execute(_HAS_META, (schema,)).fetchone()
    if not found or not found[0]:
        return None
    row = conn.execute(_q(_VERSION, schema)).fetchone()
    if row is None:
        return None
    _refuse_newer(int(row[0]), where)
    return int(row[0])


def _refuse_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        msg = (
            f"{where} holds state schema version {version}, written by a newer o365collector "
            f"(this one knows version {SCHEMA_VERSION}); upgrade o365collector on every "
            "replica, or point state.schema at another schema"
        )
        raise StateError(msg)


def _q(text: LiteralString, schema: str) -> sql.Composed:
    return sql.SQL(text).format(s=sql.Identifier(schema))
