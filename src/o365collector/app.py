"""Composition root: turn Settings into running streams and sinks, and stop them cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from o365collector import __version__
from o365collector.clock import Clock, SystemClock
from o365collector.config.model import Settings, TenantSettings
from o365collector.config.streams import configured
from o365collector.errors import (
    ConfigError,
    LeaseLostError,
    SinkError,
    SourceError,
    StateError,
    UnavailableError,
)
from o365collector.http.auth import token_provider_for
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365collector.observability import metrics
from o365collector.observability.health import HealthServer, Readiness
from o365collector.observability.progress import Progress
from o365collector.observability.redact import redact
from o365collector.page_gate import PageGate
from o365collector.pipeline.dedup import Deduplicator
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.pipeline.lane import LaneContext
from o365collector.pipeline.stream import StreamIdentity, StreamWorker
from o365collector.planning.lanes import BandLane, Priority, WatermarkLane
from o365collector.planning.plan import stream_plan
from o365collector.scaleout.ownership import TenantOwnership, new_replica_id
from o365collector.scaleout.runs import TenantRuns
from o365collector.sinks.base import Sink
from o365collector.sinks.factory import build_sink
from o365collector.sources.factory import build_source
from o365collector.state.backend import open_leases, open_state
from o365collector.state.leases import Fence
from o365collector.state.lock import state_lock
from o365collector.state.resets import apply_configured_resets
from o365collector.state.store import StateStore
from o365collector.state.writer import StateWriter

if TYPE_CHECKING:
    from o365collector.sources.reporting.discovery import ServiceDocument

log = structlog.get_logger(__name__)

GRAPH_RETENTION_SECS = 90 * 86400


@dataclass
class RunResult:
    """How a run ended: one line per stream that failed for good."""

    failures: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every stream ended cleanly."""
        return 1 if self.failures else 0


@dataclass
class RunOptions:
    """Run-time switches that are not configuration."""

    once: bool = False
    shutdown_grace_secs: float = 30.0
    failure_retry_secs: float = 300.0
    install_signal_handlers: bool = True


HttpClientFactory = Callable[
    [TenantSettings, Settings, dict[Path | None, ssl.SSLContext]], httpx.AsyncClient
]
"""Builds one tenant's HTTP client: ``(tenant, settings, tls contexts shared by CA bundle)``."""


