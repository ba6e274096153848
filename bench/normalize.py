"""Issue 16's cost: CPU per event of the ECS and OCSF mappers, against dumping the raw record.

Rows are made here (message trace as Graph and as RWS sends them: statuses, domains, IPs
and sizes varied), so only the mapping is timed, in this process, with its CPU clock:

- ``raw``: ``orjson.dumps`` of the record (what the sinks spend on ``format: raw``);
- ``ecs`` / ``ocsf``: the mapper, then ``orjson.dumps`` of the document; the figure is the
  mapper's own share (the pass minus ``raw`` of the same rows is shown beside it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bench.results import Context, Report, bench_command
from o365collector.event import Event
from o365collector.normalize import message_trace_to_ecs, message_trace_to_ocsf

NAME = "normalize"
TARGET_US = 5.0
STATUSES = ["Delivered", "Failed", "Pending", "Expanded", "Quarantined", "FilteredAsSpam"]
DOMAINS = ("contoso.com",)


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
        graph.append(Event("contoso", "message_trace", f"{index:064x}", row))
        rws.append(Event("contoso", "rws.MessageTrace", f"{index:064x}", _rws_row(row, index)))
    return graph, rws


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
    """Time raw, ECS and OCSF encoding of Graph and RWS rows."""
    count, rounds = (2_000, 2) if ctx.smoke else (20_000, 5)
    graph, rws = events(count)
    dumps = orjson.dumps

    def raw(event: Event) -> bytes:
        return dumps(event.record)

    def ecs(event: Event) -> bytes:
        return dumps(message_trace_to_ecs(event, local_domains=DOMAINS))

    def ocsf(event: Event) -> bytes:
        return dumps(message_trace_to_ocsf(event, local_domains=DOMAINS))

    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    for label, batch in (("Graph", graph), ("RWS", rws)):
        base = cpu_us_per_event(batch, raw, rounds)
        report.add(f"{label} rows, raw (orjson.dumps of the record)", f"{base:.2f} µs/event")
        for fmt, encode in (("ECS", ecs), ("OCSF", ocsf)):
            total = cpu_us_per_event(batch, encode, rounds)
            extra = total - base
            report.add(
                f"{label} rows, {fmt}: CPU added by normalization",
                f"{extra:.1f} µs/event ({total:.1f} µs with the dump)",
                target=f"≤ {TARGET_US:.0f} µs/event (issue 16)",
                ok=extra <= TARGET_US,
                command=cmd,
            )
    report.notes.append(
        f"{count:,} rows per source, best of {rounds} passes, CPU time of this process; "
        f"statuses {', '.join(STATUSES)}; local domains {', '.join(DOMAINS)}."
    )
    return report
