"""docs/normalization.md's generated parts are what the code does today.

The status and action tables come from ``normalize/status.py``; the per-stream field
lists and samples from the emulator's rows of every stream (``support.emulator_rows``)
through the ECS and OCSF normalizers. The test fails when the file is stale;
``O365_WRITE_DOCS=1 .venv/bin/pytest tests/normalize/test_normalization_docs.py``
rewrites the generated parts in place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from o365collector.event import Event
from o365collector.normalize.normalizer import Normalizer
from o365collector.normalize.status import ACTION_TABLE, STATUS_TABLE
from o365collector.streams.catalog import CATALOG
from support.emulator_rows import (
    GRAPH_DETAIL,
    GRAPH_MESSAGE_TRACE,
    RWS_DETAIL,
    RWS_MESSAGE_TRACE,
    TENANT,
    served_events,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "normalization.md"
LOCAL = {TENANT: ("contoso.com",)}
SECTION = re.compile(r"(<!-- generated: ([a-z-]+) -->\n).*?(<!-- end generated -->)", re.S)
# Order of the per-stream sections: message trace first, then the catalog's order.
EMULATOR_URL = re.compile(r"http://127\.0\.0\.1:\d+")
RWS_HOST = "https://reports.office365.com"
FIRST = (GRAPH_MESSAGE_TRACE, RWS_MESSAGE_TRACE, GRAPH_DETAIL, RWS_DETAIL)


def _streams(served: dict[str, list[Event]]) -> list[str]:
    rest = [f"rws.{name}" for name in CATALOG if f"rws.{name}" in served]
    return [*FIRST, *(key for key in rest if key not in FIRST)]


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def status_table() -> str:
    return _table(
        [
            "status",
            "ECS `event.outcome`",
            "ECS `event.action`",
            "OCSF `status_id`",
            "OCSF `disposition_id`",
            "OCSF `action_id`",
        ],
        (
            (
                f"`{row.name}`",
                row.ecs_outcome,
                f"`{row.ecs_action}`",
                f"{row.ocsf_status_id} {row.ocsf_status}",
                f"{row.ocsf_disposition_id} {row.ocsf_disposition}",
                f"{row.ocsf_action_id} {row.ocsf_action}",
            )
            for row in STATUS_TABLE.values()
        ),
    )


def action_table() -> str:
    return _table(
        ["Action", "ECS `event.type` (with `info`)", "OCSF `disposition_id`", "OCSF `action_id`"],
        (
            (
                f"`{row.name}`",
                row.ecs_type or "—",
                f"{row.ocsf_disposition_id} {row.ocsf_disposition}",
                f"{row.ocsf_action_id} {row.ocsf_action}",
            )
            for row in ACTION_TABLE.values()
        ),
    )


def _flat_keys(doc: dict[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in {"unmapped"}:
            yield from _flat_keys(value, name + ".")
        else:
            yield name


def _namespaced(key: str) -> bool:
    return key.startswith(("o365.", "o365collector.", "unmapped"))


def reports_table(served: dict[str, list[Event]]) -> str:
    ecs, ocsf = Normalizer("ecs", local_domains=LOCAL), Normalizer("ocsf", local_domains=LOCAL)
    rows = []
    for key in _streams(served):
        kinds, classes = set(), set()
        for event in served[key]:
            doc = ecs.document(event)
            part = doc["event"]
            kinds.add(f"{part['kind']} · {', '.join(part['category'])} · {', '.join(part['type'])}")
            found = ocsf.document(event)
            classes.add(
                f"{found['class_uid']} {found['class_name']} · "
                f"{found['activity_id']} {found['activity_name']}"
            )
        rows.append((f"`{key}`", "<br>".join(sorted(kinds)), "<br>".join(sorted(classes))))
    header = ["stream", "ECS kind · category · type (as served)", "OCSF class · activity"]
    note = (
        "\nWhat each stream becomes, over two days of the emulator's rows (activity names "
        "of 99 Other are the row's own event type). Each mapper's module docstring "
        "(`normalize/ecs*.py`, `normalize/ocsf*.py`) gives its field mapping and where it "
        "departs from the reference proposal, and why.\n\n"
    )
    return note + _table(header, rows)


def samples(served: dict[str, list[Event]]) -> str:
    ecs, ocsf = Normalizer("ecs", local_domains=LOCAL), Normalizer("ocsf", local_domains=LOCAL)
    parts = []
    for key in _streams(served):
        events = served[key]
        ecs_fields = sorted({k for e in events for k in _flat_keys(ecs.document(e))})
        ocsf_fields = sorted({k for e in events for k in _flat_keys(ocsf.document(e))})
        sample = events[0]
        parts.append(
            f"\n### `{key}`\n\n"
            f"ECS fields emitted ({len(ecs_fields)}): "
            + ", ".join(f"`{k}`" for k in ecs_fields if not _namespaced(k))
            + "; and under `o365.*`: "
            + ", ".join(f"`{k}`" for k in ecs_fields if k.startswith("o365."))
            + ".\n\n"
            f"OCSF attributes emitted ({len(ocsf_fields)}): "
            + ", ".join(f"`{k}`" for k in ocsf_fields)
            + ".\n\n"
            "<details><summary>raw record, ECS document, OCSF event</summary>\n\n"
            + _json_block(sample.record)
            + _json_block(ecs.document(sample))
            + _json_block(ocsf.document(sample))
            + "</details>\n"
        )
    return "".join(parts)


def _json_block(value: dict[str, Any]) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    text = EMULATOR_URL.sub(RWS_HOST, text)  # the emulator's port changes per run
    return "```json\n" + text + "\n```\n\n"


def generated() -> dict[str, str]:
    served = served_events()
    return {
        "status-table": "\n" + status_table() + "\n",
        "action-table": "\n" + action_table() + "\n",
        "reports": reports_table(served) + "\n",
        "samples": samples(served) + "\n",
    }


def render(text: str, parts: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return match.group(1) + parts[match.group(2)] + match.group(3)

    return SECTION.sub(fill, text)


def test_the_generated_parts_of_the_normalization_doc_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    parts = generated()
    assert set(m.group(2) for m in SECTION.finditer(text)) == set(parts)
    fresh = render(text, parts)
    if os.environ.get("O365_WRITE_DOCS") == "1":
        DOC.write_text(fresh, encoding="utf-8")
    assert fresh == text, (
        "docs/normalization.md is stale: run "
        "O365_WRITE_DOCS=1 .venv/bin/pytest tests/normalize/test_normalization_docs.py"
    )


def test_every_stream_has_a_sample_in_both_formats() -> None:
    served = served_events()
    text = samples(served)
    for key in _streams(served):
        assert f"### `{key}`" in text
    assert text.count("```json") == 3 * len(_streams(served))
