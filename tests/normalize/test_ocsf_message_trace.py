"""Message trace → OCSF 1.8.0 Email Activity: schema validity, Graph = RWS, direction, raw.

The schema check reads the OCSF 1.8.0 source tree in ``../shared/fixtures`` (skipped when
absent) with the small validator of ``support.ocsf_schema``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from test_ecs_message_trace import (
    FIXTURES,
    GRAPH_ROW,
    GRAPH_STREAM,
    RWS_ROW,
    RWS_STREAM,
    SAMPLES,
    TENANT,
    as_graph,
    golden_pairs,
)

from o365collector.event import Event, event_id
from o365collector.normalize import message_trace_to_ocsf
from o365collector.normalize.status import STATUS_TABLE
from support.ocsf_schema import SCHEMA_DIR, _load, validate
from support.shared import shared_or_skip

CLASS_FILE = SCHEMA_DIR / "events" / "network" / "email_activity.json"


# --- rows -----------------------------------------------------------------------------


def make_event(record: dict[str, Any], tenant: str = TENANT) -> Event:
    """An event as the collector makes it, for a Graph or an RWS row."""
    rws = "MessageTraceId" in record or "Received" in record
    trace_id, recipient, status = (
        ("MessageTraceId", "RecipientAddress", "Status")
        if rws
        else ("id", "recipientAddress", "status")
    )
    key = event_id(
        tenant,
        RWS_STREAM if rws else GRAPH_STREAM,
        str(record.get(trace_id) or ""),
        str(record.get(recipient) or ""),
        str(record.get(status) or ""),
    )
    return Event(tenant, RWS_STREAM if rws else GRAPH_STREAM, key, record)


def _rows_of(page: Any) -> list[dict[str, Any]]:
    if isinstance(page, list):
        return page
    if "d" in page:
        return _rows_of(page["d"])
    if "results" in page:
        return list(page["results"])
    if "value" in page:
        return list(page["value"])
    return [page]


def published_rows() -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows from Microsoft's docs and other projects' captures, when present."""
    pages = [
        SAMPLES / "msgraph_v1_messagetraces_list.json",
        SAMPLES / "msgraph_beta_messagetraces_list.json",
        SAMPLES / "sekoia_rws_messagetrace_verbose.json",
        SAMPLES / "sekoia_docs_rws_messagetrace_verbose.json",
        SAMPLES / "elastic_rws_messagetrace_jsonlight.json",
        SAMPLES / "logzio_rws_messagetrace_synthetic.json",
        FIXTURES / "demisto-content" / "message_trace_response.json",
    ]
    for path in pages:
        for row in _rows_of(orjson.loads(shared_or_skip(path).read_bytes())):
            yield path.name, row
    for path in sorted(shared_or_skip(FIXTURES / "sekoia-intake-formats").glob("*/*.json")):
        yield path.name, orjson.loads(_load(path)["input"]["message"])
    pairs, _ = golden_pairs()
    for row, _ in pairs:
        yield "elastic-golden", row
        yield "elastic-golden-as-graph", as_graph(row)


DOMAIN_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("contoso.com",),
    ("azure.microsoft.com",),
    ("contoso.com", "azure.microsoft.com"),
)
STATUSES = [row.name or "" for row in STATUS_TABLE.values()] + ["somethingNew"]


