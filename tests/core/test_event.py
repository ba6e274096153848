"""Deterministic event ids: same fact, same id; a new status is a new fact."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from o365collector.event import Event, StreamIds, event_id, row_facts

ARGS = ("tenant-guid", "message_trace", "trace-1", "alice@contoso.com", "Delivered")


def test_event_id_is_deterministic() -> None:
    first = event_id(*ARGS)
    assert first == event_id(*ARGS)
    assert re.fullmatch(r"[0-9a-f]{32}", first)


def test_known_value_is_stable_across_releases() -> None:
    # Sinks deduplicate on this id: changing the hash would duplicate every replayed event.
    from hashlib import blake2b

    material = "\x1f".join(
        ("tenant-guid", "message_trace", "trace-1", "alice@contoso.com", "delivered")
    )
    expected = blake2b(material.encode(), digest_size=16).hexdigest()
    assert event_id(*ARGS) == expected


def test_differs_by_status() -> None:
    assert event_id(*ARGS) != event_id(*ARGS[:4], "Pending")
    assert event_id(*ARGS) != event_id(*ARGS[:4], "Failed")


def test_differs_by_each_other_field() -> None:
    base = event_id(*ARGS)
    for index, other in enumerate(("tenant-2", "mail_reports", "trace-2", "bob@contoso.com")):
        args = list(ARGS)
        args[index] = other
        assert event_id(*args) != base


def test_case_insensitive_on_recipient_and_status() -> None:
    assert event_id(*ARGS) == event_id(*ARGS[:3], "ALICE@Contoso.COM", "DELIVERED")
    assert event_id(*ARGS) == event_id(*ARGS[:3], "Alice@contoso.com", "delivered")


def test_case_sensitive_on_trace_id() -> None:
    assert event_id(*ARGS) != event_id(ARGS[0], ARGS[1], "TRACE-1", *ARGS[3:])


def test_fields_do_not_run_together() -> None:
    assert event_id("t", "s", "ab", "c", "d") != event_id("t", "s", "a", "bc", "d")


@given(
    st.text(max_size=20),
    st.text(max_size=20),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="ascii"), max_size=20),
    st.text(alphabet=st.characters(codec="ascii"), max_size=20),
)
def test_event_id_properties(tenant: str, stream: str, trace: str, rcpt: str, status: str) -> None:
    value = event_id(tenant, stream, trace, rcpt, status)
    assert value == event_id(tenant, stream, trace, rcpt.upper(), status.swapcase())
    assert len(value) == 32


def test_event_holds_the_record_untouched() -> None:
    record = {"id": "x", "Subject": "Hi"}
    event = Event("contoso", "message_trace", event_id(*ARGS), record)
    assert event.record is record


def test_row_facts_hash_to_the_stored_row_key_and_the_event_id() -> None:
    # Dedup stores keep these keys across upgrades, and sinks the ids: both are pinned.
    from hashlib import blake2b

    record = {"receivedDateTime": "2026-11-22T05:59:59.1234567Z"}
    [fact] = row_facts([record], lambda _: ("trace-1", "Alice@Contoso.com", "Delivered"))
    assert fact == ("trace-1", "alice@contoso.com", "Delivered", record["receivedDateTime"])
    ids = StreamIds("tenant-guid", "message_trace")
    [key] = ids.row_keys([fact])
    material = "\x1f".join(("tenant-guid", "message_trace", "trace-1", "alice@contoso.com"))
    assert key == b"2026-11-22T05" + blake2b(material.encode(), digest_size=16).digest()
    assert ids.event_ids([fact]) == [event_id(*ARGS)]


def test_row_keys_lead_with_the_receive_hour_graph_rws_or_none() -> None:
    records = [
        {"Received": "/Date(1658751973240)/"},
        {},
        {"receivedDateTime": None, "Received": None},
        {"receivedDateTime": "2026-11-22T05:00:00Z", "Received": "2020-01-01T00:00:00"},
    ]
    facts = row_facts(records, lambda _: ("t", "r", "s"))
    digest = StreamIds("tid", "s").row_keys(facts[:1])[0][-16:]
    keys = StreamIds("tid", "s").row_keys(facts)
    assert keys == [
        b"/Date(1658751" + digest,
        digest,
        digest,
        b"2026-11-22T05" + digest,
    ]
