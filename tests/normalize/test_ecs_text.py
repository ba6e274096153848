"""ECS message trace written as text (``ecs_text``) = the mapper's document dumped, byte for byte.

The sinks write ``message_trace_json``; ``map_message_trace`` (``message_trace_to_ecs``)
stays the definition. Every row here must give exactly ``orjson.dumps`` of the mapper's
document, or raise where mapping or dumping raises: published rows, the benchmark's rows,
the emulator's, and generated near-misses (absent, null, empty and odd values, escapes).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o365collector.event import Event
from o365collector.normalize.ecs import map_message_trace
from o365collector.normalize.ecs_text import message_trace_json
from o365collector.normalize.normalizer import Normalizer
from o365collector.sinks.encode import Payload, encode, lines, refusal
from support.shared import FIXTURES, SAMPLES, shared_or_skip

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is not installed: its rows are read from the checkout
    sys.path.insert(0, str(REPO))

from bench.normalize import emulator_events, events  # noqa: E402

GRAPH = "message_trace"
RWS = "rws.MessageTrace"
STAMP = "2026-11-22T10:00:00.000000Z"
DOMAIN_CHOICES: list[tuple[str, ...]] = [
    (),
    ("contoso.com",),
    ("CONTOSO.COM", "fabrikam.net"),
    ("azure.microsoft.com", "example.com"),
]
GRAPH_KEYS = (
    "id",
    "messageId",
    "senderAddress",
    "recipientAddress",
    "receivedDateTime",
    "subject",
    "size",
    "fromIP",
    "toIP",
    "status",
)
RWS_KEYS = (
    "MessageTraceId",
    "MessageId",
    "SenderAddress",
    "RecipientAddress",
    "Received",
    "Subject",
    "Size",
    "FromIP",
    "ToIP",
    "Status",
)


def reference(event: Event, domains: Sequence[str], original: bool) -> bytes | None:
    """What the sinks wrote before the writer: the mapper's document dumped, or ``None``
    where mapping or dumping raises."""
    try:
        return orjson.dumps(map_message_trace(event, domains, original))
    except Exception:
        return None


def assert_same(event: Event, domains: Sequence[str] = (), original: bool = False) -> None:
    expected = reference(event, domains, original)
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - whatever the mapper raised
            message_trace_json(event, domains, original)
    else:
        assert message_trace_json(event, domains, original) == expected


def assert_all_same(batch: Sequence[Event]) -> int:
    for domains in DOMAIN_CHOICES:
        for original in (False, True):
            for event in batch:
                assert_same(event, domains, original)
    return len(batch)


# Rows as published and as the collector reads them -----------------------------------------


def _rows(value: Any) -> Iterator[dict[str, Any]]:
    """Every message trace row in a JSON value (and in JSON text inside it)."""
    if isinstance(value, str) and value[:1] == "{":
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
    if isinstance(value, dict):
        if len(value.keys() & {*GRAPH_KEYS, *RWS_KEYS}) >= 2:
            yield value
        for item in value.values():
            yield from _rows(item)
    elif isinstance(value, list):
        for item in value:
            yield from _rows(item)


def published_rows() -> list[dict[str, Any]]:
    """The message trace rows of ../shared: fixtures (peers' tests, Elastic's golden input)
    and reference samples (Microsoft's docs, captures)."""
    found: list[dict[str, Any]] = []
    for folder in (shared_or_skip(FIXTURES), shared_or_skip(SAMPLES)):
        for path in sorted(folder.rglob("*")):
            if path.suffix not in {".json", ".log"} or not path.is_file():
                continue
            text = path.read_bytes()
            try:
                values = [orjson.loads(text)]
            except orjson.JSONDecodeError:  # one JSON object per line
                values = [orjson.loads(line) for line in text.splitlines() if line.strip()]
            for value in values:
                found.extend(_rows(value))
    return found


def test_published_rows_give_the_mappers_bytes() -> None:
    rows = published_rows()
    assert len(rows) >= 20
    batch = [
        Event("contoso", RWS if "MessageTraceId" in row or "Received" in row else GRAPH, "e1", row)
        for row in rows
    ]
    assert_all_same(batch)


def test_the_benchmarks_rows_give_the_mappers_bytes() -> None:
    graph, rws = events(3_000)
    assert assert_all_same(graph) + assert_all_same(rws) == 6_000


def test_the_emulators_rows_give_the_mappers_bytes() -> None:
    served = emulator_events(300)
    assert served[GRAPH] and served[RWS]
    assert_all_same(served[GRAPH] + served[RWS])


# Near-misses ---------------------------------------------------------------------------------

# Text that needs escaping, or not: quotes, backslashes, control characters, "<", non-BMP.
TRICKY = st.text(
    st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "<", "é", "😀", "\u2028", "a", "@"]),
    max_size=6,
)
TEXT = st.one_of(st.text(max_size=12), TRICKY)
ODD_ADDRESSES = [
    "a@contoso.com",
    "b@CONTOSO.com",
    "a@fabrikam.net",
    "x@sub.contoso.com",
    "contoso.com",
    "@contoso.com",
    "a@",
    "a",
    "A@Example.COM",
    'q"uote@contoso.com',
    "back\\slash@contoso.com",
    "new\nline@contoso.com",
    "<tag>@contoso.com",
    "émile@exämple.com",
    "😀@contoso.com",
    "a@b@contoso.com",
    "a@b",  # the local part of the one above
    "b",
]
ADDRESSES = st.sampled_from(ODD_ADDRESSES)
ODD = st.one_of(
    st.none(),
    st.just(""),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    TEXT,
)
SIZES = st.one_of(
    st.integers(-(2**65), 2**65),
    st.sampled_from(["123", " 42 ", "12a", "-5", "", "0", "٣", "²"]),
    ODD,
)
DATES = st.one_of(
    st.sampled_from(
        [
            "2026-01-20T11:33:51Z",
            "2026-01-20T11:33:51.1234567Z",
            "2022-10-21T17:25:30.6006882",
            "2026-12-01T00:00:00.000000Z",
            "/Date(1768746477657)/",
            "/Date(1768746477657+0100)/",
            "2026-02-30T00:00:00Z",
            "2026-01-20T11:33:51+02:00",
            "not a date",
            "",
        ]
    ),
    ODD,
)
IPS = st.one_of(st.sampled_from(["10.0.0.1", "2001:db8::1", "", "10.0.0.1 "]), ODD)
STATUSES = st.one_of(
    st.sampled_from(["delivered", "Delivered", "failed", "FilteredAsSpam", "somethingNew", ""]),
    ODD,
)
VALUE_OF = {
    "id": TEXT,
    "messageId": TEXT,
    "senderAddress": st.one_of(ADDRESSES, ODD),
    "recipientAddress": st.one_of(ADDRESSES, ODD),
    "receivedDateTime": DATES,
    "subject": TEXT,
    "size": SIZES,
    "fromIP": IPS,
    "toIP": IPS,
    "status": STATUSES,
}
RWS_EXTRAS = {
    "Organization": st.one_of(st.just("contoso.onmicrosoft.com"), ODD),
    "StartDate": DATES,
    "EndDate": DATES,
    "Index": st.one_of(st.integers(0, 10), ODD),
    "__metadata": st.just({"type": "TenantReporting.MessageTrace"}),
}
MISSING = object()


