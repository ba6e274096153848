"""A damaged or full SQLite state is refused by name, with the way out, never replaced by zero.

Damage is made on a real state file (checkpoints of 20 tenants, 20,000 delivered facts,
about 2 MB): cut in the middle, a few pages overwritten with random bytes, the header
overwritten ("not a database"), a schema version that is not a number, and a newer schema.
Opening it for writing (``run``, ``state reset``) and for reading (``state show``) must
fail with an error that names the file and says how to get out (restore a backup, or move
the file aside), and must leave the file as it was: a collector that started from zero
would read and deliver ``initial_lookback_secs`` of history again.

A full database (``PRAGMA max_page_count``: SQLite's own "database or disk is full") fails a
write with an error naming the file, writes none of it, and works again once there is room.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from o365collector.config.loader import load_settings
from o365collector.errors import StateError
from o365collector.state.backend import open_state
from o365collector.state.sqlite import DATABASE_FILE, SCHEMA_VERSION, SqliteStateStore
from o365collector.state.store import dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
WINDOW = TimeWindow(T0, T0 + timedelta(hours=1))
TENANTS = [f"tenant{i:02d}" for i in range(20)]
PAGE = 4096


def _build(path: Path) -> None:
    store = SqliteStateStore(path)
    try:
        for tenant in TENANTS:
            store.commit_window(tenant, "message_trace", WINDOW, WINDOW.end)
        scope = dedup_scope(TENANTS[0], "message_trace")
        facts = [(random.randbytes(24), "delivered", 2**40) for _ in range(20_000)]
        store.remember(scope, facts)
    finally:
        store.close()


@pytest.fixture
def state_db(tmp_path: Path) -> Path:
    """A closed, healthy ``state.db`` (no -wal or -shm beside it)."""
    path = tmp_path / "state" / DATABASE_FILE
    _build(path)
    assert path.stat().st_size > 100 * PAGE
    return path


def _truncate_half(path: Path) -> None:
    os.truncate(path, (path.stat().st_size // PAGE // 2) * PAGE + 100)


def _garbage_pages(path: Path) -> None:
    """Three pages in the middle (the dedup table's leaves) overwritten with random bytes."""
    middle = (path.stat().st_size // PAGE // 2) * PAGE
    with path.open("r+b") as handle:
        handle.seek(middle)
        handle.write(random.randbytes(3 * PAGE))


def _garbage_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(random.randbytes(100))


def _version_text(path: Path) -> None:
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE meta SET value='two' WHERE key='schema_version'")
    raw.close()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (_truncate_half, "database disk image is malformed"),
    "garbage pages": (_garbage_pages, "btreeInitPage() returns error code 11"),
    "garbage header": (_garbage_header, "file is not a database"),
    "schema version not a number": (_version_text, "its schema version is 'two', not a number"),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_damaged_message(text: str, path: Path, verb: str, detail: str) -> None:
    assert f"cannot {verb} state database {path}: it is damaged (" in text
    assert detail in text
    assert "will not start from zero on its own, which would deliver history again" in text
    assert "restore state.db from a backup (delete state.db-wal and state.db-shm" in text
    assert "or move state.db aside to start again from collection.initial_lookback_secs" in text
    assert "\n" not in text  # one line, whatever SQLite's report looked like


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_is_refused_by_name_for_writing_and_reading(state_db: Path, damage: str) -> None:
    """Writing and read-only opens both refuse; the damaged file is left byte for byte."""
    make, detail = DAMAGE[damage]
    make(state_db)
    before = _digest(state_db)
    with pytest.raises(StateError) as writing:
        SqliteStateStore(state_db)
    _assert_damaged_message(str(writing.value), state_db, "open", detail)
    with pytest.raises(StateError) as reading:
        SqliteStateStore(state_db, read_only=True)
    _assert_damaged_message(str(reading.value), state_db, "read", detail)
    assert _digest(state_db) == before


def test_a_newer_schema_names_the_versions_and_the_ways_out(state_db: Path) -> None:
    """A newer schema is refused with both versions, the file and what to do."""
    raw = sqlite3.connect(state_db)
    with raw:
        raw.execute("UPDATE meta SET value=? WHERE key='schema_version'", (SCHEMA_VERSION + 5,))
    raw.close()
    with pytest.raises(StateError) as info:
        SqliteStateStore(state_db)
    assert str(info.value) == (
        f"{state_db} was written by a newer o365collector (schema {SCHEMA_VERSION + 5}, this "
        f"one reads {SCHEMA_VERSION}); upgrade o365collector, or restore a backup of the state "
        "written by this version, or point state_dir elsewhere"
    )


def test_restoring_a_backup_as_the_message_says_brings_every_checkpoint_back(
    state_db: Path,
) -> None:
    """The way out works: a backup copied over the damaged file opens with its checkpoints."""
    backup = state_db.with_name("backup.db")
    shutil.copyfile(state_db, backup)
    _garbage_pages(state_db)
    with pytest.raises(StateError, match="it is damaged"):
        SqliteStateStore(state_db)
    for leftover in ("state.db-wal", "state.db-shm"):
        state_db.with_name(leftover).unlink(missing_ok=True)
    shutil.copyfile(backup, state_db)
    store = SqliteStateStore(state_db)
    try:
        assert {t for t, _, _, _ in store.all()} == set(TENANTS)
        assert store.load(TENANTS[7], "message_trace").watermark == WINDOW.end
    finally:
        store.close()


# --- through open_state and the command line ------------------------------------------------


def _config(state_dir: Path) -> Path:
    """A config whose tenant points at a closed port: nothing could be collected anyway."""
    config = {
        "state_dir": str(state_dir),
        "tenants": [
            {
                "name": "contoso",
                "tenant_id": "7d1b2c3e-0000-4000-8000-00000000d018",
                "client_id": "5f6a7b8c-0000-4000-8000-00000000d018",
                "client_secret": "Damaged~State-Secret.0123456789",
                "endpoints": {"authority": "http://127.0.0.1:9", "graph": "http://127.0.0.1:9"},
            }
        ],
        "sinks": [{"type": "jsonl", "path": str(state_dir.parent / "out" / "events.jsonl")}],
    }
    path = state_dir.parent / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_open_state_for_state_show_refuses_instead_of_showing_an_empty_state(
    state_db: Path,
) -> None:
    """Read-only ``open_state`` reads a missing file as "never run", never a damaged one."""
    _truncate_half(state_db)
    settings = load_settings(_config(state_db.parent))
    with pytest.raises(StateError, match=r"cannot read state database .* it is damaged"):
        open_state(settings, read_only=True)


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o365collector", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "verb"),
    [(("run", "--once"), 1, "open"), (("state", "show"), 2, "read")],
    ids=["run --once", "state show"],
)
def test_the_commands_fail_with_one_line_and_start_nothing(
    state_db: Path, args: tuple[str, ...], code: int, verb: str
) -> None:
    """``run`` and ``state show`` exit non-zero with one line; no state or output is made."""
    _truncate_half(state_db)
    before = _digest(state_db)
    config = _config(state_db.parent)
    result = _cli(config, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("o365collector: error: ")
    _assert_damaged_message(lines[0], state_db, verb, "database disk image is malformed")
    assert _digest(state_db) == before
    out = state_db.parent.parent / "out" / "events.jsonl"
    assert not out.exists() or out.stat().st_size == 0


# --- a full database ------------------------------------------------------------------------


def test_a_full_database_refuses_a_write_by_name_keeps_nothing_of_it_and_recovers(
    state_db: Path,
) -> None:
    """SQLite may roll the transaction back itself on a full disk: the error is still ours."""
    store = SqliteStateStore(state_db)
    try:
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages}")  # no page more: the disk is full
        facts = [(random.randbytes(24), "delivered", 2**40) for _ in range(5_000)]
        scope = dedup_scope(TENANTS[1], "message_trace")
        with pytest.raises(StateError) as info:
            store.remember(scope, facts)
        assert str(info.value).startswith(f"cannot write dedup fingerprints to {state_db}: ")
        assert "database or disk is full" in str(info.value)
        keys = [key for key, _, _ in facts]
        assert store.seen_statuses(keys) == {}  # all or nothing
        store._db.execute(f"PRAGMA max_page_count={pages * 10}")  # space is back
        store.remember(scope, facts)
    finally:
        store.close()
    reopened = SqliteStateStore(state_db)
    try:
        assert len(reopened.seen_statuses(keys)) == len(keys)
    finally:
        reopened.close()
