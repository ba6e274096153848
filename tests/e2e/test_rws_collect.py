"""Issue 3 acceptance: every report through the emulator, as real processes, against ground truth.

One emulator process serves two tenants: ``full`` is offered every report, ``partial`` only
MessageTrace and MailTraffic. One ``run --once`` collects Graph message trace, every RWS
report and message trace detail for ``full``, and the same configuration for ``partial``,
into JSON lines. Then, per stream: nothing missing that was visible and in range, nothing
delivered twice; ``partial`` still collects the reports it has and says once, per missing
report, what to fix.

The service's own paging is drawn at random for each run (page size 100, 500, 2,000 or 5,000
rows, with or without next links; ``RWS_PAGING=500,links`` picks one): the collector asks
for 400 rows a page, so some runs are paged by the service below that.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from harness import EmulatorProcess, now, output_lines, run_collector

from o365collector.sources.reporting.detail import detail_key
from o365collector.sources.reporting.records import record_key, record_time
from o365collector.state.sqlite import SqliteStateStore
from o365collector.streams.catalog import CATALOG, listed_reports
from o365collector.windows import parse_iso
from support.rws import RWS_PATH

pytestmark = pytest.mark.integration

SECRET = "Rws~Integration-Secret.0123456789"
TENANTS = {
    "full": ("5a1b2c3d-0000-4000-8000-0000000f0001", None),
    "partial": ("5a1b2c3d-0000-4000-8000-0000000f0002", ["MessageTrace", "MailTraffic"]),
}
CLIENT_ID = "5a1b2c3d-0000-4000-8000-00000000c0c1"
ROWS = 2500
AGGREGATE_DELAY = 3600  # the collector waits longer than the emulator's 600 s
DETAIL_DELAY = 7200
SELECTED = {"failed", "quarantined", "filteredasspam"}


def _service_paging() -> tuple[int, bool]:
    """The service's page size and whether it sends next links, from RWS_PAGING or at random."""
    chosen = os.environ.get("RWS_PAGING")
    if chosen:
        size, links = chosen.split(",")
        return int(size), links == "links"
    pick = random.SystemRandom()
    return pick.choice((100, 500, 2000, 5000)), pick.random() < 0.5


PAGE_SIZE, NEXT_LINKS = _service_paging()
PAGING = f"RWS_PAGING={PAGE_SIZE},{'links' if NEXT_LINKS else 'no-links'}"


def _emulator_settings() -> dict[str, Any]:
    tenants = []
    for tenant_id, reports in TENANTS.values():
        spec: dict[str, Any] = {
            "tenant_id": tenant_id,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "rows": ROWS,
            "quota_requests": 100_000,
        }
        if reports is not None:
            spec["rws_reports"] = reports
        tenants.append(spec)
    return {
        "seed": 5,
        "tenants": tenants,
        "history_secs": 3 * 86400,
        "late_delay_secs": [120.0, 3600.0],
        "status_change_delay_secs": [30.0, 900.0],
        "rws_aggregate_delay_secs": 600.0,
        "rws_page_size": PAGE_SIZE,
        "rws_next_links": NEXT_LINKS,
    }


def _streams() -> list[Any]:
    streams: list[Any] = ["message_trace"]
    for spec in listed_reports():
        entry: dict[str, Any] = {"name": spec.stream, "page_size": 400}
        if spec.aggregated:
            entry["settle_delay_secs"] = AGGREGATE_DELAY
        streams.append(entry)
    streams.append(
        {"name": "message_trace_detail", "api": "rws", "settle_delay_secs": DETAIL_DELAY}
    )
    return streams


