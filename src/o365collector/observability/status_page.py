"""The status page at ``/``: every tenant's streams in one small server-rendered HTML table.

Rendered from what the process already knows: live progress (state, watermark, delivered
rows, the last error), the metrics registry (quota, sinks, dead letters, errors, leases) and
the readiness verdict. Every value is HTML-escaped and errors are redacted again; the page
names tenants and sinks by their configured labels (no tenant id, endpoint or secret). It
refreshes itself with ``<meta http-equiv="refresh">`` and has no JavaScript.
"""

from __future__ import annotations

import asyncio
import html
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from o365collector import __version__
from o365collector.clock import Clock
from o365collector.observability import metrics
from o365collector.observability.progress import Progress
from o365collector.observability.redact import redact

REFRESH_SECS = 10
SAMPLE_EVERY_SECS = 5.0  # how often delivered-row counts are sampled for rates
RATE_WINDOW_SECS = 60.0  # rows per minute are averaged over (at least) this long

Key = tuple[str, str]


@dataclass
class _History:
    samples: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic, rows)
    last_delivery: datetime | None = None


class DeliveryTracker:
    """Rows per minute and the time of the last delivery, from samples of delivered rows.

    ``Progress`` counts rows a sink confirmed; sampling that count every few seconds tells
    when it last grew (to within one sample) and how fast over the last minute.
    """

    def __init__(
        self, progress: Progress, clock: Clock, window_secs: float = RATE_WINDOW_SECS
    ) -> None:
        """Track every stream of ``progress``."""
        self.progress = progress
        self.clock = clock
        self.window_secs = window_secs
        self._seen: dict[Key, _History] = {}

    def sample(self) -> None:
        """Record every stream's delivered rows now."""
        mono = self.clock.monotonic()
        now = self.clock.now()
        for key, p in list(self.progress.streams.items()):
            seen = self._seen.get(key)
            if seen is None:
                seen = self._seen[key] = _History()
                if p.events > 0:
                    seen.last_delivery = now
            elif p.events > seen.samples[-1][1]:
                seen.last_delivery = now
            seen.samples.append((mono, p.events))
            # Keep the newest sample at or before the window's start as the rate's base.
            while len(seen.samples) > 1 and seen.samples[1][0] <= mono - self.window_secs:
                seen.samples.popleft()

    def rows_per_minute(self, key: Key) -> float | None:
        """Delivered rows per minute over the last minute; ``None`` before a second of samples."""
        seen = self._seen.get(key)
        if seen is None:
            return None
        (first_at, first), (last_at, last) = seen.samples[0], seen.samples[-1]
        span = last_at - first_at
        return None if span < 1.0 else (last - first) / span * 60.0

    def last_delivery(self, key: Key) -> datetime | None:
        """When the stream's delivered rows last grew (``None``: not seen yet)."""
        seen = self._seen.get(key)
        return None if seen is None else seen.last_delivery

    async def run(self) -> None:
        """Sample every :data:`SAMPLE_EVERY_SECS` (real time) until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_SECS)


@dataclass(frozen=True)
class StreamRow:
    """One (tenant, stream) line of the page."""

    tenant: str
    stream: str
    state: str
    window: str = ""
    lag_secs: float | None = None
    watermark: datetime | None = None
    last_delivery_secs: float | None = None  # seconds ago
    rows: int = 0
    rows_per_minute: float | None = None
    quota: tuple[float, float] | None = None  # (requests in window, limit), per tenant
    lease: str = ""  # replicas only: "this replica" or "another replica"
    error: str = ""


@dataclass(frozen=True)
class SinkRow:
    """One sink (sinks are shared by every tenant and stream)."""

    name: str
    delivered: float = 0.0
    queued: float = 0.0
    dead_letters: float = 0.0
    failing_secs: float | None = None


@dataclass(frozen=True)
class StatusView:
    """Everything the page shows, already gathered: :func:`render` only formats it."""

    generated: datetime
    problems: list[str] = field(default_factory=list)
    streams: list[StreamRow] = field(default_factory=list)
    sinks: list[SinkRow] = field(default_factory=list)
    errors: list[tuple[str, str, float]] = field(default_factory=list)  # stage, type, count
    replicated: bool = False
    leases_held: float = 0.0
    lease_renewal_age_secs: float = 0.0
    version: str = __version__


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for s in family.samples:
            found.setdefault(s.name, []).append((s.labels, s.value))
    return found


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float | None:
    values = [
        v
        for have, v in samples.get(name, [])
        if all(have.get(k) == want for k, want in labels.items())
    ]
    return sum(values) if values else None


def gather(
    progress: Progress,
    clock: Clock,
    tracker: DeliveryTracker,
    *,
    problems: Iterable[str] = (),
    sinks: Iterable[tuple[str, float | None]] = (),
    registry: CollectorRegistry = metrics.REGISTRY,
) -> StatusView:
    """Collect the page's facts from progress, the tracker and the metrics registry."""
    now = clock.now()
    mono = clock.monotonic()
    found = _samples(registry)
    held = _value(found, "collector_tenant_leases_held") or 0.0
    streams = list(progress.streams.values())
    replicated = held > 0 or any(p.state == "elsewhere" for p in streams)
    rows = []
    for p in sorted(streams, key=lambda p: (p.tenant, p.stream)):
        key = (p.tenant, p.stream)
        in_window = _value(found, "api_budget_requests_in_window", tenant=p.tenant)
        limit = _value(found, "api_budget_requests_limit", tenant=p.tenant)
        delivered = tracker.last_delivery(key)
        elsewhere = p.state == "elsewhere"
        rows.append(
            StreamRow(
                tenant=p.tenant,
                stream=p.stream,
                state=p.state,
                window=p.window,
                lag_secs=None
                if p.watermark is None or elsewhere
                else (now - p.watermark).total_seconds(),
                watermark=p.watermark,
                last_delivery_secs=None if delivered is None else (now - delivered).total_seconds(),
                rows=p.events,
                rows_per_minute=tracker.rows_per_minute(key),
                quota=None if in_window is None or limit is None else (in_window, limit),
                lease=("another replica" if elsewhere else "this replica") if replicated else "",
                error=p.error,
            )
        )
    sink_rows = []
    for name, since in sinks:
        pushed = _value(found, "buffer_pushed_events_total", sink=name) or 0.0
        popped = _value(found, "buffer_popped_events_total", sink=name) or 0.0
        sink_rows.append(
            SinkRow(
                name=name,
                delivered=_value(found, "component_sent_events_total", sink=name) or 0.0,
                queued=max(0.0, pushed - popped),
                dead_letters=_value(found, "component_discarded_events_total", sink=name) or 0.0,
                failing_secs=None if since is None else max(0.0, mono - since),
            )
        )
    errors = sorted(
        (labels.get("stage", ""), labels.get("error_type", ""), value)
        for labels, value in found.get("component_errors_total", [])
        if value > 0
    )
    return StatusView(
        generated=now,
        problems=list(problems),
        streams=rows,
        sinks=sink_rows,
        errors=errors,
        replicated=replicated,
        leases_held=held,
        lease_renewal_age_secs=_value(found, "collector_tenant_lease_renewal_age_seconds") or 0.0,
    )