def all_events() -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, OCSF event) for every sample row, status and direction."""
    for status in STATUSES:
        for domains in DOMAIN_SETS:
            rws_row = {**RWS_ROW, "Status": status, "ToIP": "2001:db8::1"}
            graph_row = {**GRAPH_ROW, "status": status[0].lower() + status[1:]}
            yield (
                f"rws-{status}-{domains}",
                message_trace_to_ocsf(make_event(rws_row), local_domains=domains, include_raw=True),
            )
            yield (
                f"graph-{status}-{domains}",
                message_trace_to_ocsf(make_event(graph_row), local_domains=domains),
            )
    sparse = {**GRAPH_ROW, "status": None, "subject": None, "fromIP": "", "size": None}
    yield "graph-sparse", message_trace_to_ocsf(make_event(sparse))
    for label, row in published_rows():
        for include_raw in (False, True):
            yield (
                label,
                message_trace_to_ocsf(
                    make_event(row), local_domains=("contoso.com",), include_raw=include_raw
                ),
            )


# (a) schema validity ------------------------------------------------------------------------


def test_every_event_validates_against_the_ocsf_1_8_0_schema() -> None:
    seen: set[str] = set()
    count = 0
    for label, doc in all_events():
        assert validate(doc) == [], label
        seen.update(_paths(doc))
        count += 1
    assert count >= 2 * len(STATUSES) * len(DOMAIN_SETS) + 1
    assert {
        "time",
        "status_id",
        "disposition_id",
        "action_id",
        "direction_id",
        "message_trace_uid",
        "email.from",
        "email.to",
        "email.message_uid",
        "email.size",
        "src_endpoint.ip",
        "dst_endpoint.ip",
        "metadata.product.name",
        "metadata.uid",
        "metadata.tenant_uid",
        "unmapped.Organization",
        "raw_data",
    } <= seen


def test_published_sample_rows_are_covered_when_present() -> None:
    labels = {label for label, _ in published_rows()}
    assert "elastic-golden" in labels
    for label, row in published_rows():
        doc = message_trace_to_ocsf(make_event(row), local_domains=("contoso.com",))
        assert validate(doc) == [], label


def _paths(doc: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in doc.items():
        if isinstance(value, dict) and key != "unmapped":
            yield from _paths(value, f"{prefix}{key}.")
        elif key == "unmapped":
            yield from (f"{prefix}unmapped.{name}" for name in value)
        else:
            yield f"{prefix}{key}"


@pytest.mark.parametrize(
    ("label", "mutate", "expected"),
    [
        ("no time", lambda d: d.pop("time"), "time: required attribute missing"),
        ("time as text", lambda d: d.update(time="2022-10-21"), "is not timestamp_t"),
        ("status_id 7", lambda d: d.update(status_id=7), "status_id=7 not in enum"),
        ("direction_id 4", lambda d: d.update(direction_id=4), "direction_id=4 not in enum"),
        ("wrong type_uid", lambda d: d.update(type_uid=400901), "type_uid=400901"),
        ("to not a list", lambda d: d["email"].update(to="a@b.com"), "must be an array"),
        ("bad address", lambda d: d["email"].update({"from": "<>"}), "does not match email_t"),
        ("no addresses", lambda d: [d["email"].pop(k) for k in ("from", "to")], "at least one"),
        ("empty endpoint", lambda d: d.update(src_endpoint={}), "empty value"),
        ("bad ip", lambda d: d.update(src_endpoint={"ip": "x"}), "is not an IP address"),
        ("unknown attribute", lambda d: d.update(trace_id="x"), "not an attribute here"),
        ("size as text", lambda d: d["email"].update(size="1"), "is not long_t"),
        ("caption", lambda d: d.update(status="Failure"), "caption is 'Success'"),
        ("no profile", lambda d: d["metadata"].pop("profiles"), "action_id: not an attribute"),
        ("no product", lambda d: d["metadata"].update(product={}), "empty value"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_validator_rejects_broken_events(label: str, mutate: Any, expected: str) -> None:
    doc = message_trace_to_ocsf(
        make_event({**GRAPH_ROW, "status": "delivered", "toIP": "10.0.0.1"}),
        local_domains=("contoso.com",),
    )
    assert validate(doc) == []
    mutate(doc)
    errors = validate(doc)
    assert any(expected in error for error in errors), (label, errors)


def test_classification_is_email_activity_trace_per_the_schema() -> None:
    activities = _load(shared_or_skip(CLASS_FILE))["attributes"]["activity_id"]["enum"]
    trace = next(int(uid) for uid, entry in activities.items() if entry["caption"] == "Trace")
    doc = message_trace_to_ocsf(make_event(RWS_ROW))
    assert (doc["class_uid"], doc["category_uid"], doc["activity_id"]) == (4009, 4, trace)
    assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"] == 400904
    assert (doc["severity_id"], doc["severity"]) == (1, "Informational")
    assert doc["message_trace_uid"] == RWS_ROW["MessageTraceId"]
    assert doc["metadata"]["version"] == "1.8.0"


# (b) a Graph row and the RWS row of one message ---------------------------------------------

SOURCE_PARTS = {"raw_data", "unmapped"}
SOURCE_METADATA = {"uid", "log_name", "original_time"}


def _common(doc: dict[str, Any]) -> dict[str, Any]:
    common = {k: v for k, v in doc.items() if k not in SOURCE_PARTS}
    common["metadata"] = {k: v for k, v in doc["metadata"].items() if k not in SOURCE_METADATA}
    return common


@pytest.mark.parametrize(
    "received",
    ["2022-10-21T17:25:30.6006882", "2022-10-21T17:25:30.6006882Z", "/Date(1666373130600)/"],
    ids=["light-naive", "light-z", "verbose"],
)
@pytest.mark.parametrize("local_domains", [(), ("contoso.com",)], ids=["no-domains", "contoso"])
def test_graph_and_rws_rows_of_one_message_give_the_same_event(
    received: str, local_domains: tuple[str, ...]
) -> None:
    rws = message_trace_to_ocsf(
        make_event({**RWS_ROW, "Received": received}),
        local_domains=local_domains,
        include_raw=True,
    )
    graph = message_trace_to_ocsf(
        make_event(GRAPH_ROW), local_domains=local_domains, include_raw=True
    )
    assert _common(rws) == _common(graph)
    assert len(_common(rws)) >= 25
    assert rws["time"] == graph["time"] == 1666373130600
    assert rws["metadata"]["uid"] != graph["metadata"]["uid"]
    assert (rws["metadata"]["log_name"], graph["metadata"]["log_name"]) == (
        RWS_STREAM,
        GRAPH_STREAM,
    )
    assert rws["metadata"]["original_time"] == received
    assert rws["unmapped"] == {
        "Status": "FilteredAsSpam",
        "Organization": "contoso.com",
        "StartDate": "2022-10-21T09:40:10Z",
        "EndDate": "2022-10-22T09:40:10Z",
        "Index": 1,
    }
    assert graph["unmapped"] == {"status": "filteredAsSpam"}
    assert rws["status_detail"] == graph["status_detail"] == "FilteredAsSpam"


def test_the_event_fields_of_a_row() -> None:
    doc = message_trace_to_ocsf(make_event(GRAPH_ROW), local_domains=("contoso.com",))
    assert doc["email"] == {
        "from": "noreply@azure.microsoft.com",
        "to": ["linus@contoso.com"],
        "message_uid": "<GVAP278MB0375@GVAP278MB0375.CHEP278.PROD.OUTLOOK.COM>",
        "subject": "testmail 1",
        "size": 22704,
    }
    assert (doc["from"], doc["to"]) == ("noreply@azure.microsoft.com", ["linus@contoso.com"])
    assert doc["src_endpoint"] == {"ip": "81.2.69.144"}
    assert "dst_endpoint" not in doc  # toIP ""
    assert doc["metadata"] == {
        "version": "1.8.0",
        "product": {
            "name": "Exchange Online",
            "vendor_name": "Microsoft",
            "feature": {"name": "Message Trace"},
        },
        "log_provider": "o365collector",
        "profiles": ["security_control"],
        "uid": make_event(GRAPH_ROW).event_id,
        "tenant_uid": TENANT,
        "log_name": GRAPH_STREAM,
        "original_time": "2022-10-21T17:25:30.6006882Z",
    }
    assert (doc["disposition_id"], doc["disposition"]) == (18, "Tagged")
    assert (doc["action_id"], doc["action"]) == (4, "Modified")


# (c) status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "status_id", "caption"),
    [
        ("delivered", 1, "Success"),
        ("Failed", 2, "Failure"),
        ("quarantined", 99, "Quarantined"),
        ("pending", 0, "Unknown"),
        ("recalledLater", 99, "recalledLater"),
    ],
)
def test_status_and_an_unknown_status_keeps_its_raw_value(
    status: str, status_id: int, caption: str
) -> None:
    doc = message_trace_to_ocsf(make_event({**GRAPH_ROW, "status": status}))
    assert (doc["status_id"], doc["status"]) == (status_id, caption)
    assert doc["unmapped"]["status"] == status
    assert validate(doc) == []


def test_a_row_without_status_is_unknown() -> None:
    doc = message_trace_to_ocsf(make_event({**RWS_ROW, "Status": None}))
    assert (doc["status_id"], doc["disposition_id"], doc["action_id"]) == (0, 0, 0)
    assert "status_detail" not in doc
    assert "Status" not in doc["unmapped"]


# (d) direction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "recipient", "local_domains", "direction_id", "direction"),
    [
        ("a@outside.com", "b@contoso.com", (), 0, "Unknown"),
        ("a@outside.com", "b@contoso.com", ("contoso.com",), 1, "Inbound"),
        ("a@contoso.com", "b@outside.com", ("contoso.com",), 2, "Outbound"),
        ("a@contoso.com", "b@contoso.com", ("contoso.com",), 3, "Internal"),
        ("a@outside.com", "b@elsewhere.com", ("contoso.com",), 99, "External"),
        ("<>", "b@contoso.com", ("contoso.com",), 1, "Inbound"),
    ],
    ids=["no-list", "inbound", "outbound", "internal", "external", "null-sender"],
)
def test_direction_ids(
    sender: str,
    recipient: str,
    local_domains: tuple[str, ...],
    direction_id: int,
    direction: str,
) -> None:
    row = {**GRAPH_ROW, "senderAddress": sender, "recipientAddress": recipient}
    doc = message_trace_to_ocsf(make_event(row), local_domains=local_domains)
    assert (doc["direction_id"], doc["direction"]) == (direction_id, direction)
    assert validate(doc) == []


def test_a_null_sender_is_kept_in_unmapped_not_emitted_invalid() -> None:
    doc = message_trace_to_ocsf(make_event({**GRAPH_ROW, "senderAddress": "<>"}))
    assert "from" not in doc["email"] and "from" not in doc
    assert doc["unmapped"]["senderAddress"] == "<>"
    assert validate(doc) == []


# (e) time, omissions, raw_data --------------------------------------------------------------


def test_time_is_epoch_milliseconds_and_a_missing_receive_time_is_kept_raw() -> None:
    doc = message_trace_to_ocsf(make_event({**RWS_ROW, "Received": "/Date(1666373130600)/"}))
    assert doc["time"] == 1666373130600 and isinstance(doc["time"], int)
    broken = message_trace_to_ocsf(make_event({**GRAPH_ROW, "receivedDateTime": "soon"}))
    assert isinstance(broken["time"], int) and broken["time"] > 1666373130600
    assert broken["unmapped"]["receivedDateTime"] == "soon"
    assert validate(broken) == []


def test_null_and_empty_fields_are_omitted() -> None:
    row = {**GRAPH_ROW, "subject": None, "messageId": "", "fromIP": "", "toIP": "", "size": None}
    doc = message_trace_to_ocsf(make_event(row))
    assert doc["email"] == {"from": "noreply@azure.microsoft.com", "to": ["linus@contoso.com"]}
    assert "src_endpoint" not in doc and "dst_endpoint" not in doc
    assert "size" not in doc["unmapped"]
    assert validate(doc) == []


@pytest.mark.parametrize("row", [GRAPH_ROW, RWS_ROW], ids=["graph", "rws"])
def test_include_raw_puts_the_raw_record_json_in_raw_data(row: dict[str, Any]) -> None:
    event = make_event(row)
    before = orjson.dumps(row)
    with_raw = message_trace_to_ocsf(event, include_raw=True)
    without = message_trace_to_ocsf(event)
    assert isinstance(with_raw["raw_data"], str)
    assert orjson.loads(with_raw["raw_data"]) == row
    assert "raw_data" not in without
    assert orjson.dumps(event.record) == before
    del with_raw["raw_data"]
    assert with_raw == without
