"""The ``state:`` settings and ``open_state``'s choice of backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pg_support import PG_DSN, temp_schema

from o365collector.cli import main
from o365collector.config.loader import parse_settings
from o365collector.config.model import Settings
from o365collector.errors import ConfigError, StateError
from o365collector.observability.redact import redact
from o365collector.state.backend import open_leases, open_state
from o365collector.state.leases import Fence
from o365collector.state.postgresql import PostgresStateStore
from o365collector.state.sqlite import SqliteStateStore

PASSWORD = "Cfg~Pg-Secret.0365"
DSN = PG_DSN.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")


@pytest.fixture
def schema() -> Iterator[str]:
    with temp_schema() as name:
        yield name


def _data(tmp_path: Path, state: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "tenants": [
            {
                "tenant_id": "contoso.onmicrosoft.com",
                "client_id": "5f6a7b8c-0000-4000-8000-0000000000cc",
                "client_secret": "s",
            }
        ],
        "sinks": [{"type": "stdout"}],
    }
    if state is not None:
        data["state"] = state
    return data


def _settings(tmp_path: Path, state: dict[str, Any] | None) -> Settings:
    return parse_settings(_data(tmp_path, state))


def _error(tmp_path: Path, state: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, state)
    return str(info.value)


# --- settings -------------------------------------------------------------------------------


def test_the_default_is_sqlite_in_state_dir(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    assert settings.state.backend == "sqlite"
    assert settings.state.dsn is None
    store = open_state(settings)
    try:
        assert isinstance(store, SqliteStateStore)
        assert store.path == tmp_path / "state" / "state.db"
    finally:
        store.close()


def test_postgresql_settings_with_their_defaults(tmp_path: Path) -> None:
    state = _settings(tmp_path, {"backend": "postgresql", "dsn": DSN}).state
    assert state.dsn is not None and state.dsn.get_secret_value() == DSN
    assert (state.db_schema, state.lease_secs, state.pool_size) == ("o365collector", 30.0, 4)
    assert PASSWORD not in repr(state)
    assert PASSWORD not in redact(f"connecting with {DSN} failed ({PASSWORD})")


def test_postgresql_needs_a_dsn(tmp_path: Path) -> None:
    message = _error(tmp_path, {"backend": "postgresql"})
    assert "state.dsn: " in message
    assert "required with backend: postgresql" in message
    assert "${O365_PG_DSN}" in message


@pytest.mark.parametrize(
    "key", ["dsn", "schema", "lease_secs", "pool_size", "connect_timeout_secs"]
)
def test_postgresql_keys_are_refused_with_sqlite(tmp_path: Path, key: str) -> None:
    value: Any = {"dsn": DSN, "schema": "x"}.get(key, 5)
    message = _error(tmp_path, {key: value})
    assert f"state.{key}: " in message
    assert "set state.backend: postgresql" in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("state", "key"),
    [
        ({"backend": "postgresql", "dsn": f"not a dsn {PASSWORD}"}, "state.dsn"),
        ({"backend": "postgresql", "dsn": DSN, "schema": "Bad-Name"}, "state.schema"),
        ({"backend": "postgresql", "dsn": DSN, "lease_secs": 0}, "state.lease_secs"),
        ({"backend": "mysql", "dsn": DSN}, "state.backend"),
    ],
)
def test_bad_state_settings_name_the_key_and_never_the_dsn(
    tmp_path: Path, state: dict[str, Any], key: str
) -> None:
    message = _error(tmp_path, state)
    assert f"{key}: " in message
    assert PASSWORD not in message


def test_the_dsn_may_come_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "dsn"
    secret.write_text(DSN + "\n", encoding="utf-8")
    from_file = _settings(tmp_path, {"backend": "postgresql", "dsn_file": str(secret)})
    assert from_file.state.dsn is not None and from_file.state.dsn.get_secret_value() == DSN
    monkeypatch.setenv("O365_PG_DSN", DSN)
    from_env = _settings(tmp_path, {"backend": "postgresql", "dsn": "${O365_PG_DSN}"})
    assert from_env.state.dsn == from_file.state.dsn


def test_validate_never_prints_the_dsn(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_data(tmp_path, {"backend": "postgresql", "dsn": DSN})))
    done = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert done.exit_code == 0, done.output
    assert PASSWORD not in done.output
    path.write_text(yaml.safe_dump(_data(tmp_path, {"dsn": DSN})))  # sqlite: refused
    refused = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert refused.exit_code == 2
    assert "state.dsn" in refused.output
    assert PASSWORD not in refused.output


# --- open_state -----------------------------------------------------------------------------


def test_open_state_builds_the_postgresql_store(tmp_path: Path, schema: str) -> None:
    settings = _settings(tmp_path, {"backend": "postgresql", "dsn": DSN, "schema": schema})
    fence = Fence("replica-1")
    store = open_state(settings, fence=fence)
    try:
        assert isinstance(store, PostgresStateStore)
        assert store.fence is fence
        assert store.database.schema == schema
        assert not (tmp_path / "state").exists()  # nothing of SQLite is made
    finally:
        store.close()
    reader = open_state(settings, read_only=True)
    try:
        assert isinstance(reader, PostgresStateStore) and reader.read_only
        assert reader.all() == []
    finally:
        reader.close()
    leases = open_leases(settings)
    try:
        leases.heartbeat("replica-1", 30)
        assert leases.live_replicas() == ["replica-1"]
    finally:
        leases.close()


def test_state_show_reads_a_postgresql_state_that_does_not_exist_yet(
    tmp_path: Path, schema: str
) -> None:
    settings = _settings(tmp_path, {"backend": "postgresql", "dsn": DSN, "schema": schema})
    reader = open_state(settings, read_only=True)
    try:
        assert reader.lanes("contoso.onmicrosoft.com", "message_trace") == []
    finally:
        reader.close()


def test_fences_and_leases_need_postgresql(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    with pytest.raises(ValueError, match="postgresql"):
        open_state(settings, fence=Fence("replica-1"))
    with pytest.raises(StateError, match="postgresql"):
        open_leases(settings)


def test_an_unreachable_database_fails_at_open_naming_it_not_the_password(
    tmp_path: Path,
) -> None:
    dsn = DSN.replace(":5432/", ":1/")
    settings = _settings(tmp_path, {"backend": "postgresql", "dsn": dsn})
    with pytest.raises(StateError) as info:
        open_state(settings)
    assert "127.0.0.1:1/test" in str(info.value)
    assert PASSWORD not in str(info.value)


# --- import footprint -----------------------------------------------------------------------


def test_the_sqlite_default_never_imports_psycopg(tmp_path: Path) -> None:
    """psycopg (and the PostgreSQL modules) load only when the backend is chosen."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import o365collector.cli, o365collector.app\n"
        "from o365collector.state.backend import open_state\n"
        "from o365collector.state.leases import Fence\n"
        "from o365collector.config.loader import parse_settings\n"
        f"data = {_data(tmp_path, None)!r}\n"
        "open_state(parse_settings(data)).close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', "
        "'o365collector.state.p', 'o365collector.state.migrate'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
