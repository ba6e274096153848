"""What the Exchange report ECS mappers share: the document frame, leftovers, parties.

Every report document has ``@timestamp`` (when the row has a time), ``ecs.version``,
``event.{id,kind,category,type}`` (``event.original`` on request), the envelope
``o365collector.{tenant,stream,event_id}`` and, under ``o365.<report_snake_case>``, every
field of the record no ECS field holds verbatim (:func:`leftovers`). See
:mod:`.ecs_reports` for the mapping of each report.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from o365collector.dates import parse_date
from o365collector.event import Event
from o365collector.normalize.ecs import (
    ECS_VERSION,
    ENVELOPE_NAMESPACE,
    PRODUCT_NAMESPACE,
    Direction,
    _format_ms,
    _iso_ms,
    _iso_ms_cached,
    _own_side,
    _parts,
    _side,
    _text,
    email_direction,
)
from o365collector.normalize.status import ActionMapping

ENVELOPE_KEYS = frozenset({"__metadata"})  # RWS verbose JSON's per-row OData envelope
DATE_LEFTOVERS = frozenset({"start_date", "end_date"})  # the query window, ISO-8601 UTC
NS_PER_SEC = 1_000_000_000

# Microsoft's Direction column → ECS email.direction (IntraOrg is ECS's "internal").
_DIRECTIONS: dict[str, Direction] = {
    "inbound": "inbound",
    "outbound": "outbound",
    "intraorg": "internal",
    "internal": "internal",
    "external": "external",
}
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD = re.compile(r"([a-z0-9])([A-Z])")


@functools.lru_cache(maxsize=1024)
def snake(name: str) -> str:
    """A record key in snake case: ``MessageTraceId`` → ``message_trace_id``,
    ``DLPPolicy`` → ``dlp_policy``, ``SenderIP`` → ``sender_ip``, ``dateTime`` →
    ``date_time``, ``C1`` → ``c1``."""
    return _WORD.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", name)).replace(" ", "_").lower()


@functools.lru_cache(maxsize=64)
def namespace_of(report: str) -> str:
    """``MailTraffic`` → ``mail_traffic``; ``message_trace_detail`` stays."""
    return snake(report)


def frame(
    event: Event,
    *,
    timestamp: str | None,
    kind: str,
    category: list[str],
    types: list[str],
    include_original: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new document with ``@timestamp``, ``ecs`` and ``event``; returns (doc, event part)."""
    doc: dict[str, Any] = {}
    if timestamp is not None:
        doc["@timestamp"] = timestamp
    doc["ecs"] = {"version": ECS_VERSION}
    part: dict[str, Any] = {"id": event.event_id, "kind": kind, "category": category, "type": types}
    if include_original:
        part["original"] = orjson.dumps(event.record).decode()
    doc["event"] = part
    return doc, part


def finish(
    doc: dict[str, Any], event: Event, namespace: str, rest: dict[str, Any]
) -> dict[str, Any]:
    """Add the envelope and the leftovers (``o365.<namespace>``, when any) to ``doc``."""
    doc[ENVELOPE_NAMESPACE] = {
        "tenant": event.tenant,
        "stream": event.stream,
        "event_id": event.event_id,
    }
    if rest:
        doc[PRODUCT_NAMESPACE] = {namespace: rest}
    return doc


def leftovers(record: dict[str, Any], consumed: frozenset[str]) -> dict[str, Any]:
    """Every field of ``record`` not in ``consumed``, in snake case, ``None``/``""`` omitted.

    The query window (``StartDate``/``EndDate``) is written as ISO-8601 UTC (the raw value
    when it is not a date); everything else is copied as sent, so an unknown field or
    value is kept, never dropped.
    """
    part: dict[str, Any] = {}
    for key, name, is_date in _layout(tuple(record), consumed):
        value = record[key]
        if value.__class__ is str:
            if not value:
                continue
            if is_date:
                value = _iso_ms_cached(value) or value
        elif value is None or (value.__class__ in (dict, list) and not value):
            continue
        part[name] = value
    return part


@functools.lru_cache(maxsize=1024)
def _layout(keys: tuple[str, ...], consumed: frozenset[str]) -> tuple[tuple[str, str, bool], ...]:
    """The leftover keys of a record with these ``keys``, in order, each with its snake-case
    name and whether it is a query-window date. A report's rows share their keys, so the
    per-key work (consumed? envelope? name?) is done once per layout, not per row."""
    return tuple(
        (key, snake(key), snake(key) in DATE_LEFTOVERS)
        for key in keys
        if key not in consumed and key not in ENVELOPE_KEYS
    )


def stamp(record: dict[str, Any], key: str, rest: dict[str, Any]) -> str | None:
    """``record[key]`` as ISO-8601 UTC with milliseconds and ``Z``; a value that is not a
    date is kept in ``rest`` under its snake-case name."""
    raw = record.get(key)
    text = _iso_ms(raw)
    if text is None and raw is not None and raw != "":
        rest[snake(key)] = raw
    return text


