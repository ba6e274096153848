"""Issue 16's cost: CPU per event that ECS and OCSF normalization add, for every stream.

Every document is made by the sinks' dispatcher, ``Normalizer("ecs" | "ocsf")`` with the
local domains of tenant ``contoso``, and timed in this process with its CPU clock:

- ``raw``: ``orjson.dumps`` of the record (what the sinks spend on ``format: raw``);
- ``ecs`` / ``ocsf``: ``Normalizer.document``, then ``orjson.dumps`` of the document; the
  figure is normalization's own share (the pass minus ``raw`` of the same rows).

Two sets of rows:

- message trace rows made here, as Graph and as RWS send them (statuses, domains, IPs and
  sizes varied): the main figure, held to issue 16's target;
- the emulator's rows of every stream (message trace, every report, message trace detail
  from Graph and from RWS), read in-process by the collector's own sources on a virtual
  clock (``bench.simulate``'s loop and transport), so the records have the shape the
  collector receives. Small reports are repeated to make a batch; shown as figures.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from bench.common import CLIENT_ID, SECRET, tenant_id, tenant_spec
from bench.results import Context, Report, bench_command
from bench.simulate import HOST, EmulatorTransport, VirtualClock, VirtualLoop
from o365collector.config.model import RetrySettings
from o365collector.event import Event, StreamIds
from o365collector.http.auth import TokenProvider
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365collector.normalize.normalizer import Normalizer
from o365collector.sources.base import Page
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.reporting.detail import DetailSource, GraphDetail, RwsDetail
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG, GRAPH_MESSAGE_TRACE, RWS_PREFIX
from o365collector.windows import TimeWindow
from o365emulator import Emulator, settings_from_mapping
from o365emulator.reporting_registry import REPORTS

NAME = "normalize"
TARGET_US = 5.0
STATUSES = ["Delivered", "Failed", "Pending", "Expanded", "Quarantined", "FilteredAsSpam"]
TENANT = "contoso"
DOMAINS = {TENANT: ("contoso.com",)}
ANCHOR = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow(ANCHOR - timedelta(days=2), ANCHOR)
DETAIL_STATUSES = ("delivered", "failed", "quarantined", "filteredAsSpam", "pending", "expanded")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
RWS_PATH = "/ecp/reportingwebservice/reporting.svc"
LISTED = sorted(set(REPORTS) - {"MessageTrace", "MessageTraceDetail"})


def _graph_row(index: int, received: datetime) -> dict[str, Any]:
    return {
        "id": f"4c0d2e1a-{index:08d}-4b1e-9c3a-0f2e1d3c4b5a",
        "messageId": f"<msg{index}@mail.example.com>",
        "receivedDateTime": received.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "senderAddress": f"sender{index % 97}@{'contoso.com' if index % 3 else 'outside.org'}",
        "recipientAddress": f"user{index % 89}@{'contoso.com' if index % 2 else 'fabrikam.net'}",
        "subject": f"Quarterly report {index}",
        "size": 1000 + index % 50_000,
        "status": STATUSES[index % len(STATUSES)].lower(),
        "fromIP": f"10.{index % 250}.{index % 7}.{index % 200 + 1}",
        "toIP": "" if index % 4 else "2001:db8::1",
    }


def _rws_row(graph: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "Organization": "contoso.onmicrosoft.com",
        "MessageId": graph["messageId"],
        "Received": graph["receivedDateTime"].rstrip("Z")[:27],
        "SenderAddress": graph["senderAddress"],
        "RecipientAddress": graph["recipientAddress"],
        "Subject": graph["subject"],
        "Status": STATUSES[index % len(STATUSES)],
        "ToIP": graph["toIP"] or None,
        "FromIP": graph["fromIP"],
        "Size": graph["size"],
        "MessageTraceId": graph["id"],
        "StartDate": "2026-12-01T00:00:00Z",
        "EndDate": "2026-12-02T00:00:00Z",
        "Index": index,
    }


def events(count: int) -> tuple[list[Event], list[Event]]:
    """``count`` message trace rows, as Graph events and as the RWS events of the same rows."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    graph, rws = [], []
    for index in range(count):
        row = _graph_row(index, start + timedelta(seconds=index))
        graph.append(Event(TENANT, GRAPH_MESSAGE_TRACE, f"{index:064x}", row))
        rws.append(
            Event(TENANT, RWS_PREFIX + "MessageTrace", f"{index:064x}", _rws_row(row, index))
        )
    return graph, rws


async def _read(stream: str, pages: AsyncIterator[Page]) -> list[Event]:
    ids = StreamIds(tenant_id(0), stream)
    out: list[Event] = []
    async for page in pages:
        for key, record in zip(ids.event_ids(page.facts), page.records, strict=True):
            out.append(Event(TENANT, stream, key, record))
        page.permit.release()
    return out