def _duration(secs: float) -> str:
    secs = max(0.0, secs)
    if secs < 90:
        return f"{secs:.0f} s"
    if secs < 90 * 60:
        return f"{secs / 60:.0f} min"
    if secs < 48 * 3600:
        hours, rest = divmod(int(secs), 3600)
        return f"{hours} h {rest // 60} min"
    days, rest = divmod(int(secs), 86400)
    return f"{days} d {rest // 3600} h"


def _when(moment: datetime | None, zone: str = " UTC") -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + zone


def _td(css: str, text: str, value: float | str | None = None) -> str:
    attr = "" if value is None else f' data-value="{html.escape(str(value))}"'
    return f'<td class="{css}"{attr}>{html.escape(text)}</td>'


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.4em 0 .4em}
.meta{color:#666;margin:0 0 1em}
table{border-collapse:collapse}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top;white-space:nowrap}th{background:#f3f3f3}td.num{text-align:right}
tr.failed td,tr.failed+tr.error-row td{background:#fde8e8}tr.elsewhere td{color:#888}
.ok{color:#17692f}.bad{color:#a11}.error,td.state{white-space:normal}.error{color:#a11}
tr.error-row td{padding-left:2em}
ul.problems{margin:.2em 0}
"""

_STREAM_HEADS = (
    "Tenant",
    "Stream",
    "State",
    "Lag",
    "Watermark (UTC)",
    "Last delivery",
    "Rows delivered",
    "Rows/min",
    "Quota used",
)


def _stream_row(row: StreamRow, replicated: bool) -> str:
    quota = "—"
    if row.quota is not None:
        used, limit = row.quota
        share = f" ({used / limit:.0%})" if limit > 0 else ""
        quota = f"{used:.0f} / {limit:.0f}{share}"
    rate = "—" if row.rows_per_minute is None else f"{row.rows_per_minute:,.0f}"
    last = "—" if row.last_delivery_secs is None else f"{_duration(row.last_delivery_secs)} ago"
    cells = [
        _td("tenant", row.tenant),
        _td("stream", row.stream),
        _td("state", row.state + (f" {row.window}" if row.window else "")),
        _td("lag num", "—" if row.lag_secs is None else _duration(row.lag_secs), row.lag_secs),
        _td("watermark", _when(row.watermark, "")),
        _td("last-delivery", last, row.last_delivery_secs),
        _td("rows num", f"{row.rows:,}", row.rows),
        _td("rate num", rate, row.rows_per_minute),
        _td("quota", quota),
    ]
    if replicated:
        cells.append(_td("lease", row.lease))
    line = (
        f'<tr class="stream {html.escape(row.state)}" data-tenant="{html.escape(row.tenant)}"'
        f' data-stream="{html.escape(row.stream)}">{"".join(cells)}</tr>'
    )
    if not row.error:
        return line
    # The error gets a full-width line of its own, under its stream.
    error = html.escape(redact(row.error))
    return f'{line}<tr class="error-row"><td class="error" colspan="{len(cells)}">{error}</td></tr>'


def _sinks_table(sinks: list[SinkRow]) -> str:
    if not sinks:
        return ""
    heads = "".join(
        f"<th>{h}</th>" for h in ("Sink", "Delivered", "Queued", "Dead letters", "Failing for")
    )
    body = "".join(
        f'<tr class="sink" data-sink="{html.escape(s.name)}">'
        + _td("name", s.name)
        + _td("delivered num", f"{s.delivered:,.0f}", s.delivered)
        + _td("queued num", f"{s.queued:,.0f}", s.queued)
        + _td("dead-letters num", f"{s.dead_letters:,.0f}", s.dead_letters)
        + _td("failing", "—" if s.failing_secs is None else _duration(s.failing_secs))
        + "</tr>"
        for s in sinks
    )
    return f'<h2>Sinks</h2><table id="sinks"><tr>{heads}</tr>{body}</table>'


def _errors_table(errors: list[tuple[str, str, float]]) -> str:
    if not errors:
        return ""
    body = "".join(
        f"<tr>{_td('stage', stage)}{_td('type', kind)}{_td('count num', f'{n:,.0f}', n)}</tr>"
        for stage, kind, n in errors
    )
    return (
        '<h2>Errors since start</h2><table id="errors">'
        f"<tr><th>Stage</th><th>Type</th><th>Count</th></tr>{body}</table>"
    )


def render(view: StatusView) -> str:
    """The page's HTML (UTF-8 text); every value in it is escaped."""
    if view.problems:
        items = "".join(f"<li>{html.escape(redact(p))}</li>" for p in view.problems)
        verdict = f'<p id="readiness" class="bad">Not ready:</p><ul class="problems">{items}</ul>'
    else:
        verdict = '<p id="readiness" class="ok">Ready</p>'
    heads = list(_STREAM_HEADS) + (["Lease"] if view.replicated else [])
    if view.streams:
        body = "".join(_stream_row(row, view.replicated) for row in view.streams)
    else:
        body = f'<tr class="empty"><td colspan="{len(heads)}">No streams yet.</td></tr>'
    leases = ""
    if view.replicated:
        leases = (
            f'<p id="leases">Tenant leases held by this replica: {view.leases_held:.0f};'
            f" last renewed {_duration(view.lease_renewal_age_secs)} ago.</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECS}">'
        f"<title>o365collector status</title><style>{_CSS}</style></head><body>"
        "<h1>o365collector</h1>"
        f'<p class="meta">version {html.escape(view.version)} · {_when(view.generated)}'
        f" · refreshes every {REFRESH_SECS} s</p>{verdict}{leases}"
        '<h2>Streams</h2><table id="streams"><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in heads)
        + f"</tr>{body}</table>"
        + _sinks_table(view.sinks)
        + _errors_table(view.errors)
        + "</body></html>\n"
    )
