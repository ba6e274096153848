"""The ``/`` status page: what it shows, that it escapes everything, and that it is served."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from o365collector.observability.health import HealthServer, Readiness
from o365collector.observability.progress import Progress
from o365collector.observability.redact import register_secret
from o365collector.observability.status_page import DeliveryTracker, StatusView, gather, render
from support.clock import EPOCH, FakeClock


class _Dom(HTMLParser):
    """Stream rows as {td class: (text, data-value)}, plus the row's own attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, tuple[str, str | None]]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: tuple[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "tr" and "stream" in (found.get("class") or "").split():
            self.rows.append(
                {
                    "@tenant": (found.get("data-tenant") or "", None),
                    "@stream": (found.get("data-stream") or "", None),
                    "@class": (found.get("class") or "", None),
                }
            )
        elif tag == "td" and self.rows:
            self._cell = ((found.get("class") or "").split()[0], found.get("data-value"))
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][self._cell[0]] = ("".join(self._text), self._cell[1])
            self._cell = None
        elif tag == "tr":
            self._cell = None


def _parse(page: str) -> _Dom:
    dom = _Dom()
    dom.feed(page)
    return dom


def _registry() -> tuple[CollectorRegistry, dict[str, Counter | Gauge]]:
    reg = CollectorRegistry()
    made: dict[str, Counter | Gauge] = {
        "in_window": Gauge("api_budget_requests_in_window", "", ["tenant"], registry=reg),
        "limit": Gauge("api_budget_requests_limit", "", ["tenant"], registry=reg),
        "sent": Counter("component_sent_events_total", "", ["sink"], registry=reg),
        "pushed": Counter("buffer_pushed_events_total", "", ["sink"], registry=reg),
        "popped": Counter("buffer_popped_events_total", "", ["sink"], registry=reg),
        "discarded": Counter(
            "component_discarded_events_total", "", ["sink", "reason"], registry=reg
        ),
        "errors": Counter("component_errors_total", "", ["stage", "error_type"], registry=reg),
        "held": Gauge("collector_tenant_leases_held", "", registry=reg),
        "age": Gauge("collector_tenant_lease_renewal_age_seconds", "", registry=reg),
    }
    return reg, made


def _page(progress: Progress, clock: FakeClock, reg: CollectorRegistry | None = None, **kw):
    tracker = DeliveryTracker(progress, clock)
    tracker.sample()
    return render(gather(progress, clock, tracker, registry=reg or _registry()[0], **kw))


def test_empty_state_says_so_and_is_ready() -> None:
    page = _page(Progress(), FakeClock())
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "No streams yet." in page
    assert 'id="readiness" class="ok">Ready<' in page
    assert "<script" not in page
    assert _parse(page).rows == []


def test_every_value_is_escaped() -> None:
    progress = Progress()
    hostile = '<script>alert("t")</script>'
    p = progress.stream(hostile, 'rws."><img src=x onerror=alert(1)>')
    p.state = "failed"
    p.error = "<b>bold</b> & 'quoted'"
    page = _page(
        progress,
        FakeClock(),
        problems=["<i>problem</i>"],
        sinks=[('<sink name="x">', None)],
    )
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>" not in page and "<i>" not in page and "<sink" not in page
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in page
    (row,) = _parse(page).rows
    assert row["@tenant"][0] == hostile  # attributes round-trip: escaped, not broken out of
    assert row["tenant"][0] == hostile
    assert row["stream"][0] == 'rws."><img src=x onerror=alert(1)>'
    tags = {tag for tag, _ in _parse(page).tags}
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "p",
        "ul",
        "li",
    } | {
        "table",
        "tr",
        "th",
        "td",
    }


def test_a_failed_stream_shows_its_error_redacted() -> None:
    secret = "Very~Secret.Value-0123456789"
    register_secret(secret)
    progress = Progress()
    ok = progress.stream("contoso", "message_trace")
    ok.state = "reading"
    ok.events = 1200
    ok.watermark = EPOCH - timedelta(seconds=75)
    bad = progress.stream("fabrikam", "message_trace")
    bad.state = "failed"
    bad.error = f"AADSTS7000215: Invalid client secret provided ({secret}); password=hunter22"
    problems = [f"fabrikam/message_trace: failed: {bad.error}"]
    page = _page(progress, FakeClock(), problems=problems)
    assert secret not in page and "hunter22" not in page
    rows = {r["@tenant"][0]: r for r in _parse(page).rows}
    assert "failed" in rows["fabrikam"]["@class"][0].split()
    assert "AADSTS7000215: Invalid client secret provided (***)" in rows["fabrikam"]["error"][0]
    assert "error" not in rows["contoso"]  # no error: no error line
    assert rows["contoso"]["lag"] == ("75 s", "75.0")
    assert rows["contoso"]["rows"] == ("1,200", "1200")
    assert rows["fabrikam"]["lag"][0] == "—"
    assert 'class="bad">Not ready:' in page
    assert "fabrikam/message_trace: failed: AADSTS7000215" in page


