"""Stream probes: read one tiny window of a stream through the collector's own source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from o365collector.check.translate import Api
from o365collector.clock import Clock
from o365collector.config.model import CollectionSettings, TenantSettings
from o365collector.config.streams import DetailOptions, ReportOptions, configured
from o365collector.errors import SetupError
from o365collector.http.client import ApiClient
from o365collector.sources.factory import build_source
from o365collector.sources.reporting.discovery import ServiceDocument
from o365collector.streams.catalog import GRAPH_MESSAGE_TRACE, RWS_PREFIX
from o365collector.windows import TimeWindow, floor_second

PROBE_WINDOW_SECS = 60.0
PROBE_LAG = timedelta(minutes=5)  # well before now: Graph refuses an end in the future


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What a probe needs: the tenant, its API client (budget, retries) and the clock."""

    tenant: TenantSettings
    api: ApiClient
    collection: CollectionSettings
    clock: Clock

    def window(self, length_secs: float) -> TimeWindow:
        """A window of ``length_secs`` ending at least five minutes ago, on its own multiple.

        Aligning the end lets an aggregated report's probe read exactly one whole bucket.
        """
        end = floor_second(self.clock.now()) - PROBE_LAG
        step = timedelta(seconds=length_secs)
        end -= timedelta(seconds=end.timestamp() % length_secs)
        return TimeWindow(end - step, end)


def api_of(stream: str) -> Api | None:
    """The API a stream reads; None for a stream ``check`` does not know."""
    options = configured(stream).options
    if isinstance(options, DetailOptions):
        return "graph" if options.api == "graph" else "reporting"
    if stream == GRAPH_MESSAGE_TRACE:
        return "graph"
    if stream.startswith(RWS_PREFIX):
        return "reporting"
    return None


async def probe_stream(ctx: StreamContext, stream: str) -> str:
    """Read the first page of a tiny window of ``stream`` (one page of one row for Graph).

    An RWS stream first needs its reports in the tenant's service document. A detail
    stream is probed through its listing, so the probe never spends detail requests.

    Raises:
        SetupError: the tenant does not offer a report the stream reads.
        SourceError: whatever the source raises (credentials, permissions, quota, network).
    """
    stream = configured(stream)
    options = stream.options
    if isinstance(options, DetailOptions):
        listing = GRAPH_MESSAGE_TRACE if options.api == "graph" else f"{RWS_PREFIX}MessageTrace"
        return await probe_stream(ctx, listing)
    endpoints = ctx.tenant.endpoints
    collection = ctx.collection.model_copy(update={"page_size": 1, "max_pages_per_window": 1})
    built = build_source(stream, ctx.api, endpoints, collection)
    if built.needs_reports:
        discovery = ServiceDocument(
            ctx.api,
            base=endpoints.reporting_base(),
            scope=endpoints.scope_for_reporting(),
            clock=ctx.clock,
        )
        offered = await discovery.offered()
        missing = [name for name in built.needs_reports if name.lower() not in offered]
        if missing:
            msg = f"the tenant's RWS service document does not list {', '.join(missing)}"
            raise SetupError(msg)
    spec = stream.report
    length = PROBE_WINDOW_SECS
    if spec is not None and isinstance(options, ReportOptions) and spec.aggregated:
        length = spec.bucket_secs or 86400.0
    window = ctx.window(length)
    async for page in built.source.pages(window, None):  # the first page is enough
        return f"read {len(page.records)} record(s) of window {window}"
    return f"window {window} answered no page"
