"""The raw limit: what parsing the same Graph pages and writing the same JSON lines costs.

The pages are fetched once from the emulator and kept as bytes; only the work after the
network is timed, in this process (CPU time of this process while it runs nothing else):

- ``envelope``: ``orjson.loads`` of each page, the event id (blake2b of tenant id, stream,
  trace id, recipient and status, as the collector computes it), the same envelope
  ``{"event_id", "tenant", "stream", "delivered_at", "record"}`` written with
  ``orjson.dumps``, one write + flush + fsync per page (the collector fsyncs each batch);
- ``floor``: ``orjson.loads`` + ``orjson.dumps`` of each record and one write per page,
  nothing else — the least any Python collector could spend.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson

from bench.common import EmulatorProcess
from bench.results import Report

GRAPH_PATH = "/v1.0/admin/exchange/tracing/messageTraces"


def fetch_pages(
    emulator: EmulatorProcess, index: int, start: datetime, end: datetime, top: int = 5000
) -> list[bytes]:
    """Every page of ``[start, end]`` for tenant ``index``, as the bytes Graph sent."""
    flt = (
        f"receivedDateTime ge {start.strftime('%Y-%m-%dT%H:%M:%SZ')} and "
        f"receivedDateTime le {end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )
    url: str | None = f"{emulator.url}{GRAPH_PATH}?$filter={quote(flt, safe='')}&$top={top}"
    headers = {"Authorization": f"Bearer {emulator.token(index)}"}
    pages: list[bytes] = []
    with httpx.Client(headers=headers, timeout=120) as client:
        while url is not None:
            answer = client.get(url)
            answer.raise_for_status()
            pages.append(answer.content)
            url = orjson.loads(answer.content).get("@odata.nextLink")
    return pages


@dataclass
class RawResult:
    """CPU and wall seconds of one pass over the pages, and the records it wrote."""

    records: int
    cpu_secs: float
    wall_secs: float

    @property
    def cpu_us_per_event(self) -> float:
        """CPU microseconds per record."""
        return self.cpu_secs / max(1, self.records) * 1e6


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope_pass(pages: list[bytes], out: Path, tenant: str, tenant_id: str) -> RawResult:
    """Parse, hash, envelope, dump, write and fsync each page (the collector's output)."""
    stream = "message_trace"
    dumps, loads, newline = orjson.dumps, orjson.loads, orjson.OPT_APPEND_NEWLINE
    records = 0
    cpu, wall = time.process_time(), time.perf_counter()
    with out.open("ab") as file:
        for body in pages:
            stamp = _stamp()
            chunks = []
            for record in loads(body)["value"]:
                material = "\x1f".join(
                    (
                        tenant_id,
                        stream,
                        str(record.get("id", "")),
                        str(record.get("recipientAddress", "")).lower(),
                        str(record.get("status", "")).lower(),
                    )
                )
                event = {
                    "event_id": blake2b(material.encode(), digest_size=16).hexdigest(),
                    "tenant": tenant,
                    "stream": stream,
                    "delivered_at": stamp,
                    "record": record,
                }
                chunks.append(dumps(event, option=newline))
            records += len(chunks)
            file.write(b"".join(chunks))
            file.flush()
            os.fsync(file.fileno())
    return RawResult(records, time.process_time() - cpu, time.perf_counter() - wall)


def floor_pass(pages: list[bytes], out: Path) -> RawResult:
    """Parse each page and write each record back as a JSON line, nothing more."""
    dumps, loads, newline = orjson.dumps, orjson.loads, orjson.OPT_APPEND_NEWLINE
    records = 0
    cpu, wall = time.process_time(), time.perf_counter()
    with out.open("ab") as file:
        for body in pages:
            chunks = [dumps(record, option=newline) for record in loads(body)["value"]]
            records += len(chunks)
            file.write(b"".join(chunks))
    return RawResult(records, time.process_time() - cpu, time.perf_counter() - wall)


def add_rows(report: Report, envelope: RawResult, floor: RawResult, cmd: str) -> None:
    """The raw limit's and the floor's rows, as every benchmark beside them shows them."""
    report.add(
        "raw limit: orjson parse + envelope + event id + write/fsync",
        f"{envelope.cpu_us_per_event:.1f} µs/event ({envelope.records:,} records)",
        command=cmd,
    )
    report.add(
        "raw floor: orjson parse + dumps + write",
        f"{floor.cpu_us_per_event:.1f} µs/event",
        command=cmd,
    )
