"""Issue 18: an HTTP sink down for 10 minutes — backpressure, memory, signals, recovery.

The emulator holds ten minutes of history and receives live rows (some late, some changing
status: ``livecheck.DELAYS``). ``o365collector run`` (a real daemon process) delivers to two
sinks: ``web``, an HTTP receiver this benchmark runs and breaks on purpose, and ``file``, a
JSON-lines file. The receiver goes through these phases (seconds in the full run):

1. healthy (60): the collector catches up with the history;
2. ``refused`` (200): nothing listens on its port (connection refused);
3. ``503`` (200): every request is answered 503;
4. ``slow`` (200): every request is answered 200 after 5 s;
5. healthy again (240), then SIGTERM.

Every 5 s the collector's RSS is sampled; in each phase ``/readyz``, ``/metrics`` and the
``/`` status page are scraped twice (middle, end) and the last answers kept. Afterwards the
lines each sink received are compared with the emulator's ground truth (every due row and
final status delivered, no (key, status) twice), and the time from the end of the outage
(and from the first accepted request) until the backlog had reached the receiver is
reported. ``--smoke`` runs the same phases in about 45 s.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    EmulatorProcess,
    PeakRss,
    collector_command,
    collector_config,
    collector_env,
    collector_log_tail,
    free_port,
    output_events,
    proc_rss_mib,
    reap,
    tenant_spec,
    with_timeout,
)
from bench.groundtruth import LATE_SECS, Check, check, delivered_facts
from bench.livecheck import BUDGET, COLLECTION, DELAYS, QUOTA, SLOWEST_PERIOD
from bench.results import Context, Report, bench_command, parse_time

NAME = "outage"
RATE = 5.0  # live rows per second
SLOW_SECS = 5.0  # the slow phase's answer time
RSS_EVERY = 5.0
RSS_GROWTH_MIB = 8.0  # "flat": growth after the first minute
READ_SECS = 60.0  # settle delay (30 s) + poll (15 s) + a re-sweep's reach: rows read by then


@dataclass(frozen=True)
class Phase:
    """One stretch of the receiver's behaviour."""

    name: str  # healthy, refused, 503, slow, recovered
    secs: float


def phases(smoke: bool) -> list[Phase]:
    """The receiver's timeline: 10 minutes down in the full run."""
    down = 6.0 if smoke else 200.0
    return [
        Phase("healthy", 10.0 if smoke else 60.0),
        Phase("refused", down),
        Phase("503", down),
        Phase("slow", down + (2.0 if smoke else 0.0)),
        Phase("recovered", 15.0 if smoke else 240.0),
    ]


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # the port is taken again after the refused phase
    daemon_threads = True


class Receiver:
    """The HTTP sink's far end: a real server whose behaviour the benchmark switches.

    ``refused`` closes the listening socket (nothing on the port); ``503`` answers 503 to
    every request; ``slow`` keeps each request ``SLOW_SECS`` before answering 200;
    ``healthy`` answers 200 at once. Accepted NDJSON lines are kept with their arrival time.
    """

    def __init__(self, port: int) -> None:
        """Listen on ``port`` (healthy)."""
        self.port = port
        self.mode = "healthy"
        self.lines: list[tuple[float, bytes]] = []
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._listen()

    @property
    def url(self) -> str:
        """Where the collector posts."""
        return f"http://127.0.0.1:{self.port}/ingest"

    def switch(self, mode: str) -> None:
        """Enter phase ``mode`` (``refused`` stops listening; the others listen)."""
        if mode == "refused":
            self._close()
        elif self._server is None:
            self._listen()
        self.mode = mode

    def _listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = receiver.mode
                with receiver._lock:
                    receiver.requests[mode] = receiver.requests.get(mode, 0) + 1
                if mode == "503":
                    self._answer(503, b"maintenance")
                    return
                if mode == "slow":
                    time.sleep(SLOW_SECS)
                arrived = time.time()
                with receiver._lock:
                    receiver.lines.extend((arrived, line) for line in body.splitlines() if line)
                self._answer(200, b"ok")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        """Stop listening for good."""
        self._close()

    def events(self) -> list[dict[str, Any]]:
        """Every accepted line, decoded, with ``_arrived`` (epoch seconds)."""
        with self._lock:
            kept = list(self.lines)
        out = []
        for arrived, line in kept:
            event = orjson.loads(line)
            event["_arrived"] = arrived
            out.append(event)
        return out


