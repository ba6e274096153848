"""Issue 13.2: one process per state directory.

Two ``run --once`` on one ``state_dir`` both delivered the same rows. Every command that
writes state now holds an exclusive ``flock`` on ``{state_dir}/lock`` for its whole life;
a second one exits 2 at once naming the holder, and read-only commands work beside it.
Every collector here is a real subprocess against the project's Microsoft emulator.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from harness import (
    EmulatorProcess,
    cli,
    collector_config,
    count_output_lines,
    emulator_settings,
    iso,
    kill,
    now,
    run_collector,
    start_collector,
)

pytestmark = pytest.mark.integration

HOST = socket.gethostname()

# Holds the lock of argv[1] until its stdin closes; says "held" once it has it.
_HOLDER = """
import sys
from pathlib import Path
from o365collector.state.lock import state_lock
with state_lock(Path(sys.argv[1]), "holder"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _wait_for(what: str, ready: object, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(ready) and ready():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_refused(done: subprocess.CompletedProcess[str], state: Path, pid: int) -> None:
    """Exit 2 with one line naming the state path, the holder's PID and host, and the fix."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("o365collector:")]
    assert len(errors) == 1, done.stderr
    message = errors[0]
    assert str(state) in message, message
    assert f"PID {pid}" in message, message
    assert HOST in message, message
    assert "state_dir" in message and "PostgreSQL" in message, message


def _start_holder(state: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_state_writer_is_refused_while_readers_work_and_sigkill_leaves_no_lock(
    tmp_path: Path,
) -> None:
    emulator = EmulatorProcess(
        tmp_path,
        emulator_settings(2_000, live_rows_per_sec=5, live_secs=900, visible_delay_secs=[0.2, 1.0]),
    ).start()
    try:
        config = collector_config(tmp_path, emulator.url, settle_delay_secs=2)
        state = tmp_path / "state"
        first = start_collector(config)
        try:
            _wait_for("the daemon's first delivery", lambda: count_output_lines(tmp_path) > 0)
            assert first.poll() is None, (tmp_path / "collector.log").read_text()[-2000:]

            # 1. The same config again, as `run --once`: refused at once, nothing started.
            # "At once" is checked as events, not as a duration: the daemon holds the lock
            # for as long as it runs, so a second process that waited for it would never
            # exit (run_collector's timeout ends it), and nothing of a run may appear.
            second = run_collector(config, "--once", timeout=60)
            _assert_refused(second, state, first.pid)
            assert "Collector started" not in second.stderr + second.stdout

            # ... and one with its own sink on the same state: it delivers nothing.
            other = tmp_path / "other"
            other.mkdir()
            other_config = collector_config(other, emulator.url, settle_delay_secs=2)
            data = yaml.safe_load(other_config.read_text())
            data["state_dir"] = str(state)
            other_config.write_text(yaml.safe_dump(data))
            refused = run_collector(other_config, "--once", timeout=60)
            _assert_refused(refused, state, first.pid)
            assert count_output_lines(other) == 0
            assert not (other / "out").exists()

            # 2. Read-only commands work beside the daemon.
            shown = cli(config, "state", "show", "--json")
            assert shown.returncode == 0, shown.stderr
            rows = orjson.loads(shown.stdout)
            assert any(r["lane"] == "live" and r["watermark"] for r in rows), rows
            table = cli(config, "state", "show")
            assert table.returncode == 0, table.stderr
            valid = cli(config, "validate")
            assert valid.returncode == 0, valid.stderr

            # 3. The other state writers are refused too, and change nothing.
            reset = cli(config, "state", "reset", "--all", "--yes")
            _assert_refused(reset, state, first.pid)
            assert "checkpoint(s) removed" not in reset.stdout
            start, end = now() - timedelta(hours=3), now() - timedelta(hours=2)
            backfill = cli(config, "backfill", "--from", iso(start), "--to", iso(end))
            _assert_refused(backfill, state, first.pid)
            after = orjson.loads(cli(config, "state", "show", "--json").stdout)
            assert any(r["lane"] == "live" and r["watermark"] for r in after), after
            assert not any(str(r["lane"]).startswith("backfill:") for r in after), after
            assert first.poll() is None, "the daemon stopped while the others were refused"
        finally:
            # 4. SIGKILL: the kernel drops the lock with the process; nothing stale is left.
            if first.poll() is None:
                kill(first)
        assert first.returncode == -signal.SIGKILL
        lock_text = (state / "lock").read_text(encoding="utf-8")
        assert str(first.pid) in lock_text  # the dead holder's record is still there...
        again = run_collector(config, "--once", timeout=300)
        assert again.returncode == 0, again.stderr[-2000:]  # ...and does not stop anyone
    finally:
        emulator.stop()


def test_state_show_on_a_state_dir_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    config = collector_config(tmp_path, "http://127.0.0.1:9")
    shown = cli(config, "state", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = orjson.loads(shown.stdout)
    assert [(r["stream"], r["lane"], r["watermark"]) for r in rows] == [
        ("message_trace", "—", None)
    ]
    assert "no state yet" in shown.stderr, shown.stderr
    assert not (tmp_path / "state").exists()


def test_state_show_only_reads(tmp_path: Path) -> None:
    """``state show`` neither migrates nor creates anything, and needs no lock.

    A database of schema 1 (an older collector's) is shown as it is: opening it to write
    would have upgraded it, dropping its dedup keys, under the feet of that collector.
    """
    import sqlite3

    from o365collector.state.sqlite import SqliteStateStore
    from o365collector.windows import TimeWindow

    config = collector_config(tmp_path, "http://127.0.0.1:9")
    state = tmp_path / "state"
    store = SqliteStateStore(state / "state.db")
    moment = now()
    store.commit_window(
        "itest", "message_trace", TimeWindow(moment - timedelta(minutes=1), moment), moment
    )
    store.remember("scope", [(b"key", "delivered", 2**40)])
    store.close()
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    holder = _start_holder(state)  # a writer holds the lock: show must not need it
    try:
        shown = cli(config, "state", "show", "--json")
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert shown.returncode == 0, shown.stderr
    rows = orjson.loads(shown.stdout)
    assert [r["lane"] for r in rows] == ["live"] and rows[0]["watermark"], rows
    with sqlite3.connect(state / "state.db") as db:
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        seen = db.execute("SELECT count(*) FROM seen").fetchone()
    assert (version[0], seen[0]) == ("1", 1), "state show wrote to the database"


def test_the_lock_module_between_processes(tmp_path: Path) -> None:
    from o365collector.errors import O365CollectorError, StateError
    from o365collector.state.lock import StateLockedError, state_lock

    state = tmp_path / "deep" / "state"  # created, parents too
    holder = _start_holder(state)
    try:
        record = orjson.loads((state / "lock").read_bytes())
        assert record["pid"] == holder.pid and record["host"] == HOST
        assert record["command"] == "holder" and record["started_at"]
        with pytest.raises(StateLockedError) as refused, state_lock(state, "probe"):
            pytest.fail("acquired a lock another process holds")
        assert isinstance(refused.value, StateError)
        assert isinstance(refused.value, O365CollectorError)
        message = str(refused.value)
        assert str(state) in message and f"PID {holder.pid}" in message and HOST in message
        assert "holder" in message and "another state_dir" in message and "PostgreSQL" in message
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(30) == 0
    # Released by a clean exit: this process takes it and records itself.
    with state_lock(state, "probe") as path:
        assert path == state / "lock"
        record = orjson.loads(path.read_bytes())
        assert record["pid"] == os.getpid() and record["command"] == "probe"
    # Released by SIGKILL too: the kernel drops a dead process's flock.
    holder = _start_holder(state)
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    with state_lock(state, "probe"):
        pass


def test_flock_conflicts_within_one_process_so_the_lock_nests_instead(tmp_path: Path) -> None:
    """flock belongs to an open file description: a second open in one process conflicts.

    ``state_lock`` therefore counts nested acquisitions of one directory in one process (the
    CLI holds it and the Collector it runs takes it again), and only those.
    """
    import fcntl

    from o365collector.state.lock import state_lock

    path = tmp_path / "raw.lock"
    with path.open("a") as first, path.open("a") as second:
        fcntl.flock(first.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(second.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    state = tmp_path / "state"
    with state_lock(state, "outer"), state_lock(state, "inner"):
        record = orjson.loads((state / "lock").read_bytes())
        assert record["command"] == "outer"
    with state_lock(state, "again"):  # released when the outer one ended
        pass
