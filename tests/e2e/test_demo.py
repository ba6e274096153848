"""``o365collector demo``: the emulator, a live run, and the same events raw, ECS and OCSF."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from o365collector.demo import demo_anchor


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def test_demo_writes_each_event_raw_ecs_and_ocsf(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "o365collector", "demo", "--dir", str(tmp_path), "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    output = tmp_path / "output"
    raw = _lines(output / "events.jsonl")
    ecs = _lines(output / "events.ecs.jsonl")
    ocsf = _lines(output / "events.ocsf.jsonl")
    assert raw, "the demo collected nothing"
    ids = sorted(str(e["event_id"]) for e in raw)
    assert sorted(str(d["event"]["id"]) for d in ecs) == ids  # type: ignore[index]
    assert sorted(str(d["metadata"]["uid"]) for d in ocsf) == ids  # type: ignore[index]
    # The tenant's domain is local: every message has a direction.
    assert all(d["email"].get("direction") for d in ecs)  # type: ignore[attr-defined]
    assert "The first ECS document" in done.stderr


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o365collector", "demo", "--dir", str(workdir), "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_second_demo_in_the_same_folder_repeats_nothing(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    events = tmp_path / "output" / "events.jsonl"
    first_count = len(_lines(events))
    assert first_count, "the first demo collected nothing"
    # The emulator serves the same data again (its anchor is kept in the state folder).
    saved = orjson.loads((tmp_path / "state" / "emulator.json").read_bytes())
    time.sleep(1.5)  # the second emulator starts at another second: only the anchor is kept
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Started afresh" not in second.stderr
    assert orjson.loads((tmp_path / "state" / "emulator.json").read_bytes()) == saved
    both = _lines(events)
    assert len(both) >= first_count  # the output of the first run is kept
    ids = Counter(str(e["event_id"]) for e in both)
    assert [i for i, n in ids.items() if n > 1] == []
    by_row: dict[tuple[str, ...], set[str]] = {}
    for e in both:
        record = e["record"]
        assert isinstance(record, dict)
        row = (
            str(e["stream"]),
            str(record.get("id")),
            str(record.get("recipientAddress", "")).lower(),
            str(record.get("status", "")).lower(),
        )
        by_row.setdefault(row, set()).add(str(e["event_id"]))
    assert {row: got for row, got in by_row.items() if len(got) > 1} == {}


def test_a_demo_past_its_live_data_starts_afresh(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, 8, 30, 15, 123456, tzinfo=UTC)
    anchor, reset = demo_anchor(tmp_path, seed=1, live_secs=86400, now=now)
    assert (anchor, reset) == (now.replace(microsecond=0), False)  # a new folder: no reset
    (tmp_path / "state" / "state.db").write_text("x")
    (tmp_path / "state" / "lock").write_text("")
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "events.jsonl").write_text("{}\n")
    later = now + timedelta(hours=20)
    assert demo_anchor(tmp_path, seed=1, live_secs=86400, now=later) == (anchor, False)
    assert (tmp_path / "state" / "state.db").exists()
    # Another seed, or less than an hour of live rows left: new data, so new state and output.
    assert demo_anchor(tmp_path, seed=2, live_secs=86400, now=later) == (
        later.replace(microsecond=0),
        True,
    )
    assert not (tmp_path / "state" / "state.db").exists()
    assert not (tmp_path / "output").exists()
    assert (tmp_path / "state" / "lock").exists()
    (tmp_path / "state" / "state.db").write_text("x")
    latest = later + timedelta(hours=23, minutes=1)
    assert demo_anchor(tmp_path, seed=2, live_secs=86400, now=latest) == (
        latest.replace(microsecond=0),
        True,
    )