@st.composite
def near_miss_events(draw: st.DrawFn) -> tuple[Event, tuple[str, ...], bool]:
    """A Graph or RWS row whose every key may be absent, null, empty, odd or escaped, with
    unknown extra keys; its event, local domains and ``include_original``."""
    rws = draw(st.booleans())
    row: dict[str, Any] = {}
    for key, rws_key in zip(GRAPH_KEYS, RWS_KEYS, strict=True):
        # Mostly the usual value, so the usual row's text is what most examples check.
        value = draw(
            st.one_of(VALUE_OF[key], st.just(MISSING)) if draw(st.booleans()) else _usual(key)
        )
        if value is not MISSING:
            row[rws_key if rws else key] = value
    if rws:
        for key, strategy in RWS_EXTRAS.items():
            if draw(st.booleans()):
                row[key] = draw(strategy)
    for key in draw(st.lists(st.sampled_from(["extra", "@odata.type", 'x"y', "é"]), max_size=2)):
        row[key] = draw(ODD)
    if rws and "MessageTraceId" not in row and "Received" not in row:
        row["Received"] = draw(DATES)  # what tells an RWS row apart
    tenant = draw(st.one_of(st.just("contoso"), TEXT))
    event_id = draw(st.one_of(st.just("ab" * 32), TEXT))
    event = Event(tenant, RWS if rws else GRAPH, event_id, row)
    return event, draw(st.sampled_from(DOMAIN_CHOICES)), draw(st.booleans())


def _usual(key: str) -> st.SearchStrategy[Any]:
    """The value a Graph row usually has under ``key``."""
    return st.just(
        {
            "id": "4c0d2e1a-0000-4b1e-9c3a-0f2e1d3c4b5a",
            "messageId": "<m1@contoso.com>",
            "receivedDateTime": "2026-01-20T11:33:51Z",
            "subject": "Quarterly report",
            "size": 1234,
            "fromIP": "10.0.0.1",
            "toIP": "",
            "status": "delivered",
        }.get(key)
        or ("a@contoso.com" if key == "senderAddress" else "b@fabrikam.net")
    )


