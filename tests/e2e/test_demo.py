"""``o365collector demo``: the emulator, a live run, and the same events raw, ECS and OCSF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


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
