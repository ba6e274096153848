"""An outage behind the runner: producers are held (bounded), then every event arrives once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pytest_httpserver import HTTPServer
from sinks_servers import CaptureServer
from sinks_support import FakeClock, make_events, split_frames, wait_for
from werkzeug import Request, Response

from o365collector.config.model import RetrySettings
from o365collector.config.sinks import SinkSettings
from o365collector.pipeline.delivery import DeadLetter, Dispatcher, SinkRunner
from o365collector.sinks.factory import build_sink

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
PAGES, PAGE_SIZE, QUEUE, BATCH = 30, 50, 3, 200


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_outage_holds_producers_then_delivers_everything_once(
    tmp_path: Path, clock: FakeClock, httpserver: HTTPServer
) -> None:
    relay = CaptureServer()  # a Devo relay (plain TCP), down at first
    http_up = asyncio.Event()
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        if not http_up.is_set():
            return Response("maintenance", status=503)
        received.extend(json.loads(line) for line in request.get_data().splitlines())
        return Response("ok")

    httpserver.expect_request("/in").respond_with_handler(handle)
    configs = [
        {"type": "devo", "name": "relay", "host": "127.0.0.1", "port": relay.port,
         "transport": "tcp"},
        {"type": "http", "name": "web", "url": httpserver.url_for("/in")},
    ]  # fmt: skip
    retry = RetrySettings(initial_interval_secs=0.5, max_interval_secs=4.0)
    runners = []
    for config in configs:
        sink = build_sink(ADAPTER.validate_python(config), clock)
        await sink.start()
        runners.append(
            SinkRunner(
                sink,
                batch_max_events=BATCH,
                queue_max_batches=QUEUE,
                retry=retry,
                dead_letter=DeadLetter(tmp_path / "dead-letter"),
                clock=clock,
            )
        )
    tasks = [asyncio.create_task(r.run()) for r in runners]
    dispatcher = Dispatcher(runners)
    pages = [make_events(PAGE_SIZE, start=n * PAGE_SIZE) for n in range(PAGES)]
    acknowledged: list[asyncio.Future[None]] = []

    async def produce() -> None:
        for page in pages:
            acknowledged.append(await dispatcher.submit(page))

    producer = asyncio.create_task(produce())
    await eventually(lambda: all(r.queue.full() for r in runners), "queues full")
    await eventually(lambda: len(clock.sleeps) > 20, "several failed attempts")
    # Memory stays bounded: the producer is held; only queued and in-flight pages exist.
    assert not producer.done()
    assert len(acknowledged) <= QUEUE + BATCH // PAGE_SIZE
    assert not any(f.done() for f in acknowledged)

    relay.start()
    http_up.set()
    await asyncio.wait_for(producer, 30)
    await asyncio.wait_for(asyncio.gather(*acknowledged), 30)
    for task in tasks:
        task.cancel()
    for runner in runners:
        await runner.sink.close()

    def relay_records() -> list[dict[str, Any]]:
        return [json.loads(f.split(b": ", 1)[1]) for f in split_frames(relay.data)]

    expected = [e.record["id"] for page in pages for e in page]
    wait_for(lambda: len(relay_records()) >= len(expected), what="relay drained")
    relay.stop()
    assert [r["id"] for r in relay_records()] == expected  # none lost, none twice, in order
    assert [r["id"] for r in received] == expected
    assert [r.delivered for r in runners] == [len(expected)] * 2
    assert not (tmp_path / "dead-letter").exists()