def _config(workdir: Path, url: str) -> Path:
    tenants = [
        {
            "name": name,
            "tenant_id": tenant_id,
            "client_id": CLIENT_ID,
            "client_secret": "${ITEST_SECRET}",
            "endpoints": {"authority": url, "graph": url, "reporting": url + RWS_PATH},
            "budget": {"requests": 100_000, "window_secs": 300},
            "streams": _streams(),
        }
        for name, (tenant_id, _) in TENANTS.items()
    ]
    config = {
        "state_dir": str(workdir / "state"),
        "tenants": tenants,
        "collection": {
            "initial_lookback_secs": 4 * 86400,
            "settle_delay_secs": 60,
            "poll_interval_secs": 1,
            "max_window_secs": 86400,
        },
        "sinks": [{"type": "jsonl", "name": "file", "path": str(workdir / "out" / "events.jsonl")}],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    (workdir / "secret.env").write_text(SECRET, encoding="utf-8")
    return path


class Run:
    """What one collector run produced, and the emulator's truth to check it against."""

    def __init__(self, emulator: EmulatorProcess, workdir: Path, started: datetime, stderr: str):
        self.emulator = emulator
        self.started = started
        self.logs = [orjson.loads(x) for x in stderr.splitlines() if x.startswith("{")]
        self.events: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for event in output_lines(workdir):
            self.events.setdefault((event["tenant"], event["stream"]), []).append(event)
        store = SqliteStateStore(workdir / "state" / "state.db")
        try:
            self.marks = {(t, s, lane): cp.watermark for t, s, lane, cp in store.all()}
        finally:
            store.close()

    def truth(self, tenant: str, report: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.emulator.url}/_emulator/ground-truth",
            params={"tenant": TENANTS[tenant][0], "report": report},
            timeout=60,
        )
        response.raise_for_status()
        return [orjson.loads(line) for line in response.content.splitlines()]

    def mark(self, tenant: str, stream: str, lane: str) -> datetime:
        mark = self.marks[(tenant, stream, lane)]
        assert mark is not None
        return mark


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workdir = tmp_path_factory.mktemp("rws")
    emulator = EmulatorProcess(workdir, _emulator_settings()).start()
    try:
        config = _config(workdir, emulator.url)
        started = now()
        result = run_collector(config, "--once", timeout=300)
        assert result.returncode == 0, result.stderr[-4000:]
        yield Run(emulator, workdir, started, result.stderr)
    finally:
        emulator.stop()


def _visible(row: dict[str, Any], moment: datetime) -> bool:
    return parse_iso(row["visible_at"]) <= moment


def _check_per_row(run: Run, tenant: str, report: str) -> int:
    spec = CATALOG[report]
    events = run.events.get((tenant, spec.stream), [])
    facts = Counter(record_key(spec, e["record"]) for e in events)
    assert all(n == 1 for n in facts.values()), f"{report}: a fact was delivered twice"
    assert len({e["event_id"] for e in events}) == len(events)
    rows = {f[:2] for f in facts}
    truth = run.truth(tenant, report)
    known = {record_key(spec, t["record"])[:2] for t in truth}
    assert rows <= known, f"{report}: rows the emulator never had"
    live = run.mark(tenant, spec.stream, "live")
    due = {
        record_key(spec, t["record"])[:2]
        for t in truth
        if _visible(t, run.started) and record_time(spec, t["record"]) < live  # type: ignore[operator]
    }
    missing = due - rows
    assert not missing, (
        f"{PAGING}: {report}: {len(missing)} rows missing, e.g. {sorted(missing)[:2]}"
    )
    return len(due)


