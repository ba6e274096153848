"""JSON-lines sink: exact records, metadata, rotation without loss, start errors."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from o365collector.errors import SinkError
from o365collector.event import Event
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.jsonl import JsonlSink


def _event(i: int, **record: object) -> Event:
    return Event(
        tenant="contoso",
        stream="message_trace",
        event_id=f"id-{i:05d}",
        record={"id": f"trace-{i}", **record},
    )


def _lines(path: Path) -> list[dict[str, object]]:
    # Split on b"\n" only: U+2028 inside a JSON string is legal and must not split a line.
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture
async def sink_for() -> AsyncIterator[Callable[..., JsonlSink]]:
    sinks: list[JsonlSink] = []

    def make(path: Path, *, max_bytes: int = 10_000_000, keep_files: int = 5) -> JsonlSink:
        sink = JsonlSink("file", path, max_bytes=max_bytes, keep_files=keep_files)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        await sink.close()


async def test_lines_carry_metadata_and_untouched_record(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "out" / "events.jsonl"
    sink = sink_for(path)
    await sink.start()
    record = {
        "id": "4a5b6c",
        "subject": "Grüße aus Köln — 日本語 🚀",
        "senderAddress": "ünïcode@exämple.com",
        "body": 'line one\nline "two"\r\n\ttabbed\\back\u2028sep',
        "size": 12345,
        "ratio": 0.25,
        "flags": [True, False, None],
        "nested": {"a": {"b": []}},
        "empty": "",
    }
    event = Event("contoso", "message_trace", "eid-1", record)
    result = await sink.send([event])
    assert result.status is DeliveryStatus.DELIVERED
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1  # newlines inside strings are escaped
    (line,) = _lines(path)
    assert set(line) == {"event_id", "tenant", "stream", "delivered_at", "record"}
    assert line["event_id"] == "eid-1"
    assert line["tenant"] == "contoso"
    assert line["stream"] == "message_trace"
    assert line["record"] == record
    assert isinstance(line["delivered_at"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["delivered_at"])
    assert "日本語".encode() in raw  # UTF-8, not \u escapes


async def test_batches_append_in_order(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "events.jsonl"
    sink = sink_for(path)
    await sink.start()
    await sink.send([_event(0), _event(1)])
    await sink.send([_event(2)])
    assert [line["event_id"] for line in _lines(path)] == ["id-00000", "id-00001", "id-00002"]


async def test_start_appends_to_an_existing_file(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "events.jsonl"
    first = sink_for(path)
    await first.start()
    await first.send([_event(0)])
    await first.close()
    second = sink_for(path)
    await second.start()
    await second.send([_event(1)])
    assert [line["event_id"] for line in _lines(path)] == ["id-00000", "id-00001"]


def _all_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + "*"))


async def test_rotation_loses_no_line(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "events.jsonl"
    sink = sink_for(path, max_bytes=1024, keep_files=50)
    await sink.start()
    total = 0
    for batch in range(30):
        events = [_event(batch * 3 + i, pad="x" * 40) for i in range(3)]
        assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
        total += len(events)
    files = _all_files(path)
    assert len(files) > 3  # it did rotate
    ids: list[str] = []
    # Oldest first: events.jsonl.N … events.jsonl.1, then events.jsonl.
    rotated = sorted((f for f in files if f != path), key=lambda f: -int(f.suffix[1:]))
    for file in [*rotated, path]:
        assert file.stat().st_size <= 1024
        ids.extend(str(line["event_id"]) for line in _lines(file))
    assert len(ids) == total
    assert ids == [f"id-{i:05d}" for i in range(total)]


async def test_rotation_keeps_at_most_keep_files(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "events.jsonl"
    sink = sink_for(path, max_bytes=1024, keep_files=2)
    await sink.start()
    count = 200
    for i in range(count):
        await sink.send([_event(i, pad="y" * 60)])
    files = _all_files(path)
    assert {f.name for f in files} == {"events.jsonl", "events.jsonl.1", "events.jsonl.2"}
    # What is kept is the newest lines, contiguous, ending with the last one sent.
    ids = [
        str(line["event_id"])
        for file in (path.with_name("events.jsonl.2"), path.with_name("events.jsonl.1"), path)
        for line in _lines(file)
    ]
    assert ids[-1] == f"id-{count - 1:05d}"
    first = int(ids[0].split("-")[1])
    assert ids == [f"id-{i:05d}" for i in range(first, count)]


async def test_a_batch_larger_than_a_file_is_split_not_lost(tmp_path: Path, sink_for) -> None:
    path = tmp_path / "events.jsonl"
    sink = sink_for(path, max_bytes=1024, keep_files=50)
    await sink.start()
    events = [_event(i, pad="z" * 100) for i in range(20)]
    await sink.send(events)
    files = _all_files(path)
    assert len(files) > 1
    assert all(f.stat().st_size <= 1024 for f in files)
    ids = sorted(str(line["event_id"]) for f in files for line in _lines(f))
    assert ids == [f"id-{i:05d}" for i in range(20)]


async def test_unwritable_path_on_start(tmp_path: Path, sink_for) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file")
    sink = sink_for(blocker / "events.jsonl")
    with pytest.raises(SinkError) as info:
        await sink.start()
    assert "file" in str(info.value)  # the sink's name
    assert str(blocker / "events.jsonl") in str(info.value)


async def test_directory_as_path_on_start(tmp_path: Path, sink_for) -> None:
    sink = sink_for(tmp_path)
    with pytest.raises(SinkError, match="cannot open"):
        await sink.start()