async def _served(api: ApiClient) -> dict[str, list[Event]]:
    base = f"http://{HOST}"

    def report(name: str) -> ReportSource:
        return ReportSource(api, CATALOG[name], base=base + RWS_PATH, scope=EXCHANGE_SCOPE)

    def graph() -> GraphMessageTraceSource:
        return GraphMessageTraceSource(
            api, graph_base=base, scope=GRAPH_SCOPE, page_size=500, max_pages=1000
        )

    served = {GRAPH_MESSAGE_TRACE: await _read(GRAPH_MESSAGE_TRACE, graph().pages(WINDOW, None))}
    for name in ["MessageTrace", *LISTED]:
        served[RWS_PREFIX + name] = await _read(RWS_PREFIX + name, report(name).pages(WINDOW, None))
    details = {
        "message_trace_detail (Graph)": DetailSource(
            graph(), GraphDetail(api, graph_base=base, scope=GRAPH_SCOPE), DETAIL_STATUSES
        ),
        "message_trace_detail (RWS)": DetailSource(
            report("MessageTrace"), RwsDetail(report("MessageTraceDetail")), DETAIL_STATUSES
        ),
    }
    for label, source in details.items():
        served[label] = await _read("message_trace_detail", source.pages(WINDOW, None))
    return served


def emulator_events(rows: int) -> dict[str, list[Event]]:
    """Stream label → the emulator's events of two days (``rows`` message trace rows).

    The virtual clock stands three days after the anchor: every status final, every
    report bucket settled.
    """
    spec = {"seed": 11, "anchor": ANCHOR.isoformat(), "rws_aggregate_delay_secs": 600.0}
    emulator_settings = settings_from_mapping({**spec, "tenants": [tenant_spec(0, rows)]})
    loop = VirtualLoop()
    clock = VirtualClock(loop, ANCHOR + timedelta(days=3))
    transport = EmulatorTransport(Emulator(emulator_settings, clock=clock.now), clock)

    async def read() -> dict[str, list[Event]]:
        async with httpx.AsyncClient(transport=transport) as http:
            tokens = TokenProvider(
                http,
                authority=f"http://{HOST}",
                tenant_id=tenant_id(0),
                client_id=CLIENT_ID,
                client_secret=SecretStr(SECRET),
                clock=clock,
            )
            retry = RetrySettings(
                initial_interval_secs=1.0,
                multiplier=2.0,
                max_interval_secs=4.0,
                max_elapsed_secs=30.0,
            )
            budget = RequestBudget(1_000_000, 300.0, clock)
            return await _served(ApiClient(http, tokens, budget, retry, clock, "bench"))

    try:
        return loop.run_until_complete(read())
    finally:
        loop.close()


def cpu_us_per_event(batch: list[Event], encode: Callable[[Event], bytes], rounds: int) -> float:
    """The least CPU microseconds per event of ``rounds`` passes of ``encode`` over ``batch``."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for event in batch:
            encode(event)
        best = min(best, time.process_time() - began)
    return best / len(batch) * 1e6


def run(ctx: Context) -> Report:
    """Time raw, ECS and OCSF encoding of made-up message trace rows and emulator rows."""
    count, rounds, rows, batch_size = (
        (2_000, 2, 200, 500) if ctx.smoke else (20_000, 5, 2_000, 5_000)
    )
    graph, rws = events(count)
    began = time.monotonic()
    served = emulator_events(rows)
    read_secs = time.monotonic() - began
    dumps = orjson.dumps
    ecs_doc = Normalizer("ecs", local_domains=DOMAINS).document
    ocsf_doc = Normalizer("ocsf", local_domains=DOMAINS).document
    encoders: list[tuple[str, Callable[[Event], bytes]]] = [
        ("ECS", lambda event: dumps(ecs_doc(event))),
        ("OCSF", lambda event: dumps(ocsf_doc(event))),
    ]

    def raw(event: Event) -> bytes:
        return dumps(event.record)

    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    for label, batch in (("Graph", graph), ("RWS", rws)):
        base = cpu_us_per_event(batch, raw, rounds)
        report.add(f"{label} rows, raw (orjson.dumps of the record)", f"{base:.2f} µs/event")
        for fmt, encode in encoders:
            total = cpu_us_per_event(batch, encode, rounds)
            extra = total - base
            report.add(
                f"{label} rows, {fmt}: CPU added by normalization",
                f"{extra:.1f} µs/event ({total:.1f} µs with the dump)",
                target=f"≤ {TARGET_US:.0f} µs/event (issue 16)",
                ok=extra <= TARGET_US,
                command=cmd,
            )
    for stream, found in served.items():
        if not found:
            report.add(f"emulator {stream}", "no rows served")
            continue
        batch = (found * -(-batch_size // len(found)))[:batch_size]
        base = cpu_us_per_event(batch, raw, rounds)
        for fmt, encode in encoders:
            total = cpu_us_per_event(batch, encode, rounds)
            report.add(
                f"emulator {stream}, {fmt}: CPU added by normalization",
                f"{total - base:.1f} µs/event ({total:.1f} µs with the dump, raw {base:.2f} µs; "
                f"{len(found):,} rows)",
                command=cmd,
            )
    report.notes.append(
        f"Made-up message trace: {count:,} rows per source, best of {rounds} passes, CPU time "
        f"of this process; statuses {', '.join(STATUSES)}; local domains "
        f"{', '.join(DOMAINS[TENANT])}; documents from Normalizer (the sinks' dispatcher)."
    )
    report.notes.append(
        f"Emulator rows: {rows:,} message trace rows (seed 11), two days read by the "
        f"collector's sources in {read_secs:.1f} s; each stream's rows repeated to "
        f"{batch_size:,} events, best of {rounds} passes."
    )
    return report
