"""JSON-lines file sink: append, flush and fsync before acknowledging; rotate by size."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

from o365collector.clock import Clock, SystemClock
from o365collector.config.sinks import PayloadKind
from o365collector.errors import SinkError
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult
from o365collector.sinks.encode import Payload, delivered_at, lines
from o365collector.sinks.probe import ProbeError

_PROBE_PREFIX = ".o365collector-check-"


class JsonlSink:
    """Writes one JSON event per line to ``path``; ``path.1`` … ``path.N`` hold older files.

    A batch is acknowledged only after it was written, flushed and fsynced, so an
    acknowledged event survives a crash of the collector or of the machine. No file grows
    past ``max_bytes``: a batch that does not fit is split at line boundaries across
    rotations; only a single line longer than ``max_bytes`` exceeds it, alone in its file.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        max_bytes: int,
        keep_files: int,
        payload: Payload | PayloadKind = "envelope",
        clock: Clock | None = None,
        executor: Executor | None = None,
    ) -> None:
        """Configure the sink; nothing is opened before :meth:`start`.

        ``clock`` stamps ``delivered_at``; ``executor`` runs the blocking writes (``None``:
        the event loop's default thread pool).
        """
        self.clock = clock or SystemClock()
        self.executor = executor
        self.name = name
        self.payload = Payload.of(payload)
        self.path = path
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self._file: BinaryIO | None = None
        self._size = 0

    async def start(self) -> None:
        """Create the folder and open the file for appending."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            msg = f"sink {self.name}: cannot open {self.path} for writing ({exc.strerror})"
            raise SinkError(msg) from exc

    async def probe(self) -> str:
        """For ``check``: the folder takes a new file and ``path`` opens for appending.

        A temporary file is created in the folder and removed (a temporary folder in the
        nearest existing parent when the folder does not exist yet, as :meth:`start`
        creates it); an existing ``path`` is opened for appending and closed unchanged.

        Raises:
            ProbeError: the folder or the file cannot be written (``sink_unwritable``).
        """
        return await asyncio.to_thread(self._probe)

    def _probe(self) -> str:
        path, folder = self.path, self.path.parent
        change = "or change path"
        if not folder.is_dir():
            existing = folder
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir():
                detail = f"cannot create folder {folder}: {existing} is not a folder"
                raise ProbeError(detail, f"fix path: {existing} is a file", "sink_unwritable")
            try:
                Path(tempfile.mkdtemp(prefix=_PROBE_PREFIX, dir=existing)).rmdir()
            except OSError as exc:
                detail = f"cannot create folder {folder} in {existing} ({exc.strerror})"
                fix = f"create {folder} and let the collector's user write to it, {change}"
                raise ProbeError(detail, fix, "sink_unwritable") from exc
            return (
                f"{folder} does not exist yet and can be created in {existing} (a temporary "
                "folder was created there and removed)"
            )
        try:
            handle, temp = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=folder)
            os.close(handle)
            Path(temp).unlink()
        except OSError as exc:
            detail = f"cannot create a file in {folder} ({exc.strerror})"
            fix = f"let the collector's user write to {folder} (rotation creates files), {change}"
            raise ProbeError(detail, fix, "sink_unwritable") from exc
        made = f"{folder} takes new files (a temporary file was created and removed)"
        if not path.exists():
            return f"{made}; {path.name} will be created there"
        if not path.is_file():
            detail = f"{path} exists and is not a file"
            raise ProbeError(detail, f"give path a file name, {change}", "sink_unwritable")
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            detail = f"cannot open {path} for appending ({exc.strerror})"
            fix = f"let the collector's user write to {path}, {change}"
            raise ProbeError(detail, fix, "sink_unwritable") from exc
        return f"{made}; {path} opens for appending"

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Append the batch durably; an OS error means retry (disk full, permissions)."""
        data, rejected = lines(events, self.payload, delivered_at(self.clock))
        try:
            if self.executor is None:
                await asyncio.to_thread(self._write, data)
            else:
                await asyncio.get_running_loop().run_in_executor(self.executor, self._write, data)
        except OSError as exc:
            return DeliveryResult.retry(f"write to {self.path} failed: {exc.strerror}")
        return DeliveryResult.reject(rejected) if rejected else DeliveryResult.delivered()

    async def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> None:
        _drop_partial_line(self.path)
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def _write(self, data: bytes | bytearray) -> None:
        """Write ``data`` (whole lines) in parts that keep every file within ``max_bytes``.

        Each part is flushed and fsynced before the next, so a crash between parts leaves
        whole lines only; the batch is acknowledged after the last part.
        """
        if self._file is None:
            self._open()
        view = memoryview(data)
        start = 0
        try:
            while start < len(data):
                end = self._part_end(data, start)
                if end is None:
                    self._rotate()
                    continue
                self._append(view[start:end])
                start = end
        except OSError:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """After a failed write: drop the open file and the bytes the failed part left.

        The batch is sent again, so what the failed part wrote (part of a line, or whole
        lines before the disk filled) is cut back to the last size written in full, and
        the file object is dropped with any bytes still buffered in it, which would
        otherwise reach the file later beside the batch sent again. The next write opens
        ``path`` anew: a file moved away or replaced to free space is not written through
        the old descriptor any more.
        """
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()  # its buffer is flushed if it can be, and cut just below
        with contextlib.suppress(OSError):
            if self.path.is_file() and self.path.stat().st_size > self._size:
                os.truncate(self.path, self._size)

    def _part_end(self, data: bytes | bytearray, start: int) -> int | None:
        """Where the part of ``data`` from ``start`` that fits the current file ends.

        ``None`` means nothing fits: rotate first. A line longer than ``max_bytes`` is
        the whole part, written alone into an empty file.
        """
        room = self.max_bytes - self._size
        if len(data) - start <= room:
            return len(data)
        cut = data.rfind(b"\n", start, start + room) if room > 0 else -1
        if cut >= 0:
            return cut + 1
        if self._size:
            return None
        newline = data.find(b"\n", start)
        return len(data) if newline < 0 else newline + 1

    def _append(self, part: memoryview) -> None:
        file = self._file
        assert file is not None
        file.write(part)
        file.flush()
        os.fsync(file.fileno())
        self._size += len(part)

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for index in range(self.keep_files - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        dropped = self.path.with_name(f"{self.path.name}.{self.keep_files + 1}")
        dropped.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        self._open()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_partial_line(path: Path) -> None:
    """Cut an unacknowledged partial last line left by a crash in the middle of a write.

    Only bytes after the last newline are removed: a batch is acknowledged after its final
    newline was fsynced, so those bytes were never acknowledged and will be sent again.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with path.open("r+b") as file:
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        chunk = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - chunk)
            file.seek(start)
            data = file.read(end - start)
            cut = data.rfind(b"\n")
            if cut >= 0:
                file.truncate(start + cut + 1)
                break
            end = start
        else:
            file.truncate(0)
        file.flush()
        os.fsync(file.fileno())