@dataclass
class Scrape:
    """What the collector's endpoints said at one moment."""

    at: float
    ready: bool | None = None
    problems: list[str] = field(default_factory=list)
    queued: dict[str, float] = field(default_factory=dict)  # pushed - popped, per sink
    sent: dict[str, float] = field(default_factory=dict)
    sink_retries: float = 0.0
    max_lag_secs: float = 0.0
    page_failing: dict[str, str] = field(default_factory=dict)  # status page "Failing for"
    page_queued: dict[str, str] = field(default_factory=dict)
    file_lines: int = 0
    web_lines: int = 0
    error: str = ""

    def summary(self) -> str:
        """One line for the report."""
        if self.error:
            return f"endpoints unreachable ({self.error})"
        ready = "ready" if self.ready else "not ready: " + "; ".join(self.problems)
        sinks = ", ".join(
            f"{name} queued {self.queued.get(name, 0):,.0f} events, sent "
            f"{self.sent.get(name, 0):,.0f}, page says failing for "
            f"{self.page_failing.get(name, '?')}"
            for name in ("web", "file")
        )
        return (
            f"/readyz {ready}; /metrics: {sinks}; sink retries {self.sink_retries:,.0f}; "
            f"max checkpoint_lag_seconds {self.max_lag_secs:,.0f}; lines so far: web "
            f"{self.web_lines:,}, file {self.file_lines:,}"
        )


_SINK_ROW = re.compile(r'<tr class="sink" data-sink="([^"]+)">(.*?)</tr>')
_FAILING = re.compile(r'<td class="failing">([^<]*)</td>')
_QUEUED = re.compile(r'<td class="queued num" data-value="([^"]*)">')


def scrape(base: str, receiver: Receiver, file_path: Path) -> Scrape:
    """``/readyz``, ``/metrics`` and ``/`` of the running collector."""
    out = Scrape(at=time.time())
    out.web_lines = len(receiver.lines)
    out.file_lines = _count_lines(file_path)
    try:
        ready = httpx.get(f"{base}/readyz", timeout=10)
        body = ready.json()
        out.ready, out.problems = bool(body["ready"]), list(body["problems"])
        text = httpx.get(f"{base}/metrics", timeout=10).text
        page = httpx.get(f"{base}/", timeout=10).text
    except (httpx.HTTPError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    pushed: dict[str, float] = {}
    popped: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "buffer_pushed_events_total":
                pushed[labels["sink"]] = sample.value
            elif sample.name == "buffer_popped_events_total":
                popped[labels["sink"]] = sample.value
            elif sample.name == "component_sent_events_total":
                out.sent[labels["sink"]] = sample.value
            elif sample.name == "component_errors_total" and labels.get("error_type") == (
                "sink_retry"
            ):
                out.sink_retries += sample.value
            elif sample.name == "checkpoint_lag_seconds":
                out.max_lag_secs = max(out.max_lag_secs, sample.value)
    out.queued = {name: pushed[name] - popped.get(name, 0.0) for name in pushed}
    for name, cells in _SINK_ROW.findall(page):
        failing = _FAILING.search(cells)
        queued = _QUEUED.search(cells)
        out.page_failing[name] = failing.group(1) if failing else "?"
        out.page_queued[name] = queued.group(1) if queued else "?"
    return out


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


class RssSampler:
    """The collector's RSS every ``RSS_EVERY`` s, as (epoch seconds, MiB)."""

    def __init__(self, pid: int) -> None:
        """Start sampling ``pid``."""
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), proc_rss_mib(self.pid)))
            except OSError:
                return
            self._stop.wait(RSS_EVERY)

    def stop(self) -> list[tuple[float, float]]:
        """Stop and return the samples."""
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples


