"""Build the source of a configured stream from the catalog and the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from o365collector.config.model import CollectionSettings, EndpointSettings
from o365collector.config.streams import ConfiguredStream, DetailOptions, ReportOptions
from o365collector.http.client import ApiClient
from o365collector.sources.base import WindowSource
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.streams.catalog import CATALOG, ReportSpec

if TYPE_CHECKING:  # the Reporting web service's sources load only for its streams
    from o365collector.sources.reporting.source import ReportSource


@dataclass(frozen=True, slots=True)
class BuiltSource:
    """A stream's source and the RWS reports the tenant must offer for it to run."""

    source: WindowSource
    needs_reports: tuple[str, ...] = ()


def build_source(
    stream: ConfiguredStream,
    api: ApiClient,
    endpoints: EndpointSettings,
    collection: CollectionSettings,
) -> BuiltSource:
    """The source that reads ``stream`` for one tenant (its API client and endpoints)."""
    options = stream.options
    spec = stream.report
    if spec is not None and isinstance(options, ReportOptions):
        source = _report(spec, api, endpoints, collection, options.page_size)
        return BuiltSource(source, (spec.name,))
    if isinstance(options, DetailOptions):
        return _detail(options, api, endpoints, collection)
    return BuiltSource(_graph(api, endpoints, collection))


def _graph(
    api: ApiClient,
    endpoints: EndpointSettings,
    collection: CollectionSettings,
    stream: str = "message_trace",
) -> GraphMessageTraceSource:
    return GraphMessageTraceSource(
        api,
        graph_base=endpoints.graph_base(),
        scope=endpoints.scope_for_graph(),
        page_size=collection.page_size,
        max_pages=collection.max_pages_per_window,
        stream=stream,
    )


def _report(
    spec: ReportSpec,
    api: ApiClient,
    endpoints: EndpointSettings,
    collection: CollectionSettings,
    page_size: int,
) -> ReportSource:
    from o365collector.sources.reporting.source import ReportSource  # noqa: PLC0415

    return ReportSource(
        api,
        spec,
        base=endpoints.reporting_base(),
        scope=endpoints.scope_for_reporting(),
        page_size=page_size,
        max_pages=collection.max_pages_per_window,
    )


def _detail(
    options: DetailOptions,
    api: ApiClient,
    endpoints: EndpointSettings,
    collection: CollectionSettings,
) -> BuiltSource:
    from o365collector.sources.reporting.detail import (  # noqa: PLC0415
        DetailSource,
        GraphDetail,
        RwsDetail,
    )

    if options.api == "graph":
        graph = GraphDetail(
            api, graph_base=endpoints.graph_base(), scope=endpoints.scope_for_graph()
        )
        listing = _graph(api, endpoints, collection, "message_trace_detail")
        return BuiltSource(DetailSource(listing, graph, options.statuses))
    rows = _report(CATALOG["MessageTrace"], api, endpoints, collection, options.page_size)
    detail = _report(CATALOG["MessageTraceDetail"], api, endpoints, collection, 2000)
    source = DetailSource(rows, RwsDetail(detail), options.statuses)
    return BuiltSource(source, ("MessageTrace", "MessageTraceDetail"))
