"""One PostgreSQL database of the state backend: its connection pool and its error messages.

:class:`PgDatabase` is shared by :class:`~o365collector.state.postgresql.PostgresStateStore`
and :class:`~o365collector.state.leases.LeaseTable`. Connections are autocommit (a write is
one statement, so one round trip), never prepare statements and never set session
parameters (``search_path``, ``options``): every table is named with its schema, so the
backend also works behind PgBouncer in transaction mode. Messages name the host, port,
database and schema, never the DSN or its password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from o365collector.errors import StateError
from o365collector.observability.redact import redact, register_secret
from o365collector.state import pg_schema

T = TypeVar("T")
Connection = psycopg.Connection[Any]
APPLICATION_NAME = "o365collector"


class PgDatabase:
    """A pool of autocommit connections to one schema of one PostgreSQL database.

    Thread-safe: each call of :meth:`run` borrows its own connection.
    """

    def __init__(
        self,
        dsn: str,
        schema: str,
        *,
        pool_size: int = 4,
        connect_timeout_secs: float = 10.0,
        migrate: bool = True,
    ) -> None:
        """Connect, then (``migrate``) create or upgrade the schema, or read its version.

        Raises:
            StateError: the database cannot be reached, or holds a newer schema version.
        """
        self.schema = schema
        self.where = f"PostgreSQL {describe(dsn)} (schema {schema})"
        self._dsn = dsn
        self._timeout = connect_timeout_secs
        if _params(dsn) is None:  # libpq's parse error would quote the DSN
            msg = (
                "state.dsn is not a valid PostgreSQL connection string; give "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE or host=… dbname=… user=…"
            )
            raise StateError(msg)
        for secret in _passwords(dsn):
            register_secret(secret)
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": None,  # PgBouncer (transaction mode) before 1.21
            "connect_timeout": max(1, round(connect_timeout_secs)),
        }
        if "application_name" not in (_params(dsn) or {}):
            kwargs["application_name"] = APPLICATION_NAME
        try:
            with psycopg.connect(dsn, **kwargs) as first:  # fails fast, with libpq's reason
                if migrate:
                    self.version: int | None = pg_schema.migrate(first, schema, self.where)
                else:
                    self.version = pg_schema.check_version(first, schema, self.where)
        except psycopg.Error as exc:
            raise self.error("cannot connect to", exc) from exc
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            timeout=connect_timeout_secs,
            name=f"o365collector-state-{schema}",
            open=False,
        )
        self._pool.open(wait=False)

    def q(self, text: LiteralString) -> sql.Composed:
        """``text`` with each ``{s}`` replaced by the quoted schema name."""
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    def run(self, action: str, work: Callable[[Connection], T]) -> T:
        """``work`` on a pooled connection; ``action`` names it in a :class:`StateError`.

        A connection found broken (the server restarted, a proxy dropped it) is replaced
        and ``work`` runs once more: every statement of this backend can be repeated.
        """
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    try:
                        return work(conn)
                    except psycopg.OperationalError:
                        if attempt == 2 or not conn.broken:
                            raise
            except PoolTimeout as exc:
                msg = (
                    f"cannot {action} {self.where}: no connection within "
                    f"{self._timeout:g} s; check that PostgreSQL is up and reachable "
                    "(state.connect_timeout_secs, state.pool_size)"
                )
                raise StateError(msg) from exc
            except psycopg.Error as exc:
                raise self.error(f"cannot {action}", exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def error(self, action: str, exc: BaseException) -> StateError:
        """A :class:`StateError` for ``exc``: where, what libpq said, never the password."""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        for secret in _passwords(self._dsn):
            reason = reason.replace(secret, "***")
        reason = redact(reason.replace(self._dsn, "***"))
        return StateError(f"{action} {self.where}: {reason}")

    def close(self) -> None:
        """Close every connection of the pool."""
        self._pool.close()


def describe(dsn: str) -> str:
    """``host:port/database as user`` of a DSN, for messages: never its password."""
    params = _params(dsn) or {}
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    user = f" as {params['user']}" if params.get("user") else ""
    return f"{host}:{port}/{params.get('dbname') or '(default database)'}{user}"


def _params(dsn: str) -> dict[str, Any] | None:
    """The DSN's parameters, or ``None`` when libpq cannot parse it."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error:
        return None


def _passwords(dsn: str) -> list[str]:
    password = (_params(dsn) or {}).get("password")
    return [str(password)] if password else []