def test_rows_per_minute_and_last_delivery_come_from_samples() -> None:
    clock = FakeClock()
    progress = Progress()
    p = progress.stream("contoso", "message_trace")
    tracker = DeliveryTracker(progress, clock, window_secs=60)
    tracker.sample()
    key = ("contoso", "message_trace")
    assert tracker.rows_per_minute(key) is None
    assert tracker.last_delivery(key) is None
    for _ in range(6):  # 100 rows every 10 s for a minute
        clock.advance(10)
        p.events += 100
        tracker.sample()
    assert tracker.rows_per_minute(key) == 600
    delivered = clock.now()
    assert tracker.last_delivery(key) == delivered
    clock.advance(30)  # nothing new for 30 s: the rate falls, the last delivery stays
    tracker.sample()
    assert tracker.rows_per_minute(key) == 300
    assert tracker.last_delivery(key) == delivered
    (row,) = gather(progress, clock, tracker, registry=_registry()[0]).streams
    assert row.last_delivery_secs == 30
    assert row.rows_per_minute == 300


def test_quota_sinks_dead_letters_and_errors_from_the_registry() -> None:
    reg, m = _registry()
    m["in_window"].labels(tenant="contoso").set(250)
    m["limit"].labels(tenant="contoso").set(1000)
    m["sent"].labels(sink="siem").inc(900)
    m["pushed"].labels(sink="siem").inc(1000)
    m["popped"].labels(sink="siem").inc(960)
    m["discarded"].labels(sink="siem", reason="too_large").inc(3)
    m["discarded"].labels(sink="siem", reason="rejected").inc(2)
    m["errors"].labels(stage="sending", error_type="timeout").inc(4)
    progress = Progress()
    progress.stream("contoso", "message_trace").state = "reading"
    progress.stream("other", "message_trace").state = "reading"
    clock = FakeClock(monotonic_start=1000)
    page = _page(progress, clock, reg, sinks=[("siem", 970.0), ("spare", None)])
    rows = {r["@tenant"][0]: r for r in _parse(page).rows}
    assert rows["contoso"]["quota"][0] == "250 / 1000 (25%)"
    assert rows["other"]["quota"][0] == "—"
    assert 'data-sink="siem"' in page
    assert '<td class="dead-letters num" data-value="5.0">5</td>' in page
    assert '<td class="queued num" data-value="40.0">40</td>' in page
    assert '<td class="failing">30 s</td>' in page
    assert '<td class="type">timeout</td>' in page
    assert "Lease" not in page  # a single collector: no lease column


def test_replicas_show_who_holds_each_tenant() -> None:
    reg, m = _registry()
    m["held"].set(1)
    m["age"].set(4)
    progress = Progress()
    mine = progress.stream("contoso", "message_trace")
    mine.state = "reading"
    theirs = progress.stream("fabrikam", "message_trace")
    theirs.state = "elsewhere"
    theirs.watermark = EPOCH - timedelta(hours=5)
    page = _page(progress, FakeClock(), reg)
    rows = {r["@tenant"][0]: r for r in _parse(page).rows}
    assert rows["contoso"]["lease"][0] == "this replica"
    assert rows["fabrikam"]["lease"][0] == "another replica"
    assert rows["fabrikam"]["lag"][0] == "—"  # not this replica's to judge
    assert "Tenant leases held by this replica: 1; last renewed 4 s ago." in page


def test_durations_read_naturally() -> None:
    progress = Progress()
    for stream, secs in (("a", 5), ("b", 600), ("c", 3 * 3600 + 120), ("d", 3 * 86400 + 7200)):
        progress.stream("t", stream).watermark = EPOCH - timedelta(seconds=secs)
    rows = {r["@stream"][0]: r["lag"][0] for r in _parse(_page(progress, FakeClock())).rows}
    assert rows == {"a": "5 s", "b": "10 min", "c": "3 h 2 min", "d": "3 d 2 h"}


def test_render_alone_needs_no_process_state() -> None:
    page = render(StatusView(generated=EPOCH))
    assert "2024-05-01 12:00:00 UTC" in page


async def test_the_server_serves_the_page_at_the_root() -> None:
    progress = Progress()
    p = progress.stream("contoso", "message_trace")
    p.state = "reading"
    p.events = 7
    clock = FakeClock()
    readiness = Readiness(progress, lambda: [("siem", None)], clock, 900, 300)
    server = HealthServer("127.0.0.1", 0, readiness)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            page = await client.get("/?refresh=1")
            metrics = await client.get("/metrics")
            missing = await client.get("/nothing")
    finally:
        await server.close()
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    (row,) = _parse(page.text).rows
    assert row["rows"] == ("7", "7")
    assert 'data-sink="siem"' in page.text
    assert metrics.status_code == 200
    assert missing.status_code == 404
