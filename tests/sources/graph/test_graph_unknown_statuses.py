"""Issue 13.4: Graph status values the collector does not know are delivered and counted.

Microsoft's evolvable enums grow: a new member comes as ``unknownFutureValue`` (or, with
``Prefer: include-unknown-enum-members``, under its own name). The source hands every such
row on untouched, counts it in ``collector_unknown_values_total`` and warns once per
distinct value per process.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import structlog

from o365collector.event import decoded
from o365collector.observability.metrics import REGISTRY
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.graph.statuses import (
    KNOWN_STATUSES,
    MAX_VALUE_CHARS,
    OTHER_VALUE,
    SeenValues,
    UnknownValueCounter,
)
from o365collector.windows import TimeWindow
from support.mock_api import GRAPH, SCOPE, token_response
from support.shared import SHARED, shared_or_skip

API_FACTS = SHARED / "reference" / "api-facts.md"
WINDOW = TimeWindow(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, 1, tzinfo=UTC))
LONG = "someVeryLongStatusNameThatMicrosoftMightAddOneDayForNoReason"


def _count(value: str, tenant: str = "unit", stream: str = "message_trace") -> float:
    sample = REGISTRY.get_sample_value(
        "collector_unknown_values_total",
        {"tenant": tenant, "stream": stream, "field": "status", "value": value},
    )
    return 0.0 if sample is None else sample


def _rows(*statuses: str | None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, status in enumerate(statuses):
        row: dict[str, object] = {"id": f"trace-{i}", "recipientAddress": f"r{i}@contoso.com"}
        if status is not None:
            row["status"] = status
        rows.append(row)
    return rows


def test_known_statuses_are_the_documented_members_before_unknown_future_value() -> None:
    assert {
        "gettingstatus",
        "pending",
        "failed",
        "delivered",
        "expanded",
        "quarantined",
        "filteredasspam",
    } == KNOWN_STATUSES
    # The reference lists the enum in the resource table.
    line = next(
        line
        for line in shared_or_skip(API_FACTS).read_text(encoding="utf-8").splitlines()
        if line.startswith("| status | exchangeMessageTraceStatus")
    )
    members = {m.lower() for m in re.findall(r"`(\w+)`", line.split("(the last")[0])}
    assert members - {"unknownfuturevalue", "recalled"} == KNOWN_STATUSES


async def test_unknown_statuses_are_delivered_untouched_and_counted(api_factory) -> None:
    rows = _rows("Delivered", "unknownFutureValue", "recalled", "recalled", LONG, "PENDING")
    expected = [dict(row) for row in rows]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        return httpx.Response(200, json={"value": rows})

    source = GraphMessageTraceSource(
        api_factory(handler), graph_base=GRAPH, scope=SCOPE, page_size=100, max_pages=2
    )
    before = {v: _count(v) for v in ("unknownFutureValue", "recalled", LONG[:MAX_VALUE_CHARS])}
    pages = [page async for page in source.pages(WINDOW, None)]

    assert [decoded(r) for p in pages for r in p.records] == expected
    assert _count("unknownFutureValue") - before["unknownFutureValue"] == 1
    assert _count("recalled") - before["recalled"] == 2
    truncated = LONG[:MAX_VALUE_CHARS]
    assert len(truncated) == MAX_VALUE_CHARS
    assert _count(truncated) - before[truncated] == 1
    assert _count("Delivered") == 0 and _count("PENDING") == 0


def test_each_distinct_value_warns_once_per_process() -> None:
    seen = SeenValues(limit=10)
    counter = UnknownValueCounter(tenant="warn", stream="message_trace", seen=seen)
    with structlog.testing.capture_logs() as logs:
        counter.observe(_rows("recalled", "recalled", "unknownFutureValue"))
        counter.observe(_rows("recalled", "Delivered"))
        UnknownValueCounter(tenant="other", stream="message_trace", seen=seen).observe(
            _rows("recalled")
        )
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert sorted(e["value"] for e in warnings) == ["recalled", "unknownFutureValue"]
    assert all(e["field"] == "status" and e["tenant"] == "warn" for e in warnings)
    assert _count("recalled", tenant="warn") == 3
    assert _count("recalled", tenant="other") == 1


def test_distinct_values_past_the_limit_share_one_label() -> None:
    seen = SeenValues(limit=2)
    counter = UnknownValueCounter(tenant="capped", stream="message_trace", seen=seen)
    with structlog.testing.capture_logs() as logs:
        counter.observe(_rows("new1", "new2", "new3", "new4", "new1"))
    assert _count("new1", tenant="capped") == 2
    assert _count("new2", tenant="capped") == 1
    assert _count("new3", tenant="capped") == 0
    assert _count(OTHER_VALUE, tenant="capped") == 2
    warned = [e.get("value") for e in logs if e["log_level"] == "warning"]
    assert warned.count("new1") == 1 and warned.count("new2") == 1
    assert len(warned) == 3  # and one saying that further values are counted as other


def test_a_row_without_status_is_counted_not_refused() -> None:
    counter = UnknownValueCounter(tenant="nostatus", stream="message_trace", seen=SeenValues())
    rows = _rows(None, "")
    counter.observe(rows)
    assert _count("(missing)", tenant="nostatus") == 1
    assert _count("(empty)", tenant="nostatus") == 1


def test_key_of_keeps_an_unknown_status_and_never_the_store_separator(api_factory) -> None:
    source = GraphMessageTraceSource(
        api_factory(lambda _r: token_response()),
        graph_base=GRAPH,
        scope=SCOPE,
        page_size=100,
        max_pages=2,
    )
    row = {"id": "t", "recipientAddress": "A@B", "status": "unknownFutureValue"}
    assert source.key_of(row) == ("t", "a@b", "unknownfuturevalue")
    assert source.key_of({**row, "status": "new|value"})[2] == "new/value"