class Collector:
    """Everything one ``run`` needs, built from Settings."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        *,
        clock: Clock | None = None,
        progress: Progress | None = None,
        lanes: list[WatermarkLane | BandLane] | None = None,
        streams: set[str] | None = None,
        http_client_factory: HttpClientFactory | None = None,
        executor: Executor | None = None,
    ) -> None:
        """Build the collector; nothing runs until :meth:`run`.

        ``lanes`` replaces every stream's lanes (``backfill`` runs one bounded lane) and
        ``streams`` limits which configured streams run. The edges a caller may replace:
        ``clock`` (every wait, timestamp and budget window), ``http_client_factory`` (each
        tenant's HTTP client; default :func:`default_http_client`) and ``executor`` (where
        blocking file writes and state calls run, in the order they are made; default the
        event loop's thread pool for files and the state's own threads).
        """
        self.http_client_factory = http_client_factory or default_http_client
        self.executor = executor
        self.lanes = lanes
        self.streams = streams
        self.settings = settings
        self.options = options
        self.clock = clock or SystemClock()
        self.progress = progress or Progress()
        self.stop = asyncio.Event()
        self.result = RunResult()
        self.health: HealthServer | None = None
        self.gate = PageGate(settings.collection.max_pages_in_memory)  # every tenant's pages
        self.flights = PageGate(settings.collection.max_requests_in_flight)  # their requests
        self.ownership: TenantOwnership | None = None  # replicas sharing a PostgreSQL state
        # For the run summary: each tenant's request budget (its `used` counts requests)
        # and how long each (tenant, stream) ran, in seconds.
        self.budgets: dict[str, RequestBudget] = {}
        self.durations: dict[tuple[str, str], float] = {}

    async def run(self) -> RunResult:
        """Collect until stopped (or caught up with ``once``); drain, commit, close.

        Holds ``state_dir``'s lock throughout (see ``state.lock``; the CLI usually holds it
        already, and ``backfill`` relies on this one).

        Raises:
            StateLockedError: another process writes to the same ``state_dir``.
        """
        command = "run" if self.lanes is None else "backfill"
        with state_lock(self.settings.state_dir, command):
            return await self._run()

    async def _run(self) -> RunResult:
        settings = self.settings
        shared = settings.state.backend == "postgresql"  # replicas share tenants by lease
        fence = Fence(new_replica_id()) if shared else None
        async with contextlib.AsyncExitStack() as held:  # released in reverse order
            opened = open_state(settings, fence=fence)
            held.callback(opened.close)
            if fence is None:  # a replica applies a tenant's resets when it takes the tenant
                apply_configured_resets(settings, opened, self.clock.now())
            # Every later state call runs off the event loop, on as many threads as the
            # backend has connections (SQLite: one writer, and a thread for dedup lookups).
            store = StateWriter(
                opened, threads=settings.state.pool_size if shared else 1, executor=self.executor
            )
            held.callback(store.close)  # first: calls already started finish before the close
            self._install_signals()
            held.callback(self._remove_signals)
            runners = await self._start_sinks(held)
            await self._start_health(held, runners)
            workers = self._select(self._stream_workers(held, Dispatcher(runners), store), store)
            log.info(
                "Collector started.",
                version=__version__,
                tenants=len(settings.tenants),
                streams=len(workers),
                sinks=[r.sink.name for r in runners],
                once=self.options.once,
                replica=fence.replica_id if fence else None,
                state_dir=str(settings.state_dir.resolve()),
            )
            if fence is None and not workers and not self.options.once:
                log.warning("Nothing to collect: every tenant is disabled; idle until stopped.")
                await self.stop.wait()
            elif fence is None:
                await self._wait_for_workers(
                    [asyncio.create_task(self._supervise(w, self.stop)) for w in workers],
                    self.stop,
                )
            else:
                await self._run_replica(held, fence, opened, workers)
        log.info("Collector stopped.", failures=len(self.result.failures))
        return self.result

    async def _start_sinks(self, held: contextlib.AsyncExitStack) -> list[SinkRunner]:
        """Build, start and run every sink; ``held`` stops and closes them."""
        settings = self.settings
        dead_letter = DeadLetter(settings.state_dir / "dead-letter", self.clock)
        domains = {tenant.label: tenant.local_domains for tenant in settings.tenants}
        sinks = [
            build_sink(s, self.clock, executor=self.executor, local_domains=domains)
            for s in settings.sinks
        ]
        runners = [
            SinkRunner(
                sink,
                batch_max_events=cfg.batch_max_events,
                queue_max_batches=cfg.queue_max_batches,
                retry=settings.collection.retry,
                dead_letter=dead_letter,
                clock=self.clock,
                when_full=cfg.when_full,
                executor=self.executor,
            )
            for sink, cfg in zip(sinks, settings.sinks, strict=True)
        ]
        held.push_async_callback(_close_sinks, sinks)
        for sink in sinks:
            await sink.start()
        tasks = [asyncio.create_task(r.run()) for r in runners]
        held.push_async_callback(_cancel, tasks)
        return runners

    async def _start_health(
        self, held: contextlib.AsyncExitStack, runners: list[SinkRunner]
    ) -> None:
        """Serve health and metrics, when configured; ``held`` closes the server."""
        health = self._health_server(runners)
        if health is None:
            return
        held.push_async_callback(health.close)
        await health.start()
        self.health = health

    def _stream_workers(
        self, held: contextlib.AsyncExitStack, dispatcher: Dispatcher, store: StateWriter
    ) -> list[StreamWorker]:
        """Every tenant's stream workers, each tenant with its HTTP client (closed by ``held``)."""
        tls: dict[Path | None, ssl.SSLContext] = {}
        workers: list[StreamWorker] = []
        for tenant in self.settings.tenants:
            if not tenant.enabled:
                log.warning(
                    "Tenant disabled (enabled: false): nothing is collected from it.",
                    tenant=tenant.label,
                )
                continue
            client = self.http_client_factory(tenant, self.settings, tls)
            held.push_async_callback(client.aclose)
            workers.extend(self._tenant_workers(tenant, client, dispatcher, store))
        return workers

    def _select(self, workers: list[StreamWorker], store: StateWriter) -> list[StreamWorker]:
        """Apply the ``streams`` filter and the ``lanes`` override (see ``__init__``)."""
        chosen = [w for w in workers if self.streams is None or w.id.stream in self.streams]
        if self.streams is not None and not chosen:
            msg = f"no configured stream is named {', '.join(sorted(self.streams))}"
            raise ConfigError(msg)
        if self.lanes is None:
            return chosen
        return [
            StreamWorker(w.ctx, store, dataclasses.replace(w.plan, lanes=self.lanes))
            for w in chosen
        ]

    def _health_server(self, runners: list[SinkRunner]) -> HealthServer | None:
        cfg = self.settings.observability
        address = cfg.address()
        if address is None:
            return None
        readiness = Readiness(
            self.progress,
            lambda: [(r.sink.name, r.failing_since) for r in runners],
            self.clock,
            max_lag_secs=cfg.readiness_max_lag_secs,
            max_sink_failure_secs=cfg.readiness_max_sink_failure_secs,
            more_problems=self._lease_problems,
        )
        return HealthServer(address[0], address[1], readiness)

    def _lease_problems(self) -> list[str]:
        """A replica whose leases were not renewed for a lease period is not ready."""
        ownership = self.ownership
        if ownership is None or ownership.status.last_renewal is None:
            return []
        age = self.clock.monotonic() - ownership.status.last_renewal
        if age <= ownership.lease_secs:
            return []
        reason = f": {ownership.status.error}" if ownership.status.error else ""
        return [f"tenant leases not renewed for {age:.0f} s{reason}"]

    def _tenant_workers(
        self,
        tenant: TenantSettings,
        client: httpx.AsyncClient,
        dispatcher: Dispatcher,
        store: StateWriter,
    ) -> list[StreamWorker]:
        collection = self.settings.collection
        tokens = token_provider_for(tenant, client, self.clock)
        budget = RequestBudget(
            tenant.budget.requests,
            tenant.budget.window_secs,
            self.clock,
            reserve_share=tenant.budget.reserve_share,
            background_priority=Priority.FINAL,
            per_second=tenant.budget.requests_per_second,
        )
        self.budgets[tenant.label] = budget
        api = ApiClient(
            client,
            tokens,
            budget,
            collection.retry,
            self.clock,
            tenant.label,
            self.gate,
            self.flights,
        )
        discovery: ServiceDocument | None = None  # one per tenant, for its RWS streams only
        workers: list[StreamWorker] = []
        for entry in tenant.streams:
            stream = configured(entry)
            name = str(stream)
            plan = stream_plan(collection, stream)
            built = build_source(stream, api, tenant.endpoints, collection)
            identity = StreamIdentity(tenant.label, tenant.tenant_id, name)
            dedup = Deduplicator(
                store,
                tenant=tenant.label,
                tenant_id=tenant.tenant_id,
                stream=name,
                keep_secs=plan.remember_secs,
                shared=any(lane.name != "final" for lane in plan.lanes),
            )
            ctx = LaneContext(
                identity,
                built.source,
                dispatcher,
                dedup,
                self.clock,
                self.progress.stream(tenant.label, name),
            )
            if built.needs_reports:
                # The Reporting web service's modules (and its XML parser) load only here.
                from o365collector.pipeline.offered import OfferedReportWorker  # noqa: PLC0415
                from o365collector.sources.reporting.discovery import (  # noqa: PLC0415
                    ServiceDocument,
                )

                if discovery is None:
                    discovery = ServiceDocument(
                        api,
                        base=tenant.endpoints.reporting_base(),
                        scope=tenant.endpoints.scope_for_reporting(),
                        clock=self.clock,
                    )
                workers.append(
                    OfferedReportWorker(
                        ctx, store, plan, discovery=discovery, reports=built.needs_reports
                    )
                )
            else:
                workers.append(StreamWorker(ctx, store, plan))
        return workers

    async def _run_replica(
        self,
        held: contextlib.AsyncExitStack,
        fence: Fence,
        opened: StateStore,
        workers: list[StreamWorker],
    ) -> None:
        """Collect the tenants this replica holds a lease on (see ``scaleout``)."""
        leases = open_leases(self.settings)
        held.callback(leases.close)
        by_tenant: dict[str, list[StreamWorker]] = {}
        for worker in workers:
            by_tenant.setdefault(worker.id.tenant, []).append(worker)

        async def run_tenant(tenant: str, stop: asyncio.Event, takeover: bool) -> None:
            await asyncio.to_thread(
                apply_configured_resets, self.settings, opened, self.clock.now(), tenant=tenant
            )
            mine = by_tenant.get(tenant, [])
            for worker in mine:
                worker.progress.state = "starting"
                worker.after_takeover = takeover
            try:
                await self._wait_for_workers(
                    [asyncio.create_task(self._supervise(w, stop)) for w in mine], stop
                )
            finally:
                for worker in mine:
                    worker.progress.state = "elsewhere"

        ownership = TenantOwnership(
            leases,
            fence,
            list(by_tenant),
            TenantRuns(run_tenant),
            self.clock,
            lease_secs=self.settings.state.lease_secs,
        )
        self.ownership = ownership
        for worker in workers:
            worker.progress.state = "elsewhere"
        if self.options.once:
            await ownership.run_once()
        else:
            await ownership.run(self.stop)

    async def _supervise(self, worker: StreamWorker, stop: asyncio.Event) -> None:
        """Run one stream; a permanent failure is reported and, as a daemon, retried later.

        A replica whose lease on the tenant moved on (it was paused or cut off) stops the
        stream: its state writes are refused, and the new owner resumes from the last
        checkpoint.
        """
        started = self.clock.monotonic()
        try:
            await self._run_stream(worker, stop)
        except LeaseLostError as exc:
            log.warning(
                "Stream stopped: its tenant's lease moved to another replica.",
                tenant=worker.id.tenant,
                stream=worker.id.stream,
                reason=str(exc),
            )
        except Exception as exc:  # noqa: BLE001 - any other error ends the run, said once
            await self._fail_run(worker, exc)
        finally:
            key = (worker.id.tenant, worker.id.stream)
            self.durations[key] = self.durations.get(key, 0.0) + (self.clock.monotonic() - started)

    async def _fail_run(self, worker: StreamWorker, exc: Exception) -> None:
        """A stream stopped on an error no retry fixes (state or dead letters unwritable, a
        bug): stop every stream, so the process exits 1 and a supervisor restarts it from
        the last checkpoint, rather than running on with one stream silently dead.
        """
        reason = redact(str(exc)) or type(exc).__name__
        fields = {"tenant": worker.id.tenant, "stream": worker.id.stream, "error": reason}
        if isinstance(exc, (StateError, SinkError)):
            log.error("Stream stopped; stopping the collector.", **fields)
        else:  # not foreseen: its kind helps (no traceback: its text is not redacted)
            log.error("Stream crashed; stopping the collector.", kind=type(exc).__name__, **fields)
        self._count_failure(worker, reason)
        self.stop.set()
        with contextlib.suppress(Exception):  # `state show` says it (unless the state failed)
            await self._mark_failed(worker, reason)

    async def _mark_failed(self, worker: StreamWorker, reason: str) -> None:
        """Show ``worker``'s stream as failed: progress, ``stream_up`` and its stored status."""
        worker.progress.state = "failed"
        worker.progress.error = reason
        metrics.STREAM_UP.labels(tenant=worker.id.tenant, stream=worker.id.stream).set(0)
        await worker.store.set_status(
            worker.id.tenant, worker.id.stream, "failed", reason, self.clock.now()
        )

    def _count_failure(self, worker: StreamWorker, reason: str) -> None:
        """The run's result line for a stream that failed for good."""
        self.result.failures.append(
            f"tenant {worker.id.tenant}, stream {worker.id.stream}: {reason}"
        )

    async def _run_stream(self, worker: StreamWorker, stop: asyncio.Event) -> None:
        while True:
            try:
                await worker.run(stop, once=self.options.once)
            except SourceError as exc:
                reason = redact(str(exc))
                kind = "unavailable" if isinstance(exc, UnavailableError) else type(exc).__name__
                metrics.ERRORS.labels(stage="receiving", error_type=kind).inc()
                await self._mark_failed(worker, reason)
                log.error(
                    "Stream failed.",
                    tenant=worker.id.tenant,
                    stream=worker.id.stream,
                    error=reason,
                )
                if self.options.once:
                    self._count_failure(worker, reason)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.options.failure_retry_secs)
                if stop.is_set():
                    return
                continue
            return

    async def _wait_for_workers(self, tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
        pending: set[asyncio.Task[Any]] = set(tasks)
        stop_wait: asyncio.Task[Any] = asyncio.create_task(stop.wait())
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stop_wait)
                if stop_wait in done:
                    break
            if pending:
                log.info("Stopping: draining pages already read.", streams=len(pending))
                _, late = await asyncio.wait(pending, timeout=self.options.shutdown_grace_secs)
                for task in late:
                    task.cancel()
                if late:
                    log.warning(
                        "Stop deadline passed; unacknowledged pages will be read again.",
                        streams=len(late),
                    )
                await asyncio.gather(*late, return_exceptions=True)
        finally:
            stop_wait.cancel()

    def _install_signals(self) -> None:
        if not self.options.install_signal_handlers:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal(sig))

    def _on_signal(self, sig: signal.Signals) -> Callable[[], None]:
        def handler() -> None:
            if self.stop.is_set():
                log.warning("Second stop signal; exiting without waiting.", signal=sig.name)
                raise SystemExit(130)
            log.info("Stop requested; finishing pages in flight.", signal=sig.name)
            self.stop.set()

        return handler

    def _remove_signals(self) -> None:
        if not self.options.install_signal_handlers:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def default_http_client(
    tenant: TenantSettings,
    settings: Settings,
    tls: dict[Path | None, ssl.SSLContext] | None = None,
) -> httpx.AsyncClient:
    """The tenant's HTTP client; ``tls`` shares one TLS context per CA bundle across tenants.

    Each context holds the parsed CA certificates (~0.5 MiB for certifi's): one per tenant
    grew memory with the number of tenants.
    """
    tls = {} if tls is None else tls
    verify = tls.get(tenant.ca_bundle)
    if verify is None:
        if tenant.ca_bundle is None:
            verify = httpx.create_ssl_context()
        else:
            verify = ssl.create_default_context(cafile=str(tenant.ca_bundle))
        tls[tenant.ca_bundle] = verify
    timeout = settings.collection.retry.request_timeout_secs
    return httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        headers={"User-Agent": f"o365collector/{__version__}"},
        follow_redirects=False,
    )


async def _close_sinks(sinks: list[Sink]) -> None:
    """Close every sink; one that fails to close does not keep the others open."""
    for sink in sinks:
        with contextlib.suppress(Exception):
            await sink.close()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
