"""A real PostgreSQL for the state tests (never a mock): one throwaway schema per test.

Every machine (and CI) runs PostgreSQL 15 on 127.0.0.1:5432 with trust auth; set
``O365_TEST_PG_DSN`` to use another. The tests never skip: an unreachable server fails
them, with the command that starts it. Schemas are named ``o365t_<random>``, so tests run
in parallel without seeing each other, and are dropped afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

PG_DSN = os.environ.get("O365_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


@functools.cache
def _reachable() -> str | None:
    """``None`` when PostgreSQL answers, else why not."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def require_postgres() -> str:
    """The test DSN; fails the test (never skips) when PostgreSQL is unreachable."""
    problem = _reachable()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_DSN} ({problem}). The state tests need it: "
            f"start it with `{_START}` (or set O365_TEST_PG_DSN)",
            pytrace=False,
        )
    return PG_DSN


def new_schema() -> str:
    """A fresh schema name (nothing is created), dropped when the test process exits."""
    require_postgres()
    name = f"o365t_{uuid.uuid4().hex[:16]}"
    atexit.register(drop_schema, name)
    return name


def drop_schema(name: str) -> None:
    """Drop ``name`` and everything in it, if it exists."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextlib.contextmanager
def temp_schema() -> Iterator[str]:
    """A fresh schema name for the ``with`` block, dropped at its end."""
    name = new_schema()
    try:
        yield name
    finally:
        drop_schema(name)


def admin() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection for a test to look at (or tamper with) the database."""
    return psycopg.connect(require_postgres(), autocommit=True)