def _check_aggregate(run: Run, tenant: str, report: str) -> int:
    spec = CATALOG[report]
    events = run.events.get((tenant, spec.stream), [])
    keys = Counter(record_key(spec, e["record"]) for e in events)
    assert all(n == 1 for n in keys.values()), f"{report}: a bucket was delivered twice"
    size = spec.bucket_secs or 86400.0
    bucket = timedelta(seconds=size)
    mark = run.mark(tenant, spec.stream, "final")
    # the first bucket depends on the second the run began; compare from the next one
    start = (run.started - timedelta(days=4)).timestamp()
    low = datetime.fromtimestamp((start // size + 1) * size, UTC)
    due = {
        record_key(spec, t["record"])
        for t in run.truth(tenant, report)
        if low <= record_time(spec, t["record"])  # type: ignore[operator]
        and record_time(spec, t["record"]) + bucket <= mark  # type: ignore[operator]
    }
    got = set(keys)
    assert due <= got, f"{PAGING}: {report}: {len(due - got)} buckets missing"
    early = [k for k in got - due if parse_iso(k[0]) >= low]
    assert not early, f"{report}: buckets delivered before they settled: {early[:2]}"
    return len(due)


@pytest.mark.parametrize("report", [s.name for s in listed_reports()])
def test_every_report_is_complete_and_delivered_once(run: Run, report: str) -> None:
    spec = CATALOG[report]
    check = _check_aggregate if spec.aggregated else _check_per_row
    print(f"service paging: {PAGING}")  # to run the same draw again
    assert check(run, "full", report) > 0, f"{report}: nothing was due; the test proves nothing"
    tags = {(e["tenant"], e["stream"]) for e in run.events.get(("full", spec.stream), [])}
    assert tags == {("full", spec.stream)}


def test_rws_message_trace_agrees_with_graph(run: Run) -> None:
    """Both APIs deliver exactly the same rows of the same seeded data.

    Compared below both streams' live watermarks (what one read past the other's edge is
    not due from the other): of the rows already visible when the run began, each API
    delivered exactly the emulator's rows. Rows that turned visible while the run was
    reading are the only ones one API may have and the other not.
    """
    spec = CATALOG["MessageTrace"]
    edge = min(run.mark("full", spec.stream, "live"), run.mark("full", "message_trace", "live"))
    rws = {
        record_key(spec, e["record"])[:2]
        for e in run.events[("full", spec.stream)]
        if record_time(spec, e["record"]) < edge  # type: ignore[operator]
    }
    graph = {
        (e["record"]["id"], e["record"]["recipientAddress"].lower())
        for e in run.events[("full", "message_trace")]
        if parse_iso(e["record"]["receivedDateTime"]) < edge
    }
    truth = run.truth("full", "MessageTrace")
    below = [t for t in truth if record_time(spec, t["record"]) < edge]  # type: ignore[operator]
    settled = {record_key(spec, t["record"])[:2] for t in below if _visible(t, run.started)}
    during = {record_key(spec, t["record"])[:2] for t in below if not _visible(t, run.started)}
    assert settled and len(rws) > 100
    assert rws - during == settled, f"{PAGING}: RWS differs from the emulator's settled rows"
    assert graph - during == settled, "Graph differs from the emulator's settled rows"
    assert rws | graph <= settled | during, "a row the emulator never had"


def test_detail_of_every_selected_row_is_delivered_once(run: Run) -> None:
    events = run.events[("full", "message_trace_detail")]
    keys = Counter(detail_key(e["record"]) for e in events)
    assert keys and all(n == 1 for n in keys.values())
    mark = run.mark("full", "message_trace_detail", "final")
    selected = {
        (t["record"]["MessageTraceId"], t["record"]["RecipientAddress"])
        for t in run.truth("full", "MessageTrace")
        if t["record"]["Status"].lower() in SELECTED
        and parse_iso(t["record"]["Received"]) < mark - timedelta(seconds=1)
        and parse_iso(t["record"]["Received"]) >= run.started - timedelta(days=4)
    }
    due = {
        detail_key(t["record"])
        for t in run.truth("full", "MessageTraceDetail")
        if (t["record"]["MessageTraceId"], t["record"]["RecipientAddress"]) in selected
    }
    assert due and set(keys) == due


def test_a_tenant_without_some_reports_collects_the_rest(run: Run) -> None:
    assert _check_per_row(run, "partial", "MessageTrace") > 0
    assert _check_aggregate(run, "partial", "MailTraffic") > 0
    assert run.events[("partial", "message_trace")]
    offered = {"rws.MessageTrace", "rws.MailTraffic"}
    missing = {s.stream for s in listed_reports()} - offered
    assert not {s for t, s in run.events if t == "partial"} & missing
    skipped = [
        e
        for e in run.logs
        if e.get("event") == "Report not offered to this tenant; skipping the stream."
    ]
    assert all(e["level"] == "error" and e["tenant"] == "partial" for e in skipped)
    said = Counter(e["stream"] for e in skipped)
    assert said == Counter({**dict.fromkeys(missing, 1), "message_trace_detail": 1})
    atp = next(e for e in skipped if e["stream"] == "rws.MailTrafficATP")
    assert atp["report"] == "MailTrafficATP" and "remove `rws.MailTrafficATP`" in atp["fix"]