@functools.lru_cache(maxsize=4096)
def bucket(raw: str, secs: int | None) -> tuple[str, str | None] | None:
    """(start, end) of a bucket starting at ``raw`` and ``secs`` long, as ISO-8601 UTC ms
    text (buckets repeat row after row: cached); ``None`` when ``raw`` is not a date."""
    moment = parse_date(raw)
    if moment is None:
        return None
    end = None if secs is None else _format_ms(moment + timedelta(seconds=secs))
    return _format_ms(moment), end


@functools.lru_cache(maxsize=1024)
def period(start: str, end: str) -> tuple[str, str | None, int | None] | None:
    """(start, end, length in ns) of a ``StartDate``/``EndDate`` pair; ``None`` when the
    start is not a date (end and length ``None`` when the end is not one after it)."""
    first = parse_date(start)
    if first is None:
        return None
    last = parse_date(end)
    if last is None or last < first:
        return _format_ms(first), None, None
    length = (last - first) // timedelta(microseconds=1) * 1000
    return _format_ms(first), _format_ms(last), length


def types_of(first: str, action: ActionMapping) -> list[str]:
    """``event.type``: ``first`` and, when the action says it, ``allowed`` / ``denied``."""
    return [first] if action.ecs_type is None else [first, action.ecs_type]


def direction_of(
    raw: object, sender: str | None, recipient: str | None, local_domains: Sequence[str]
) -> tuple[Direction | None, str | None]:
    """(known direction, ``email.direction`` text) from Microsoft's ``Direction`` column;
    without one, from the local domains (:func:`.ecs.email_direction`). An unknown value is
    kept, lower-cased (``Unknown`` → ``unknown``)."""
    if raw is None or raw == "" or raw.__class__ is not str:
        derived = email_direction(sender, recipient, local_domains)
        return derived, derived
    lower = str(raw).lower()
    known = _DIRECTIONS.get(lower)
    return known, known or lower


def email_part(
    *,
    direction: str | None,
    local_id: str | None,
    message_id: str | None,
    senders: list[str] | None,
    recipients: list[str] | None,
    subject: str | None = None,
    size: int | None = None,
    file_name: str | None = None,
) -> dict[str, Any]:
    """``email.*`` as :mod:`.ecs` writes it (``email.attachments.file.size`` = message size)."""
    part: dict[str, Any] = {}
    if direction is not None:
        part["direction"] = direction
    if senders:
        part["from"] = {"address": senders}
    if recipients:
        part["to"] = {"address": recipients}
    if local_id is not None:
        part["local_id"] = local_id
    if message_id is not None:
        part["message_id"] = message_id
    if subject is not None:
        part["subject"] = subject
    if size is not None or file_name is not None:
        attachment: dict[str, Any] = {}
        if file_name is not None:
            attachment["name"] = file_name
        if size is not None:
            attachment["size"] = size
        part["attachments"] = {"file": attachment}
    return part


def endpoint(ip: str | None, address: str | None) -> dict[str, Any]:
    """``source.*`` / ``destination.*``: the IP, the domain and the user of an address."""
    name, domain, _ = _parts(address)
    return _side(ip, address, name, domain)


def own_side(
    direction: Direction | None, sender: str | None, recipient: str | None
) -> dict[str, Any]:
    """``user.*``: the tenant's side (recipient inbound, sender outbound, both internal);
    nobody when the direction is external or unknown."""
    if direction is None or direction == "external":
        return {}
    return _own_side(direction, sender, recipient)


def person(address: str | None) -> dict[str, Any]:
    """``user.*`` of one address: email, id, name (local part), domain."""
    if address is None:
        return {}
    name, domain, _ = _parts(address)
    part: dict[str, Any] = {"email": address, "id": address}
    if name is not None:
        part["name"] = name
    if domain is not None:
        part["domain"] = domain
    return part


def related_users(*addresses: str | None) -> list[str]:
    """``related.user``: the addresses, then their local parts, each once, in order."""
    present = [address for address in addresses if address]
    users = present.copy()
    for address in present:
        name = _parts(address)[0]
        if name:
            users.append(name)
    # Distinct as a rule (different addresses and their local parts): dedupe only when not.
    return users if len(set(users)) == len(users) else list(dict.fromkeys(users))


def addresses(raw: object) -> list[str]:
    """A ``;`` or ``,`` separated address list (DLP ``Recipients``) as a list."""
    text = _text(raw)
    if text is None:
        return []
    if ";" not in text and "," not in text:
        text = text.strip()
        return [text] if text else []
    return list(dict.fromkeys(item.strip() for item in re.split(r"[;,]", text) if item.strip()))