def _config(folder: Path, emulator_url: str, receiver: Receiver, health_port: int) -> Path:
    collection = {"initial_lookback_secs": 900.0, **COLLECTION}
    path = collector_config(folder, emulator_url, collection=collection, budget=BUDGET)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sinks"][0]["payload"] = "envelope"
    data["sinks"].append(
        {"type": "http", "name": "web", "url": receiver.url, "payload": "envelope"}
    )
    data["observability"] = {"listen": f"127.0.0.1:{health_port}"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Timeline:
    """When each phase began (epoch seconds) and what was scraped in it."""

    begins: dict[str, float] = field(default_factory=dict)
    scrapes: dict[str, list[Scrape]] = field(default_factory=dict)


def _drive(
    proc: subprocess.Popen[bytes],
    plan: list[Phase],
    receiver: Receiver,
    base: str,
    file_path: Path,
) -> Timeline:
    """Switch the receiver through ``plan``, scraping in the middle and at the end of each."""
    timeline = Timeline()
    for phase in plan:
        receiver.switch(phase.name if phase.name != "recovered" else "healthy")
        begin = time.time()
        timeline.begins[phase.name] = begin
        kept = timeline.scrapes.setdefault(phase.name, [])
        for at in (phase.secs / 2, phase.secs - min(3.0, phase.secs / 4)):
            _sleep_until(proc, begin + at)
            kept.append(scrape(base, receiver, file_path))
        _sleep_until(proc, begin + phase.secs)
    return timeline


def _sleep_until(proc: subprocess.Popen[bytes], moment: float) -> None:
    while (left := moment - time.time()) > 0:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited early with {proc.returncode}")
        time.sleep(min(0.5, left))


def _caught_up(
    events: list[dict[str, Any]], truth: list[dict[str, Any]], read_before: float
) -> float | None:
    """When the last row the collector had to read before ``read_before`` first arrived.

    Those rows: visible (on time: within ``LATE_SECS`` of receipt) at least ``READ_SECS``
    before ``read_before``, so the live lane or the first re-sweep had read them. None when
    one of them never arrived.
    """
    arrived: dict[tuple[str, str], float] = {}
    for event in events:
        record = event["record"]
        key = (record["id"], record["recipientAddress"].lower())
        arrived[key] = min(arrived.get(key, event["_arrived"]), event["_arrived"])
    last = 0.0
    for row in truth:
        received = parse_time(row["receivedDateTime"])
        visible = parse_time(row["history"][0]["visible_at"])
        if visible - received > LATE_SECS or visible > read_before - READ_SECS:
            continue
        got = arrived.get((row["id"], row["recipientAddress"].lower()))
        if got is None:
            return None
        last = max(last, got)
    return last


_RETRY_EVENT = "Sink delivery failed; retrying."


def _retries_by_phase(log: Path, timeline: Timeline) -> dict[str, tuple[int, list[str], float]]:
    """Per phase: the sink retry warnings logged, their distinct reasons, the longest wait."""
    order = sorted(timeline.begins.items(), key=lambda item: item[1])
    out: dict[str, tuple[int, list[str], float]] = {name: (0, [], 0.0) for name, _ in order}
    for line in log.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if entry.get("event") != _RETRY_EVENT or "timestamp" not in entry:
            continue
        at = parse_time(entry["timestamp"])
        phase = next((n for n, b in reversed(order) if at >= b), order[0][0])
        count, reasons, wait = out[phase]
        reason = f"{entry.get('sink')}: {entry.get('reason')}"
        if reason not in reasons:
            reasons.append(reason)
        out[phase] = (count + 1, reasons, max(wait, float(entry.get("retry_in_secs", 0.0))))
    return out


def run(ctx: Context) -> Report:
    """Break the HTTP sink for 10 minutes (smoke: 20 s) and report what happened."""
    plan = phases(ctx.smoke)
    total = sum(p.secs for p in plan)
    history_secs = 600.0
    settings = {
        "seed": 18,
        "history_secs": history_secs,
        "live_rows_per_sec": RATE,
        "live_secs": total + 600,
        **DELAYS,
        "tenants": [tenant_spec(0, int(RATE * history_secs), quota=QUOTA, window=300.0)],
    }
    emulator = EmulatorProcess(ctx.folder("emulator"), settings).start()
    receiver = Receiver(free_port())
    folder = ctx.workdir / "collector"
    health_port = free_port()
    config = _config(folder, emulator.url, receiver, health_port)
    file_path = folder / "out" / "events.jsonl"
    base = f"http://127.0.0.1:{health_port}"
    try:
        log = (folder / "collector.log").open("ab")
        started_mono = time.monotonic()
        started = time.time()
        proc = subprocess.Popen(
            collector_command(config), stdout=log, stderr=log, env=collector_env(ctx.src)
        )
        log.close()
        peak = PeakRss(proc.pid)
        rss = RssSampler(proc.pid)
        timer = with_timeout(proc, total + 300)
        try:
            timeline = _drive(proc, plan, receiver, base, file_path)
            stopped = time.time()
            proc.send_signal(signal.SIGTERM)
            result = reap(proc, started_mono, peak)
        finally:
            timer.cancel()
            samples = rss.stop()
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        if result.returncode != 0:
            raise RuntimeError(
                f"collector exited {result.returncode}: {collector_log_tail(folder)}"
            )
        truth_rows = list(emulator.ground_truth(0))
    finally:
        receiver.stop()
        emulator.stop()
    web_events = receiver.events()
    first_start = started - 900.0 + 5
    cutoff = stopped - SLOWEST_PERIOD - 30
    web = check(
        truth_rows,
        delivered_facts(web_events),
        first_start=first_start,
        cutoff=cutoff,
        fresh_from=started,
    )
    file = check(
        truth_rows,
        delivered_facts(output_events(folder)),
        first_start=first_start,
        cutoff=cutoff,
        fresh_from=started,
    )
    retries = _retries_by_phase(folder / "collector.log", timeline)
    report = _report(ctx, plan, timeline, web, file, web_events, truth_rows, samples, result)
    report.add(
        "requests the receiver saw per phase",
        ", ".join(f"{mode}: {n}" for mode, n in sorted(receiver.requests.items())),
        command=bench_command(NAME, ctx.smoke),
    )
    for name, (count, reasons, wait) in retries.items():
        if count:
            report.notes.append(
                f'Log in phase `{name}`: {count} "{_RETRY_EVENT}" warnings, longest wait '
                f"{wait:.0f} s; reasons: {'; '.join(reasons[:3])}."
            )
    return report


def _report(
    ctx: Context,
    plan: list[Phase],
    timeline: Timeline,
    web: Check,
    file: Check,
    web_events: list[dict[str, Any]],
    truth_rows: list[dict[str, Any]],
    samples: list[tuple[float, float]],
    result: Any,
) -> Report:
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    down = sum(p.secs for p in plan if p.name in ("refused", "503", "slow"))
    report.add(
        f"HTTP sink after {down / 60:.1f} min down: completeness",
        web.completeness(),
        target="0 / 0 / 0",
        ok=web.clean,
        command=cmd,
    )
    report.add(
        "file sink meanwhile: completeness",
        file.completeness(),
        target="0 / 0 / 0",
        ok=file.clean,
        command=cmd,
    )
    recovered = timeline.begins["recovered"]
    slow_from = timeline.begins["slow"]
    done = _caught_up(web_events, truth_rows, slow_from)
    if done is None:
        value = "never (a row read before the sink came back never arrived)"
    elif done < timeline.begins["refused"]:
        value = "all before the outage (the phases were too short to build a backlog)"
    else:
        value = (
            f"{max(0.0, done - slow_from):.0f} s after the first accepted request (slow "
            f"phase, {SLOW_SECS:g} s per answer); {max(0.0, done - recovered):.0f} s after "
            "the receiver was healthy again"
        )
    report.add(
        "backlog delivered (rows read before the sink accepted again)",
        value,
        target="all",
        ok=done is not None,
        command=cmd,
    )
    first_minute = samples[0][0] + (20.0 if ctx.smoke else 60.0) if samples else 0.0
    after = [mib for at, mib in samples if at >= first_minute]
    if after:
        growth = max(after) - after[0]
        report.add(
            "collector RSS growth after the first minute (sampled every 5 s)",
            f"{growth:+.1f} MiB (from {after[0]:.0f} to a peak of {max(after):.0f} MiB; "
            f"{len(samples)} samples)",
            target=f"≤ {RSS_GROWTH_MIB:g} MiB",
            ok=growth <= RSS_GROWTH_MIB,
            command=cmd,
        )
    for phase in plan:
        last = timeline.scrapes[phase.name][-1]
        report.notes.append(f"End of phase `{phase.name}` ({phase.secs:.0f} s): {last.summary()}.")
    report.notes += [
        f"Collector process: CPU {result.cpu_secs:.1f} s, peak RSS {result.max_rss_mib:.0f} MiB, "
        f"exit {result.returncode} after SIGTERM.",
        "Settings: collector defaults (budget 80 per 300 s, sink retry backoff 1 s doubling to "
        "60 s, queue 8 batches of up to 5,000 events per sink) except `horizon_secs: 3600` and "
        f"`initial_lookback_secs: 900`; emulator {RATE:g} rows/s with `{DELAYS}`.",
        "The file sink shares the pipeline: a page is acknowledged when every sink has it, "
        "so once the HTTP sink's queue is full the collector stops reading and the file sink "
        "waits too (head-of-line), then both catch up.",
    ]
    if web.missing_examples:
        report.notes.append(f"Missing (HTTP): {web.missing_examples[:3]}.")
    return report
