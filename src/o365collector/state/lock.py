"""One state-writing process per state directory: an exclusive ``flock`` on ``{state_dir}/lock``.

``run``, ``backfill``, ``state reset`` and ``demo`` hold it for their whole life; a second
one is refused at once with :class:`StateLockedError`. The kernel drops a ``flock`` when
its holder's file is closed, which includes the process dying (even by SIGKILL), so no
stale lock survives a crash. What the file contains (the holder's PID, host, command and
start time, written once the lock is held) only serves to name the holder in the refusal:
it never decides who holds the lock. The file is never removed, since removing it would
let two processes lock two different files of the same name.

A ``flock`` belongs to an open file description, so a second ``open`` + ``flock`` of the
same file in one process conflicts with the first. The CLI takes the lock before it builds
the :class:`~o365collector.app.Collector`, which takes it again (for its other callers):
nested acquisitions of one directory in one process are counted instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from o365collector.errors import StateError, StateLockedError

LOCK_FILE = "lock"
_RECORD_WAIT_SECS = 0.5  # a new holder writes its record right after it gets the lock

_guard = threading.Lock()
_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, nesting depth)


@contextlib.contextmanager
def state_lock(state_dir: Path, command: str) -> Iterator[Path]:
    """Hold ``state_dir``'s exclusive lock for the ``with`` block; yield the lock file.

    ``state_dir`` is created (with its parents) if missing. ``command`` is recorded for a
    refused process to print.

    Raises:
        StateLockedError: another process holds the lock; the message names it and the fix.
        StateError: the directory or the lock file cannot be created or written.
    """
    path = _acquire(state_dir, command)
    try:
        yield path
    finally:
        _release(path)


def _acquire(state_dir: Path, command: str) -> Path:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir.resolve() / LOCK_FILE
    except OSError as exc:
        msg = f"cannot create state_dir {state_dir}: {exc}; check the path and its permissions"
        raise StateError(msg) from exc
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            return path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            msg = f"cannot open the lock file {path}: {exc}; check state_dir's permissions"
            raise StateError(msg) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_record(fd)
            os.close(fd)
            raise StateLockedError(_refusal(state_dir.absolute(), path, holder)) from None
        except OSError as exc:
            os.close(fd)
            msg = f"cannot lock {path}: {exc}; state_dir must be on a file system with flock"
            raise StateError(msg) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _record(command), 0)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot write the lock file {path}: {exc}") from exc
        _held[path] = (fd, 1)
        return path


def _release(path: Path) -> None:
    with _guard:
        fd, depth = _held[path]
        if depth > 1:
            _held[path] = (fd, depth - 1)
            return
        del _held[path]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a clean exit leaves no record; a crash leaves a stale one
        os.close(fd)  # drops the flock


def _record(command: str) -> bytes:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return (json.dumps(record) + "\n").encode()


def _read_record(fd: int) -> dict[str, Any] | None:
    """The holder's record, waiting briefly for one that has the lock but no record yet."""
    deadline = time.monotonic() + _RECORD_WAIT_SECS
    while True:
        try:
            record = json.loads(os.pread(fd, 4096, 0))
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and "pid" in record:
            return record
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _refusal(state_dir: Path, path: Path, holder: dict[str, Any] | None) -> str:
    if holder is None:
        who = f"another process holds its lock ({path}; it has not recorded its PID and host)"
    else:
        who = (
            f"o365collector {holder.get('command', '?')} holds its lock: "
            f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
            f"since {holder.get('started_at', '?')}"
        )
    return (
        f"state_dir {state_dir} is in use: {who}. Stop that process first, or give this one "
        "another state_dir; replicas cannot share one state_dir (replicas share state through "
        "the PostgreSQL backend: docs/scale-out.md)"
    )
