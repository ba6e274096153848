"""``o365collector state migrate``: an SQLite state copied into PostgreSQL reads the same.

The command runs in process (click's runner), against the machine's PostgreSQL, into a
schema of its own per test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from pg_support import PG_DSN, temp_schema

from o365collector.cli import main
from o365collector.state.lock import state_lock
from o365collector.state.postgresql import PostgresStateStore
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.store import StateStore, dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 8, 30, 15, 123456, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))
W2 = TimeWindow(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
MT = "message_trace"
LINK = "https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=a%3D"
BACKFILL = "backfill:20240501T000000Z-20240501T020000Z"
TENANTS = ("contoso", "fabrikam")
CLIENT = "5f6a7b8c-0000-4000-8000-0000000000cc"
KEYS = [f"{t}/{i}".encode() for t in TENANTS for i in range(300)]
PASSWORD = "Migr4te~Secret.0365"  # trust auth accepts and ignores it


@pytest.fixture
def schema() -> Iterator[str]:
    with temp_schema() as name:
        yield name


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose SQLite state (in tmp_path/state) holds two tenants' state."""
    data = {
        "state_dir": str(tmp_path / "state"),
        "tenants": [
            {
                "name": t,
                "tenant_id": f"{t}.onmicrosoft.com",
                "client_id": CLIENT,
                "client_secret": "s",
            }
            for t in TENANTS
        ],
        "sinks": [{"type": "stdout"}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    store = SqliteStateStore(tmp_path / "state" / "state.db")
    try:
        _fill(store)
    finally:
        store.close()
    return path


def _fill(store: StateStore) -> None:
    for n, tenant in enumerate(TENANTS):
        store.commit_window(tenant, MT, W1, NOW)
        store.save_inflight(tenant, MT, W2, f"{LINK}{n}", NOW)  # resumes mid-window
        store.ensure_watermark(tenant, MT, "final", T0 - timedelta(days=1), NOW)
        store.commit_window(tenant, "rws.MailTraffic", W1, NOW, lane=BACKFILL)
        store.set_status(tenant, MT, "failed" if n else "ok", "429 storm" if n else "", NOW)
        scope = dedup_scope(tenant, MT)
        store.remember(scope, [(f"{tenant}/{i}".encode(), "pending", 1000 + i) for i in range(300)])
        store.remember(
            scope, [(f"{tenant}/{i}".encode(), "delivered", 2000) for i in range(0, 300, 3)]
        )
    store.record_reset_marker("contoso", MT, "2024-05-01", NOW)


def _view(store: StateStore) -> tuple[object, ...]:
    """Everything a collector of TENANTS reads back from a state."""
    return (
        [row for row in store.all() if row[0] in TENANTS],
        {(t, s): store.status(t, s) for t in TENANTS for s in (MT, "rws.MailTraffic")},
        store.seen_statuses(KEYS),
        store.reset_markers(),
    )


def _migrate(config: Path, schema: str, *extra: str, dsn: str = PG_DSN) -> Result:
    args = ["state", "migrate", "--config", str(config), "--to", dsn, "--schema", schema, *extra]
    return CliRunner().invoke(main, args)


def _sqlite(config: Path) -> SqliteStateStore:
    return SqliteStateStore(config.parent / "state" / "state.db")


def _postgres(schema: str) -> PostgresStateStore:
    return PostgresStateStore(PG_DSN, schema=schema)


def test_a_migrated_state_reads_the_same_in_postgresql(config: Path, schema: str) -> None:
    done = _migrate(config, schema)
    assert done.exit_code == 0, done.output
    assert "Copied 6 checkpoint(s), 600 delivered fact(s), 2 stream health(s) and " in done.output
    assert "1 reset marker(s) of 2 tenant(s)" in done.output
    source, target = _sqlite(config), _postgres(schema)
    try:
        assert _view(target) == _view(source)
        assert target.load("fabrikam", MT).next_link == f"{LINK}1"
        assert target.load("contoso", MT).updated_at == NOW
        for horizon in (1100, 1299, 2001):  # the expiries came along
            assert target.expire_seen(horizon) == source.expire_seen(horizon)
    finally:
        source.close()
        target.close()


def test_a_target_holding_these_tenants_is_refused_unless_forced(config: Path, schema: str) -> None:
    target = _postgres(schema)
    try:
        target.commit_window("fabrikam", MT, W2, NOW)
        target.remember(dedup_scope("fabrikam", MT), [(b"only-in-pg", "delivered", 9)])
        target.commit_window("northwind", MT, W2, NOW)  # not in the SQLite state: kept
        refused = _migrate(config, schema)
        assert refused.exit_code == 1
        assert "already holds state of tenant(s) fabrikam" in refused.output
        assert "--force" in refused.output
        assert [key[:2] for *key, _ in target.all()] == [["fabrikam", MT], ["northwind", MT]]
        forced = _migrate(config, schema, "--force")
        assert forced.exit_code == 0, forced.output
        assert "Replaced the earlier state of fabrikam (--force)" in forced.output
        assert target.seen_statuses([b"only-in-pg"]) == {}
        assert target.load("northwind", MT).watermark == W2.end
        source = _sqlite(config)
        try:
            assert _view(target) == _view(source)
        finally:
            source.close()
    finally:
        target.close()


def test_the_dsn_password_is_never_printed(config: Path, schema: str) -> None:
    dsn = PG_DSN.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    done = _migrate(config, schema, dsn=dsn)
    assert done.exit_code == 0, done.output
    assert PASSWORD not in done.output
    assert "127.0.0.1:5432/test" in done.output
    unreachable = dsn.replace(":5432/", ":1/")
    failed = _migrate(config, schema + "_x", dsn=unreachable)
    assert failed.exit_code == 1
    assert "127.0.0.1:1/test" in failed.output
    assert PASSWORD not in failed.output


def test_the_dsn_may_come_from_the_environment(config: Path, schema: str) -> None:
    args = ["state", "migrate", "--config", str(config), "--schema", schema]
    done = CliRunner().invoke(main, args, env={"O365_PG_DSN": PG_DSN})
    assert done.exit_code == 0, done.output


def test_no_sqlite_state_is_an_error(tmp_path: Path, config: Path, schema: str) -> None:
    (config.parent / "state" / "state.db").unlink()
    done = _migrate(config, schema)
    assert done.exit_code == 1
    assert "no SQLite state to migrate" in done.output


def test_migrate_waits_for_no_collector_it_refuses_while_one_runs(
    config: Path, schema: str
) -> None:
    """It holds the SQLite state lock: refused while another process (a collector) has it."""
    with state_lock(config.parent / "state", "run"):
        done = subprocess.run(
            [sys.executable, "-m", "o365collector", "state", "migrate", "--config", str(config),
             "--to", PG_DSN, "--schema", schema],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert "is in use" in done.stderr
