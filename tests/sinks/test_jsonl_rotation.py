"""JSON-lines sink rotation: a batch never makes a file exceed ``max_bytes``.

A batch is split at line boundaries across rotations; only a single line longer than
``max_bytes`` may exceed it, and it then sits alone in its own file.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from o365collector.event import Event
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.jsonl import JsonlSink

MakeSink = Callable[..., JsonlSink]


def _event(number: int, pad: str = "") -> Event:
    return Event(
        tenant="contoso",
        stream="message_trace",
        event_id=f"id-{number:06d}",
        record={"id": f"trace-{number}", "pad": pad},
    )


def _files_oldest_first(path: Path) -> list[Path]:
    """``path.N`` … ``path.1``, then ``path``: the order the lines were written in."""
    rotated = [p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()]
    rotated.sort(key=lambda p: -int(p.suffix[1:]))
    return [*rotated, path] if path.exists() else rotated


def _ids(file: Path) -> list[str]:
    return [str(json.loads(line)["event_id"]) for line in file.read_bytes().split(b"\n") if line]


def _all_ids(path: Path) -> list[str]:
    return [eid for file in _files_oldest_first(path) for eid in _ids(file)]


@pytest.fixture
async def make_sink() -> AsyncIterator[MakeSink]:
    sinks: list[JsonlSink] = []

    def make(path: Path, *, max_bytes: int, keep_files: int = 1000) -> JsonlSink:
        sink = JsonlSink("file", path, max_bytes=max_bytes, keep_files=keep_files)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        await sink.close()


async def test_many_batches_never_overflow_and_lose_nothing(
    tmp_path: Path, make_sink: MakeSink
) -> None:
    path = tmp_path / "events.jsonl"
    sink = make_sink(path, max_bytes=2048)
    await sink.start()
    chance = random.Random(13)
    sent: list[str] = []
    number = 0
    for _ in range(120):
        size = chance.choice([1, 2, 5, 17, 40])
        # Multi-byte padding: the limit is in bytes, not characters.
        batch = [_event(number + i, "é" * chance.randint(0, 90)) for i in range(size)]
        number += size
        assert (await sink.send(batch)).status is DeliveryStatus.DELIVERED
        sent.extend(e.event_id for e in batch)
    files = _files_oldest_first(path)
    assert len(files) > 20  # it rotated many times, often inside a batch
    sizes = {f.name: f.stat().st_size for f in files}
    assert all(size <= 2048 for size in sizes.values()), sizes
    assert all(f.read_bytes().endswith(b"\n") for f in files)  # only whole lines
    assert _all_ids(path) == sent  # in order, none lost, none duplicated


async def test_one_batch_larger_than_the_limit_is_split_across_files(
    tmp_path: Path, make_sink: MakeSink
) -> None:
    path = tmp_path / "events.jsonl"
    sink = make_sink(path, max_bytes=1024)
    await sink.start()
    batch = [_event(i, "z" * 100) for i in range(60)]  # ~10 KB in one batch
    assert (await sink.send(batch)).status is DeliveryStatus.DELIVERED
    files = _files_oldest_first(path)
    assert len(files) >= 8
    assert all(f.stat().st_size <= 1024 for f in files)
    assert _all_ids(path) == [e.event_id for e in batch]


async def test_a_file_reopened_near_the_limit_is_filled_not_overflowed(
    tmp_path: Path, make_sink: MakeSink
) -> None:
    path = tmp_path / "events.jsonl"
    first = make_sink(path, max_bytes=1500)
    await first.start()
    await first.send([_event(i, "a" * 100) for i in range(10)])
    await first.close()
    second = make_sink(path, max_bytes=1500)
    await second.start()
    await second.send([_event(i, "b" * 100) for i in range(10, 40)])
    files = _files_oldest_first(path)
    assert all(f.stat().st_size <= 1500 for f in files)
    assert _all_ids(path) == [f"id-{i:06d}" for i in range(40)]


async def test_a_line_longer_than_the_limit_goes_alone_into_its_own_file(
    tmp_path: Path, make_sink: MakeSink
) -> None:
    path = tmp_path / "events.jsonl"
    sink = make_sink(path, max_bytes=1024)
    await sink.start()
    await sink.send([_event(0, "s" * 50)])
    batch = [_event(1, "s" * 50), _event(2, "L" * 3000), _event(3, "s" * 50)]
    assert (await sink.send(batch)).status is DeliveryStatus.DELIVERED
    await sink.send([_event(4, "s" * 50)])
    files = _files_oldest_first(path)
    per_file = [_ids(f) for f in files]
    assert ["id-000002"] in per_file  # the long line, alone
    for file, ids in zip(files, per_file, strict=True):
        if ids != ["id-000002"]:
            assert file.stat().st_size <= 1024, (file.name, ids)
        else:
            assert file.stat().st_size > 1024
    assert _all_ids(path) == [f"id-{i:06d}" for i in range(5)]


async def test_rotation_inside_a_batch_still_keeps_at_most_keep_files(
    tmp_path: Path, make_sink: MakeSink
) -> None:
    path = tmp_path / "events.jsonl"
    sink = make_sink(path, max_bytes=1024, keep_files=2)
    await sink.start()
    batch = [_event(i, "k" * 100) for i in range(80)]
    await sink.send(batch)
    assert {f.name for f in _files_oldest_first(path)} == {
        "events.jsonl",
        "events.jsonl.1",
        "events.jsonl.2",
    }
    kept = _all_ids(path)
    assert kept[-1] == "id-000079"
    first = int(kept[0].split("-")[1])
    assert kept == [f"id-{i:06d}" for i in range(first, 80)]  # the newest, contiguous
