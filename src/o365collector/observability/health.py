"""``/metrics``, ``/healthz``, ``/readyz`` and the ``/`` status page on a small asyncio server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from o365collector.clock import Clock
from o365collector.observability import metrics
from o365collector.observability.progress import Progress
from o365collector.observability.status_page import DeliveryTracker, gather, render

log = structlog.get_logger(__name__)

_MAX_REQUEST_BYTES = 8192  # the stream limit: a longer request head is refused
# The status page runs no script and loads nothing: the browser is told so.
_SAFE_HEADERS = (
    "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n"
)


@dataclass
class Readiness:
    """Decides readiness: every stream fresh enough and not failed, every sink delivering."""

    progress: Progress
    sink_failing_since: Callable[[], Sequence[tuple[str, float | None]]]
    clock: Clock
    max_lag_secs: float
    max_sink_failure_secs: float
    more_problems: Callable[[], list[str]] = list  # e.g. tenant leases not renewed

    def problems(self) -> list[str]:
        """Why the collector is not ready (empty when it is).

        A stream whose tenant another replica collects (state ``elsewhere``) is not this
        replica's to judge.
        """
        now: datetime = self.clock.now()
        found = self.more_problems()
        for p in self.progress.streams.values():
            if p.state == "elsewhere":
                continue
            if p.state == "failed":
                found.append(f"{p.tenant}/{p.stream}: failed: {p.error}")
            elif p.watermark is not None:
                lag = (now - p.watermark).total_seconds()
                if lag > self.max_lag_secs:
                    found.append(
                        f"{p.tenant}/{p.stream}: lag {lag:.0f} s > {self.max_lag_secs:.0f} s"
                    )
        monotonic = self.clock.monotonic()
        for name, since in self.sink_failing_since():
            if since is not None and monotonic - since > self.max_sink_failure_secs:
                found.append(f"sink {name}: failing for {monotonic - since:.0f} s")
        return found


class HealthServer:
    """Serves the endpoints until closed. Bind to loopback unless exposed on purpose."""

    def __init__(self, host: str, port: int, readiness: Readiness) -> None:
        """Configure; :meth:`start` listens."""
        self.host = host
        self.port = port
        self.readiness = readiness
        self.tracker = DeliveryTracker(readiness.progress, readiness.clock)
        self._server: asyncio.Server | None = None
        self._sampler: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen (``port`` 0 picks a free port, readable from :attr:`port` afterwards)."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=_MAX_REQUEST_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sampler = asyncio.create_task(self.tracker.run())
        log.info("Health and metrics endpoints listening.", address=f"{self.host}:{self.port}")

    async def close(self) -> None:
        """Stop listening."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            path = head.split(b" ", 2)[1].decode("ascii", "replace").split("?", 1)[0]
            status, ctype, body = self._route(path)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
            IndexError,
        ):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}
        writer.write(
            f"HTTP/1.1 {status} {reason[status]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{_SAFE_HEADERS}\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def status_page(self) -> str:
        """The ``/`` page as of now."""
        self.tracker.sample()
        readiness = self.readiness
        return render(
            gather(
                readiness.progress,
                readiness.clock,
                self.tracker,
                problems=readiness.problems(),
                sinks=readiness.sink_failing_since(),
            )
        )

    def _route(self, path: str) -> tuple[int, str, bytes]:
        if path == "/":
            return 200, "text/html; charset=utf-8", self.status_page().encode()
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(metrics.REGISTRY)
        if path == "/healthz":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            problems = self.readiness.problems()
            body = orjson.dumps({"ready": not problems, "problems": problems})
            return (503 if problems else 200), "application/json", body + b"\n"
        return 404, "text/plain", b"not found\n"
