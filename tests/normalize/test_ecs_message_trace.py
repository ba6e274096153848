"""Message trace → ECS: Elastic's golden pair, Graph = RWS, ECS 9.4 field types, direction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
import yaml

from o365collector.dates import parse_date
from o365collector.event import Event, event_id
from o365collector.normalize.ecs import message_trace_to_ecs
from support.ecs_fields import (
    FIXTURES,
    PRODUCT_PREFIXES,
    ecs_problems,
    flatten,
    load_ecs,
)
from support.shared import SAMPLES, shared_or_skip

GOLDEN_DIR = (
    FIXTURES / "elastic-integrations" / "data_stream" / "log" / "_dev" / "test" / "pipeline"
)
GRAPH_STREAM = "message_trace"
RWS_STREAM = "rws.MessageTrace"
TENANT = "contoso"

# Golden fields deliberately not matched (prefix → reason); the mapper must not emit them.
NOT_MATCHED: dict[str, str] = {
    "source.geo.": "GeoIP enrichment is the SIEM's ingest job; no GeoIP database here",
    "destination.geo.": "GeoIP enrichment is the SIEM's ingest job",
    "source.as.": "ASN enrichment is the SIEM's ingest job",
    "destination.as.": "ASN enrichment is the SIEM's ingest job",
    "source.registered_domain": "needs the Public Suffix List, not shipped",
    "source.top_level_domain": "needs the Public Suffix List",
    "source.subdomain": "needs the Public Suffix List",
    "destination.registered_domain": "needs the Public Suffix List",
    "destination.top_level_domain": "needs the Public Suffix List",
    "destination.subdomain": "needs the Public Suffix List",
    "event.start": "RWS query window, not the message: kept as o365.message_trace.start_date",
    "event.end": "RWS query window, not the message: kept as o365.message_trace.end_date",
    "microsoft.online_message_trace.": "raw copy; here event.original + o365.message_trace.*",
    "tags": "Elastic's preserve_original_event switch; here include_original",
}
# Golden fields matched, but not as text (key → how).
ECS_VERSION_DIFFERS = "ecs.version"  # 9.4.0 (the field set checked) vs Elastic's 8.11.0
SAME_INSTANT = {"email.delivery_timestamp"}  # Elastic copies raw text; ISO-8601 UTC ms here
SAME_JSON = {"event.original"}  # same object; serialised from the parsed record

RWS_TO_GRAPH = {
    "MessageTraceId": "id",
    "MessageId": "messageId",
    "SenderAddress": "senderAddress",
    "RecipientAddress": "recipientAddress",
    "Received": "receivedDateTime",
    "Subject": "subject",
    "Size": "size",
    "FromIP": "fromIP",
    "ToIP": "toIP",
    "Status": "status",
}


def rws_event(record: dict[str, Any], tenant: str = TENANT) -> Event:
    key = event_id(
        tenant, RWS_STREAM, record["MessageTraceId"], record["RecipientAddress"], record["Status"]
    )
    return Event(tenant, RWS_STREAM, key, record)


def graph_event(record: dict[str, Any], tenant: str = TENANT) -> Event:
    key = event_id(tenant, GRAPH_STREAM, record["id"], record["recipientAddress"], record["status"])
    return Event(tenant, GRAPH_STREAM, key, record)


def as_graph(rws: dict[str, Any]) -> dict[str, Any]:
    """The Graph row of an RWS row: camelCase names, ``Z`` times, ``""`` for no IP."""
    graph = {RWS_TO_GRAPH[key]: value for key, value in rws.items() if key in RWS_TO_GRAPH}
    moment = parse_date(rws["Received"])
    assert moment is not None
    graph["receivedDateTime"] = moment.isoformat().replace("+00:00", "Z")
    graph["status"] = rws["Status"][0].lower() + rws["Status"][1:]
    for key in ("fromIP", "toIP"):
        if graph.get(key) is None:
            graph[key] = ""
    return graph


def golden_pairs() -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[str]]:
    """(input row, expected document) pairs and the configured local domains."""
    shared_or_skip(GOLDEN_DIR)
    config = yaml.safe_load((GOLDEN_DIR / "test-common-config.yml").read_text())
    local_domains = list(config["fields"]["_conf.local_domains"])
    lines = (GOLDEN_DIR / "test-log.log").read_text().splitlines()
    expected = orjson.loads((GOLDEN_DIR / "test-log.log-expected.json").read_bytes())["expected"]
    assert len(lines) == len(expected)
    pairs = []
    for line, document in zip(lines, expected, strict=True):
        row = orjson.loads(line)
        if "value" in row:  # an empty RWS page: Elastic drops it, the collector never emits it
            assert document is None
            continue
        pairs.append((row, document))
    assert len(pairs) == 4
    return pairs, local_domains


def _not_matched(key: str) -> str | None:
    for prefix, reason in NOT_MATCHED.items():
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return reason
    return None


def assert_matches_golden(ours: dict[str, Any], expected: dict[str, Any]) -> int:
    """Compare every field both have; returns how many were compared."""
    compared = 0
    for key, value in flatten(expected).items():
        if _not_matched(key) is not None:
            assert key not in ours, f"{key} is listed as not matched but emitted"
            continue
        assert key in ours, f"golden field {key} missing"
        if key == ECS_VERSION_DIFFERS:
            assert ours[key] == "9.4.0"
        elif key in SAME_INSTANT:
            assert parse_date(ours[key]) == _ms(parse_date(value)), key
            assert ours[key].endswith("Z")
        elif key in SAME_JSON:
            assert orjson.loads(ours[key]) == orjson.loads(value), key
        else:
            assert ours[key] == value, key
        compared += 1
    return compared


def _ms(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# (a) Elastic's golden pair --------------------------------------------------------------


def test_rws_rows_match_elastics_golden_documents() -> None:
    pairs, local_domains = golden_pairs()
    for row, expected in pairs:
        ours = flatten(
            message_trace_to_ecs(rws_event(row), local_domains=local_domains, include_original=True)
        )
        compared = assert_matches_golden(ours, expected)
        assert compared >= 24  # every row has at least this many golden fields in common


def test_the_graph_rows_of_the_golden_messages_match_too() -> None:
    pairs, local_domains = golden_pairs()
    for row, expected in pairs:
        ours = flatten(
            message_trace_to_ecs(graph_event(as_graph(row)), local_domains=local_domains)
        )
        golden = {k: v for k, v in flatten(expected).items() if k != "event.original"}
        assert assert_matches_golden(ours, golden) >= 23


def test_the_golden_internal_row_has_user_arrays_recipient_first() -> None:
    pairs, local_domains = golden_pairs()
    row, _ = pairs[3]
    doc = message_trace_to_ecs(rws_event(row), local_domains=local_domains)
    assert doc["email"]["direction"] == "internal"
    assert doc["user"]["email"] == ["linus@contoso.com", "noreply@contoso.com"]
    assert doc["user"]["name"] == ["linus", "noreply"]


# (b) a Graph row and the RWS row of the same message ------------------------------------

RWS_ROW = {
    "Organization": "contoso.com",
    "MessageId": "<GVAP278MB0375@GVAP278MB0375.CHEP278.PROD.OUTLOOK.COM>",
    "Received": "2022-10-21T17:25:30.6006882",  # JSON light: 7 digits, no Z (UTC)
    "SenderAddress": "noreply@azure.microsoft.com",
    "RecipientAddress": "linus@contoso.com",
    "Subject": "testmail 1",
    "Status": "FilteredAsSpam",
    "ToIP": None,
    "FromIP": "81.2.69.144",
    "Size": 22704,
    "MessageTraceId": "a6f62809-5cda-4454-0962-08dab38940d6",
    "StartDate": "2022-10-21T09:40:10Z",
    "EndDate": "2022-10-22T09:40:10Z",
    "Index": 1,
}
GRAPH_ROW = {
    "id": "a6f62809-5cda-4454-0962-08dab38940d6",
    "senderAddress": "noreply@azure.microsoft.com",
    "recipientAddress": "linus@contoso.com",
    "messageId": "<GVAP278MB0375@GVAP278MB0375.CHEP278.PROD.OUTLOOK.COM>",
    "receivedDateTime": "2022-10-21T17:25:30.6006882Z",
    "subject": "testmail 1",
    "size": 22704,
    "fromIP": "81.2.69.144",
    "toIP": "",
    "status": "filteredAsSpam",
}
SOURCE_PARTS = (
    "o365collector.stream",
    "o365collector.event_id",
    "event.id",
    "event.original",
    "o365.",
)


def _common(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if not k.startswith(SOURCE_PARTS)}


@pytest.mark.parametrize(
    "received",
    ["2022-10-21T17:25:30.6006882", "2022-10-21T17:25:30.6006882Z", "/Date(1666373130600)/"],
    ids=["light-naive", "light-z", "verbose"],
)
@pytest.mark.parametrize("local_domains", [(), ("contoso.com",)], ids=["no-domains", "contoso"])
def test_graph_and_rws_rows_of_one_message_give_the_same_document(
    received: str, local_domains: tuple[str, ...]
) -> None:
    rws_row = {**RWS_ROW, "Received": received}
    rws = flatten(
        message_trace_to_ecs(rws_event(rws_row), local_domains=local_domains, include_original=True)
    )
    graph = flatten(
        message_trace_to_ecs(
            graph_event(GRAPH_ROW), local_domains=local_domains, include_original=True
        )
    )
    assert _common(rws) == _common(graph)
    assert len(_common(rws)) >= 25
    assert rws["@timestamp"] == "2022-10-21T17:25:30.600Z"
    assert (rws["o365collector.stream"], graph["o365collector.stream"]) == (
        RWS_STREAM,
        GRAPH_STREAM,
    )
    assert rws["event.id"] == rws["o365collector.event_id"] != graph["event.id"]
    assert (rws["o365.message_trace.status"], graph["o365.message_trace.status"]) == (
        "FilteredAsSpam",
        "filteredAsSpam",
    )


def test_rws_only_fields_are_kept_under_the_product_namespace() -> None:
    doc = message_trace_to_ecs(rws_event({**RWS_ROW, "StartDate": "/Date(1666345210000)/"}))
    assert doc["o365"]["message_trace"] == {
        "status": "FilteredAsSpam",
        "organization": "contoso.com",
        "start_date": "2022-10-21T09:40:10.000Z",
        "end_date": "2022-10-22T09:40:10.000Z",
        "index": 1,
    }
    assert "start" not in doc["event"]


def test_graph_fields_the_mapper_does_not_know_are_kept_not_dropped() -> None:
    doc = message_trace_to_ecs(graph_event({**GRAPH_ROW, "newProperty": "x"}))
    assert doc["o365"]["message_trace"] == {"status": "filteredAsSpam", "newProperty": "x"}


def test_verbose_envelope_metadata_is_not_copied() -> None:
    row = {**RWS_ROW, "__metadata": {"type": "TenantReporting.MessageTrace"}}
    assert "__metadata" not in message_trace_to_ecs(rws_event(row))["o365"]["message_trace"]


def test_null_and_empty_fields_are_omitted() -> None:
    row = {**GRAPH_ROW, "subject": None, "messageId": None, "fromIP": "", "toIP": "", "size": None}
    doc = flatten(message_trace_to_ecs(graph_event(row)))
    for key in ("email.subject", "email.message_id", "source.ip", "destination.ip", "related.ip"):
        assert key not in doc
    assert not any(key.startswith("email.attachments") for key in doc)
    assert all(value not in (None, "", [], {}) for value in doc.values())


def test_status_drives_outcome_and_action_and_an_unknown_status_is_kept() -> None:
    delivered = message_trace_to_ecs(graph_event({**GRAPH_ROW, "status": "Delivered"}))
    failed = message_trace_to_ecs(rws_event({**RWS_ROW, "Status": "Failed"}))
    novel = message_trace_to_ecs(graph_event({**GRAPH_ROW, "status": "recalledLater"}))
    assert (delivered["event"]["outcome"], delivered["event"]["action"]) == ("success", "delivered")
    assert (failed["event"]["outcome"], failed["event"]["action"]) == ("failure", "failed")
    assert (novel["event"]["outcome"], novel["event"]["action"]) == ("unknown", "recalledlater")
    assert novel["o365"]["message_trace"]["status"] == "recalledLater"


# (c) every field is ECS 9.4 with a compatible type, or in the product namespaces ---------


def sample_documents() -> Iterator[dict[str, Any]]:
    for status in ("Delivered", "Failed", "Quarantined", "GettingStatus", "somethingNew"):
        for domains in (
            (),
            ("contoso.com",),
            ("azure.microsoft.com",),
            ("contoso.com", "azure.microsoft.com"),
        ):
            yield message_trace_to_ecs(
                rws_event({**RWS_ROW, "Status": status, "ToIP": "2001:db8::1"}),
                local_domains=domains,
                include_original=True,
            )
            yield message_trace_to_ecs(
                graph_event({**GRAPH_ROW, "status": status.lower()}), local_domains=domains
            )
    yield from published_sample_documents()
    pairs, local_domains = golden_pairs()
    for row, _ in pairs:
        yield message_trace_to_ecs(
            rws_event(row), local_domains=local_domains, include_original=True
        )


def published_sample_documents() -> Iterator[dict[str, Any]]:
    """Rows Microsoft's Graph docs and Sekoia's RWS verbose capture show, when present."""
    graph = SAMPLES / "msgraph_v1_messagetraces_list.json"
    verbose = SAMPLES / "sekoia_rws_messagetrace_verbose.json"
    for row in orjson.loads(shared_or_skip(graph).read_bytes())["value"]:
        yield message_trace_to_ecs(graph_event(row), local_domains=("contoso.com",))
    for row in orjson.loads(shared_or_skip(verbose).read_bytes())["d"]["results"]:
        doc = message_trace_to_ecs(rws_event(row), include_original=True)
        assert doc["@timestamp"].endswith("Z")
        assert "__metadata" not in doc.get("o365", {}).get("message_trace", {})
        yield doc


def test_every_field_is_ecs_9_4_with_a_compatible_type_or_product_namespaced() -> None:
    ecs = load_ecs()
    checked: set[str] = set()
    for doc in sample_documents():
        assert ecs_problems(doc, ecs, checked) == []
    assert {
        "@timestamp",
        "email.delivery_timestamp",
        "destination.ip",
        "event.outcome",
        "user.email",
    } <= checked
    assert len(checked) >= 30


def test_the_product_namespaces_are_not_ecs_field_sets() -> None:
    ecs = load_ecs()
    assert not any(key.startswith(PRODUCT_PREFIXES) for key in ecs)


# (d) email.direction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "recipient", "local_domains", "direction", "user_email"),
    [
        ("a@outside.com", "b@contoso.com", (), None, None),
        ("a@outside.com", "b@contoso.com", ("contoso.com",), "inbound", "b@contoso.com"),
        ("a@contoso.com", "b@outside.com", ("contoso.com",), "outbound", "a@contoso.com"),
        (
            "a@contoso.com",
            "b@contoso.com",
            ("contoso.com",),
            "internal",
            ["b@contoso.com", "a@contoso.com"],
        ),
        (
            "a@contoso.com",
            "b@fabrikam.com",
            ("contoso.com", "fabrikam.com"),
            "internal",
            ["b@fabrikam.com", "a@contoso.com"],
        ),
        ("a@outside.com", "b@elsewhere.com", ("contoso.com",), "external", None),
        ("a@outside.com", "B@CONTOSO.COM", ("Contoso.com",), "inbound", "B@CONTOSO.COM"),
        ("a@outside.com", "b@mail.contoso.com", ("contoso.com",), "external", None),
        ("a@contoso.com", "a@contoso.com", ("contoso.com",), "internal", "a@contoso.com"),
        ("<>", "b@contoso.com", ("contoso.com",), "inbound", "b@contoso.com"),
    ],
    ids=[
        "no-list",
        "inbound",
        "outbound",
        "internal",
        "internal-two-domains",
        "neither",
        "case-insensitive",
        "subdomain-not-local",
        "self",
        "null-sender",
    ],
)
def test_direction_from_local_domains(
    sender: str,
    recipient: str,
    local_domains: tuple[str, ...],
    direction: str | None,
    user_email: Any,
) -> None:
    row = {**GRAPH_ROW, "senderAddress": sender, "recipientAddress": recipient}
    doc = message_trace_to_ecs(graph_event(row), local_domains=local_domains)
    assert doc["email"].get("direction") == direction
    assert doc.get("user", {}).get("email") == user_email


def test_related_user_lists_recipient_sender_and_their_local_parts_once() -> None:
    row = {
        **GRAPH_ROW,
        "senderAddress": "same@contoso.com",
        "recipientAddress": "same@fabrikam.com",
    }
    doc = message_trace_to_ecs(graph_event(row))
    assert doc["related"]["user"] == ["same@fabrikam.com", "same@contoso.com", "same"]
    assert doc["related"]["ip"] == ["81.2.69.144"]


# (e) event.original ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "record"), [(graph_event(GRAPH_ROW), GRAPH_ROW), (rws_event(RWS_ROW), RWS_ROW)]
)
def test_include_original_puts_the_raw_record_json_in_event_original(
    event: Event, record: dict[str, Any]
) -> None:
    before = orjson.dumps(record)
    with_original = message_trace_to_ecs(event, include_original=True)
    without = message_trace_to_ecs(event)
    assert isinstance(with_original["event"]["original"], str)
    assert orjson.loads(with_original["event"]["original"]) == record
    assert "original" not in without["event"]
    assert orjson.dumps(event.record) == before  # the record is not changed
    del with_original["event"]["original"]
    assert with_original == without
