"""Read every RWS-shaped peer input (samples and fixtures) into (source, records) pairs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from o365collector.sources.reporting.dates import canonical_date
from o365collector.sources.reporting.envelope import parse_envelope, read_envelope
from o365collector.sources.reporting.records import record_key, record_time
from o365collector.streams.catalog import CATALOG
from support.shared import FIXTURES, SAMPLES

MESSAGE_TRACE = CATALOG["MessageTrace"]

ENVELOPE_SAMPLES = (
    "elastic_rws_messagetrace_jsonlight.json",
    "sekoia_rws_messagetrace_verbose.json",
    "sekoia_docs_rws_messagetrace_verbose.json",
    "logzio_rws_messagetrace_synthetic.json",
)


def normalize(record: dict[str, Any]) -> dict[str, str]:
    """What the collector makes of a MessageTrace row: its identity and its times, as UTC."""
    trace, recipient, status = record_key(MESSAGE_TRACE, record)
    moment = record_time(MESSAGE_TRACE, record)
    return {
        "MessageTraceId": trace,
        "RecipientAddress": recipient,
        "Status": status,
        "Received": "" if moment is None else moment.isoformat(),
        "StartDate": canonical_date(record.get("StartDate")),
        "EndDate": canonical_date(record.get("EndDate")),
    }


def _lines(path: Path) -> Iterator[Any]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield orjson.loads(line)


def _records(item: Any) -> list[dict[str, Any]]:
    """A line is a page (an envelope) or one row."""
    if isinstance(item, dict) and ("value" in item or "d" in item):
        return read_envelope(item).records
    assert isinstance(item, dict)
    return [item]


def rws_inputs() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every RWS MessageTrace input: (name relative to ../shared, records)."""
    for name in ENVELOPE_SAMPLES:
        path = SAMPLES / name
        yield f"reference/samples/{name}", parse_envelope(path.read_bytes()).records
    for path in sorted((FIXTURES / "sekoia-intake-formats" / "message-trace").glob("*.json")):
        message = orjson.loads(path.read_bytes())["input"]["message"]
        yield _rel(path), [orjson.loads(message)]
    demisto = FIXTURES / "demisto-content"
    for path in sorted(demisto.glob("message_trace_*.json")):
        yield _rel(path), parse_envelope(path.read_bytes()).records
    for path in sorted(demisto.glob("format_message_trace_results*.json")):
        yield _rel(path), list(orjson.loads(path.read_bytes()))
    elastic = FIXTURES / "elastic-integrations"
    logs = [
        elastic / "data_stream/log/_dev/test/pipeline/test-log.log",
        *sorted((elastic / "_dev/deploy/docker/sample_logs").glob("*.log")),
    ]
    for path in logs:
        yield _rel(path), [r for item in _lines(path) for r in _records(item)]
    sample = orjson.loads((elastic / "data_stream/log/sample_event.json").read_bytes())
    yield (
        _rel(elastic / "data_stream/log/sample_event.json"),
        [orjson.loads(sample["event"]["original"])],
    )
    config = elastic / "_dev/deploy/docker/files/config.yml"
    bodies = [
        parse_envelope(response["body"].encode())
        for rule in yaml.safe_load(config.read_text(encoding="utf-8"))["rules"]
        if rule["path"].endswith("/MessageTrace")
        for response in rule["responses"]
    ]
    yield _rel(config), [r for page in bodies for r in page.records]


def _rel(path: Path) -> str:
    return str(path.relative_to(FIXTURES.parent))
