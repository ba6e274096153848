"""``run_summary``: progress lines and bars, windows left and ETA, and the end-of-run summary."""

from __future__ import annotations

import io
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from o365collector.observability import metrics
from o365collector.observability.progress import Progress
from o365collector.run_summary import (
    Goal,
    PlainConsole,
    ProgressDisplay,
    Tracker,
    print_summary,
    stderr_console,
    summarize,
    summary_lines,
)

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
PROGRESS_LINE = re.compile(r"^progress: \S+ windows \d+/\d+ rows [\d,]+ eta \S+$")


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _commit(tenant: str, stream: str, windows: int) -> None:
    metrics.COMMITS.labels(tenant=tenant, stream=stream).inc(windows)


def test_windows_left_rows_and_eta_from_the_marks() -> None:
    progress, ticks = Progress(), Ticks()
    p = progress.stream("unit-eta", "message_trace")
    p.watermark = NOW - timedelta(hours=40)  # where the live lane starts
    goal = Goal({"live": NOW}, window_secs=3600)
    tracker = Tracker(progress, lambda _: goal, clock=ticks)
    (snap,) = tracker.snapshots()  # the start: where the stream stood when first seen
    assert (snap.windows_done, snap.windows_left, snap.eta_secs) == (0, 40, None)
    ticks.now = 10.0
    _commit("unit-eta", "message_trace", 10)
    p.lane_marks["live"] = NOW - timedelta(hours=30)
    p.events = 5000
    (snap,) = tracker.snapshots()
    assert (snap.windows_done, snap.windows_left, snap.rows) == (10, 30, 5000)
    assert snap.eta_secs == 30.0  # 10 hours read in 10 s: 30 hours left take 30 s
    p.state = "stopped"
    (snap,) = tracker.snapshots()
    assert (snap.windows_left, snap.done_secs, snap.eta_secs) == (0, snap.total_secs, 0.0)


def test_a_lane_without_a_commit_counts_from_its_first_one() -> None:
    progress = Progress()
    p = progress.stream("unit-final", "message_trace")
    p.watermark = NOW - timedelta(hours=2)
    goal = Goal({"live": NOW, "final": NOW - timedelta(days=2)}, window_secs=3600)
    tracker = Tracker(progress, lambda _: goal)
    (snap,) = tracker.snapshots()
    assert snap.windows_left == 2  # live only: final has not committed yet
    p.lane_marks["final"] = NOW - timedelta(days=3)
    (snap,) = tracker.snapshots()
    assert snap.windows_left == 2 + 24


def test_plain_lines_every_period_and_once_at_each_end() -> None:
    progress, ticks = Progress(), Ticks()
    a = progress.stream("unit-plain", "message_trace")
    b = progress.stream("unit-plain", "rws.MailTrafficSummary")
    a.watermark = b.watermark = NOW - timedelta(hours=4)
    tracker = Tracker(progress, lambda _: Goal({"live": NOW}, 3600), clock=ticks)
    out = io.StringIO()
    display = ProgressDisplay(Console(file=out), every_secs=10, out=out, clock=ticks)
    assert display.plain  # not a terminal
    with display.shown():
        display.update(tracker.snapshots())
        assert out.getvalue() == ""  # nothing before the first period
        ticks.now = 10.0
        a.lane_marks["live"], a.events = NOW - timedelta(hours=2), 1234
        display.update(tracker.snapshots())
        first = out.getvalue().splitlines()
        assert first[0] == "progress: unit-plain/message_trace windows 0/2 rows 1,234 eta 10s"
        assert all(PROGRESS_LINE.match(line) for line in first) and len(first) == 2
        a.state = "stopped"
        display.update(tracker.snapshots())
        b.state = "failed"
        display.update(tracker.snapshots(), final=True)
    lines = out.getvalue().splitlines()
    assert lines[2:] == [
        "progress: unit-plain/message_trace done windows 0/0 rows 1,234",
        "progress: unit-plain/rws.MailTrafficSummary failed windows 0/0 rows 0",
    ]


def _summary_progress() -> Progress:
    progress = Progress()
    ok = progress.stream("contoso-europe-west", "message_trace")
    ok.events, ok.pages, ok.state = 17_120, 41, "stopped"
    bad = progress.stream("fabrikam", "rws.DlpDetectionsReport")
    bad.state, bad.error = "failed", "token endpoint https://login.example/t/token unreachable"
    return progress


def test_the_summary_names_each_stream_and_tenant() -> None:
    summary = summarize(
        _summary_progress(),
        windows={("contoso-europe-west", "message_trace"): 40},
        durations={("contoso-europe-west", "message_trace"): 61.24},
        requests={"contoso-europe-west": 44, "fabrikam": 3},
        duration_secs=61.4,
    )
    assert [s.stream for s in summary.failed] == ["rws.DlpDetectionsReport"]
    assert summary_lines(summary) == [
        "summary: contoso-europe-west/message_trace ok rows 17,120 windows 40 pages 41 took 61.2s",
        "summary: fabrikam/rws.DlpDetectionsReport failed rows 0 windows 0 pages 0 took — "
        "error: token endpoint https://login.example/t/token unreachable",
        "summary: tenant contoso-europe-west requests 44",
        "summary: tenant fabrikam requests 3",
        "summary: 1 stream(s) ok, 1 failed in 61.4s",
    ]


def test_piped_the_summary_is_written_as_rich_wrote_it_without_rich(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = summarize(
        _summary_progress(), windows={}, durations={}, requests={"t": 3}, duration_secs=1.0
    )
    out = io.StringIO()
    print_summary(summary, Console(file=out))  # rich on a file: not a terminal
    print_summary(summary, PlainConsole())
    assert capsys.readouterr().err == out.getvalue()


def test_stderr_console_is_plain_unless_rich_could_see_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # piped
    assert isinstance(stderr_console(), PlainConsole)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich would draw: rich decides
    assert isinstance(stderr_console(), Console)
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert isinstance(stderr_console(), Console)


def test_the_summary_table_at_80_columns_cuts_no_name() -> None:
    summary = summarize(
        _summary_progress(), windows={}, durations={}, requests={}, duration_secs=1.0
    )
    console = Console(width=80, record=True, force_terminal=True)
    print_summary(summary, console)
    text = console.export_text()
    assert "…" not in text
    assert "contoso-europe-west/message_trace" in text
    assert "fabrikam/rws.DlpDetectionsReport" in text
    assert text.splitlines()[-1] == "1 stream(s) ok, 1 failed in 1.0s"


def test_the_progress_bar_at_80_columns_cuts_no_name() -> None:
    progress, ticks = Progress(), Ticks()
    for name in ("message_trace", "rws.DlpDetectionsReport"):
        p = progress.stream("contoso-europe-west", name)
        p.watermark = NOW - timedelta(days=1)
    tracker = Tracker(progress, lambda _: Goal({"live": NOW}, 3600), clock=ticks)
    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=True, width=80, no_color=True))
    assert not display.plain
    with display.shown():
        display.update(tracker.snapshots())
        ticks.now = 100.0
        for p in progress.streams.values():
            p.lane_marks["live"], p.events = NOW - timedelta(hours=10), 123_456
        display.update(tracker.snapshots())
    last = out.getvalue().split("\r")[-1]
    assert "…" not in last
    assert "contoso-europe-west/rws.DlpDetectionsReport" in last
    assert "windows 0/10 rows 123,456 eta 1m" in last