@settings(
    max_examples=2_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=near_miss_events())
def test_near_miss_rows_give_the_mappers_bytes_or_raise_alike(
    case: tuple[Event, tuple[str, ...], bool],
) -> None:
    event, domains, original = case
    assert_same(event, domains, original)


USUAL = {
    "id": "t",
    "messageId": "<m@x.com>",
    "senderAddress": "a@contoso.com",
    "recipientAddress": "b@fabrikam.net",
    "receivedDateTime": "2026-01-20T11:33:51Z",
    "subject": "s",
    "size": 1,
    "fromIP": "10.0.0.1",
    "status": "delivered",
}


@pytest.mark.parametrize("to_ip", ["", "10.0.0.1", "2001:db8::1"])
def test_every_pair_of_addresses_gives_the_mappers_bytes(to_ip: str) -> None:
    """Alike addresses and local parts (deduped in related.user), no local part, both sides
    local or not: every pair, in both roles, on an otherwise usual row."""
    batch = [
        Event("contoso", GRAPH, "e1", {**USUAL, "senderAddress": s, "recipientAddress": r})
        for s in ODD_ADDRESSES
        for r in ODD_ADDRESSES
    ]
    for event in batch:
        event.record["toIP"] = to_ip
    for domains in [*DOMAIN_CHOICES, ("b",), ("b@contoso.com", "contoso.com@")]:
        for event in batch:
            assert_same(event, domains)


@pytest.mark.parametrize("original", [False, True])
@pytest.mark.parametrize(
    "record",
    [
        {"id": "a\ud800b", "senderAddress": "a@contoso.com"},  # a surrogate: orjson refuses
        {"id": "t", "senderAddress": "a\udc00@contoso.com", "recipientAddress": "b@x.com"},
        {"id": "t", "size": 2**64, "status": "delivered"},  # beyond orjson's integers
        {"id": "t", "size": -(2**63) - 1},
        {"id": "t", "extra": object()},  # not JSON at all
    ],
)
def test_what_cannot_be_dumped_raises_as_the_mapper_and_orjson_do(
    record: dict[str, Any], original: bool
) -> None:
    event = Event("contoso", GRAPH, "e1", {**USUAL, **record})
    assert reference(event, ("contoso.com",), original) is None
    with pytest.raises(Exception):  # noqa: B017 - what orjson or the encoder raises
        message_trace_json(event, ("contoso.com",), original)


# The sinks' lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("original", [False, True])
def test_ecs_lines_are_the_documents_dumped_and_a_refused_row_is_refused_alone(
    original: bool,
) -> None:
    graph, rws = events(50)
    huge = Event("contoso", GRAPH, "e-huge", {**graph[1].record, "extra": 2**70})
    bad = Event("contoso", GRAPH, "e-bad", {**graph[2].record, "extra": object()})
    batch = [*graph[:20], huge, *rws[:20], bad, *graph[20:]]
    normalizer = Normalizer(
        "ecs", local_domains={"contoso": ("contoso.com",)}, include_original=original
    )
    payload = Payload("ecs", normalizer)
    body, rejected = lines(batch, payload, STAMP)
    expected = bytearray()
    expected_rejected: dict[int, str] = {}
    for index, event in enumerate(batch):  # one by one, from the document
        try:
            expected += encode(event, payload, STAMP) + b"\n"
        except ValueError as exc:
            expected_rejected[index] = refusal(exc)
    assert body == expected
    assert rejected == expected_rejected
    if not original:  # the stdlib writes the huge integer; nothing writes an object
        assert rejected == {41: "unencodable"}
        assert b'"extra":1180591620717411303424' in body
    else:  # event.original is orjson's text of the record: both rows are unmappable
        assert sorted(rejected) == [20, 41]
    clean, none = lines(graph + rws, payload, STAMP)
    assert none == {}
    assert clean == b"".join(orjson.dumps(normalizer.document(e)) + b"\n" for e in graph + rws)


def test_the_normalizers_line_is_its_document_dumped_for_every_form_and_stream() -> None:
    graph, rws = events(10)
    other = Event("contoso", "rws.MailTrafficATPReport", "e1", {"Organization": "contoso.com"})
    for form in ("ecs", "ocsf"):
        normalizer = Normalizer(form, local_domains={"contoso": ("contoso.com",)})
        for event in [*graph, *rws, other]:
            assert normalizer.line(event) == orjson.dumps(normalizer.document(event))
