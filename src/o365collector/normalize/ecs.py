"""Message trace as an ECS document: a Graph row and the RWS row of a message alike.

Graph ``exchangeMessageTrace`` rows (camelCase: ``receivedDateTime``, ``senderAddress``…)
and Reporting Web Service ``MessageTrace`` rows (PascalCase: ``Received``,
``SenderAddress``…) are told apart by their keys and give the same document; only the
envelope (``o365collector.*``, ``event.id``), ``event.original`` and the leftovers under
``o365.message_trace`` (RWS's ``Organization``, query window and row index; the raw status
as spelled) depend on the source.

The mapping follows Elastic's Exchange Online message trace integration (the golden pair in
``../shared/fixtures/elastic-integrations``; reference ``normalization.md`` §2). Where
Elastic's ingest pipeline derives something the collector does not, the document differs
on purpose:

- ``source.geo.*``, ``source.as.*`` (and ``destination.*``): GeoIP / ASN enrichment is the
  SIEM's ingest job; the collector carries no GeoIP database.
- ``source.registered_domain``, ``.top_level_domain``, ``.subdomain`` (and
  ``destination.*``): they need the Public Suffix List (``azure.microsoft.com`` →
  ``microsoft.com``), which the collector does not ship; a SIEM's registered-domain
  processor adds them. ``source.domain`` / ``destination.domain`` are set.
- ``event.start`` / ``event.end``: RWS's ``StartDate`` / ``EndDate`` are the query window,
  not a property of the message (Elastic dropped them later too); they are kept as
  ``o365.message_trace.start_date`` / ``end_date``.
- ``microsoft.online_message_trace.*``: Elastic copies the whole record there. Here the raw
  record is ``event.original`` (on request) and only what no ECS field holds is kept, under
  ``o365.message_trace.*`` in snake case (fields unknown to the mapper keep their name).
- ``email.delivery_timestamp``: Elastic copies the raw text (a naive RWS value stays
  naive). Here it is ISO-8601 UTC with ``Z``, cut to the millisecond like ``@timestamp``,
  so Graph, RWS JSON light (7 digits) and RWS verbose (``/Date(ms)/``) agree.
- ``event.original``: the same JSON object, but serialised from the parsed record (compact,
  ``<`` rather than ``\\u003c``), not the line as read.
- ``ecs.version`` is the ECS release the fields are checked against (``9.4.0``), not
  Elastic's ``8.11.0``; Elastic's ``tags: [preserve_original_event]`` is its switch for
  ``event.original``, which here is ``include_original``.
- ``email.direction``: see :func:`email_direction` (``unknown`` rather than Elastic's
  ``external`` or nothing).

Set here and not by Elastic's 1.21 pipeline: ``event.id`` (the collector's deterministic id,
also the ``_id`` to index under), ``event.kind`` / ``category`` / ``type``, ``event.action``
(see :mod:`.status`), ``related.ip``. Absent, ``null`` and ``""`` values are omitted.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any, Literal

import orjson

from o365collector.dates import iso_ms
from o365collector.event import Event
from o365collector.normalize.status import status_of

ECS_VERSION = "9.4.0"
PRODUCT_NAMESPACE = "o365"
ENVELOPE_NAMESPACE = "o365collector"

Direction = Literal["inbound", "outbound", "internal", "external"]


@dataclass(frozen=True, slots=True)
class _Names:
    """The record keys of one source's message trace row."""

    trace_id: str
    message_id: str
    sender: str
    recipient: str
    received: str
    subject: str
    size: str
    from_ip: str
    to_ip: str
    status: str

    def mapped(self) -> frozenset[str]:
        """Every key an ECS field takes."""
        return frozenset(getattr(self, field.name) for field in fields(self))


GRAPH_NAMES = _Names(
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
RWS_NAMES = _Names(
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
_MAPPED = {GRAPH_NAMES: GRAPH_NAMES.mapped(), RWS_NAMES: RWS_NAMES.mapped()}
# RWS-only keys, kept under o365.message_trace by these names; dates as ISO-8601 UTC.
_RWS_LEFTOVERS = {
    "Organization": "organization",
    "StartDate": "start_date",
    "EndDate": "end_date",
    "Index": "index",
}
_DATE_LEFTOVERS = frozenset({"start_date", "end_date"})
_ENVELOPE_KEYS = frozenset({"__metadata"})  # RWS verbose JSON's per-row OData envelope


# Each source's keys in _Names order (unpacked once per row), and the keys ECS fields take.
_GRAPH_KEYS = (astuple(GRAPH_NAMES), _MAPPED[GRAPH_NAMES])
_RWS_KEYS = (astuple(RWS_NAMES), _MAPPED[RWS_NAMES])


@functools.lru_cache(maxsize=256)
def _trace_layout(keys: tuple[str, ...], rws: bool) -> tuple[tuple[str, str, bool], ...]:
    """The leftover keys of a row with these ``keys`` (in order), each with its name under
    ``o365.message_trace`` and whether it is a query-window date. A page's rows share
    their keys, so the per-key work is done once per layout, not per row."""
    mapped = _RWS_KEYS[1] if rws else _GRAPH_KEYS[1]
    layout = []
    for key in keys:
        if key in mapped or key in _ENVELOPE_KEYS:
            continue
        name = _RWS_LEFTOVERS.get(key, key)  # renamed in either source
        layout.append((key, name, name in _DATE_LEFTOVERS))
    return tuple(layout)


def message_trace_to_ecs(
    event: Event, *, local_domains: Sequence[str] = (), include_original: bool = False
) -> dict[str, Any]:
    """The ECS document of one message trace row (Graph or RWS), as nested dicts.

    Args:
        event: The event; ``event.record`` is the untouched Graph or RWS row.
        local_domains: The tenant's own mail domains, for ``email.direction`` and ``user.*``.
        include_original: Put the raw record, as a JSON string, in ``event.original``.

    Returns:
        The document: ``@timestamp``, ``ecs``, ``event``, ``email``, ``source``,
        ``destination``, ``user``, ``related``, ``o365collector`` (tenant, stream, event id)
        and ``o365.message_trace`` (what no ECS field holds). Absent values are omitted.
    """
    return map_message_trace(event, local_domains, include_original)


def map_message_trace(  # noqa: PLR0912, PLR0915 - one flat pass is the cost budget
    event: Event, local_domains: Sequence[str], include_original: bool
) -> dict[str, Any]:
    """:func:`message_trace_to_ecs` as a :data:`~.mapper.Mapper` (what the sinks'
    :class:`~.normalizer.Normalizer` calls: positional, no wrapper per event).

    One pass with few calls: normalization's budget is a few microseconds per event
    (``bench/normalize.py``), so each value is read and checked once, inline, and what
    repeats across rows (an address's parts, a status, the tenant's domains) is cached.
    """
    record = event.record
    keys, mapped = _RWS_KEYS if "MessageTraceId" in record or "Received" in record else _GRAPH_KEYS
    (
        k_trace,
        k_message,
        k_sender,
        k_recipient,
        k_received,
        k_subject,
        k_size,
        k_from,
        k_to,
        k_status,
    ) = keys
    get = record.get
    raw_status = get(k_status)
    status = status_of(raw_status if raw_status.__class__ is str and raw_status else None)
    sender = get(k_sender)
    if sender.__class__ is not str or not sender:
        sender = None
    recipient = get(k_recipient)
    if recipient.__class__ is not str or not recipient:
        recipient = None
    from_ip = get(k_from)
    if from_ip.__class__ is not str or not from_ip:
        from_ip = None
    to_ip = get(k_to)
    if to_ip.__class__ is not str or not to_ip:
        to_ip = None
    s_name, s_domain, s_lower = _parts(sender)
    r_name, r_domain, r_lower = _parts(recipient)
    direction = direction_of(s_lower, r_lower, local_domains) if local_domains else None
    raw_received = get(k_received)
    received = iso_ms(raw_received)

    event_id = event.event_id
    event_part: dict[str, Any] = {
        "id": event_id,
        "kind": "event",
        "category": ["email"],
        "type": ["info"],
        "outcome": status.ecs_outcome,
    }
    if status.ecs_action:
        event_part["action"] = status.ecs_action
    if include_original:
        event_part["original"] = orjson.dumps(record).decode()
    if received is not None:
        doc: dict[str, Any] = {"@timestamp": received, "ecs": {"version": ECS_VERSION}}
    else:
        doc = {"ecs": {"version": ECS_VERSION}}
    doc["event"] = event_part

    email: dict[str, Any] = {}
    if direction is not None:
        email["direction"] = direction
    if sender is not None:
        email["from"] = {"address": [sender]}
    if recipient is not None:
        email["to"] = {"address": [recipient]}
    value = get(k_trace)
    if value.__class__ is str and value:
        email["local_id"] = value
    value = get(k_message)
    if value.__class__ is str and value:
        email["message_id"] = value
    value = get(k_subject)
    if value.__class__ is str and value:
        email["subject"] = value
    if received is not None:
        email["delivery_timestamp"] = received
    raw_size = get(k_size)
    size = raw_size if raw_size.__class__ is int else _long(raw_size)
    if size is not None:
        email["attachments"] = {"file": {"size": size}}
    doc["email"] = email

    if sender is not None:
        doc["source"] = _side(from_ip, sender, s_name, s_domain)
    elif from_ip is not None:
        doc["source"] = {"ip": from_ip}
    if recipient is not None:
        doc["destination"] = _side(to_ip, recipient, r_name, r_domain)
    elif to_ip is not None:
        doc["destination"] = {"ip": to_ip}
    if direction == "inbound":
        if recipient is not None:
            doc["user"] = _own_user(recipient, r_name)
    elif direction == "outbound":
        if sender is not None:
            doc["user"] = _own_user(sender, s_name)
    elif direction == "internal" and (sender is not None or recipient is not None):
        doc["user"] = _both_users(recipient, r_name, sender, s_name)
    # Distinct as a rule (two addresses and their local parts): dedupe only when not. An
    # address is never its own local part, so four pairs decide.
    if r_name is not None and s_name is not None:  # a local part implies its address
        users = [recipient, sender, r_name, s_name]
        if recipient in (sender, s_name) or r_name in (s_name, sender):
            users = list(dict.fromkeys(users))
    else:
        users = [v for v in (recipient, sender, r_name, s_name) if v is not None]
        if len(users) > 1 and len(set(users)) < len(users):
            users = list(dict.fromkeys(users))
    related: dict[str, Any] = {"user": users} if users else {}
    if from_ip is not None:
        related["ip"] = [from_ip] if to_ip is None or to_ip == from_ip else [from_ip, to_ip]
    elif to_ip is not None:
        related["ip"] = [to_ip]
    if related:
        doc["related"] = related
    doc[ENVELOPE_NAMESPACE] = {"tenant": event.tenant, "stream": event.stream, "event_id": event_id}

    leftovers: dict[str, Any] = {}
    if raw_status is not None and raw_status != "":
        leftovers["status"] = raw_status
    if received is None and raw_received is not None and raw_received != "":
        leftovers["received"] = raw_received
    if size is None and raw_size is not None and raw_size != "":
        leftovers["size"] = raw_size
    if not mapped.issuperset(record):  # Graph rows hold mapped keys only: no walk
        for key, name, is_date in _trace_layout(tuple(record), keys is _RWS_KEYS[0]):
            value = record[key]
            if value.__class__ is str:
                if not value:
                    continue
                if is_date:
                    value = _iso_ms_cached(value)
            elif value is None or (value.__class__ in (dict, list) and not value):
                continue
            leftovers[name] = value
    if leftovers:
        doc[PRODUCT_NAMESPACE] = {"message_trace": leftovers}
    return doc


def _side(
    ip: str | None, address: str | None, name: str | None, domain: str | None
) -> dict[str, Any]:
    """``source.*`` or ``destination.*`` from an IP and an address split once."""
    part: dict[str, Any] = {}
    if ip is not None:
        part["ip"] = ip
    if address is not None:
        if domain is not None:
            part["domain"] = domain
        user: dict[str, Any] = {"email": address, "id": address}
        if name is not None:
            user["name"] = name
        if domain is not None:
            user["domain"] = domain
        part["user"] = user
    return part


def _own_user(address: str, name: str | None) -> dict[str, Any]:
    """``user.*`` of one address on the tenant's side."""
    if name is None:
        return {"email": address, "id": address}
    return {"email": address, "id": address, "name": name}


def _both_users(
    recipient: str | None, r_name: str | None, sender: str | None, s_name: str | None
) -> dict[str, Any]:
    """``user.*`` of an internal message: both sides, recipient first, as lists (one
    value as itself when both are the same); as :func:`_own_side` does, without splits."""
    if recipient is None or sender is None or recipient == sender:
        one = recipient or sender
        name = r_name if recipient is not None else s_name
        return _own_user(one, name) if one is not None else {}
    both = [recipient, sender]
    part: dict[str, Any] = {"email": both, "id": both}
    if r_name is not None and s_name is not None:
        part["name"] = [r_name, s_name] if r_name != s_name else r_name
    elif r_name is not None or s_name is not None:
        part["name"] = r_name or s_name
    return part


def _own_side(direction: Direction, sender: str | None, recipient: str | None) -> dict[str, Any]:
    """``user.*``: the tenant's own side (recipient inbound, sender outbound, both
    internal, recipient first as lists)."""
    if direction == "inbound":
        return _own_user(recipient, _parts(recipient)[0]) if recipient else {}
    if direction == "outbound":
        return _own_user(sender, _parts(sender)[0]) if sender else {}
    recipient = recipient or None
    sender = sender or None
    return _both_users(recipient, _parts(recipient)[0], sender, _parts(sender)[0])


@functools.lru_cache(maxsize=8192)
def _parts(address: str | None) -> tuple[str | None, str | None, str | None]:
    """An address's local part, domain and lower-case domain (addresses repeat: cached)."""
    name, domain = _split(address)
    return name, domain, None if domain is None else domain.lower()


@functools.lru_cache(maxsize=64)
def _local_set(local_domains: tuple[str, ...]) -> frozenset[str]:
    """A tenant's local domains as a lower-case set (made once per tenant)."""
    return frozenset(domain.strip().lower() for domain in local_domains)


def email_direction(
    sender: str | None, recipient: str | None, local_domains: Sequence[str]
) -> Direction | None:
    """``email.direction`` from the sender's and recipient's domains.

    ``inbound`` when only the recipient's domain is local, ``outbound`` when only the
    sender's is, ``internal`` when both are, ``external`` when neither is (Elastic's value;
    normalization.md §2.2). ``None`` (the field is omitted) when no local domain is
    configured: there is nothing to judge by.

    Domains compare case-insensitively and exactly: a sub-domain of a local domain is not
    local.
    """
    if not local_domains:
        return None
    return direction_of(_parts(sender)[2], _parts(recipient)[2], local_domains)


def direction_of(
    sender_domain: str | None, recipient_domain: str | None, local_domains: Sequence[str]
) -> Direction | None:
    """The rule of :func:`email_direction` on lower-case domains the caller has at hand."""
    if not local_domains:
        return None
    local = _local_set(tuple(local_domains))
    if sender_domain in local:
        return "internal" if recipient_domain in local else "outbound"
    return "inbound" if recipient_domain in local else "external"


def _put(part: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is ``None``, ``""`` or an empty dict or list."""
    if value.__class__ is str:  # the usual value: one check
        if value:
            part[key] = value
    elif value is not None and value != "" and not (isinstance(value, (dict, list)) and not value):
        part[key] = value


def _text(value: object) -> str | None:
    """A non-empty string, else ``None`` (Graph sends ``""`` where RWS sends ``null``)."""
    if value.__class__ is str:  # the usual value: one check
        return value or None
    if isinstance(value, str) and value:
        return value
    return None


def _long(value: object) -> int | None:
    """An integer (a size), also from its decimal text; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# A vendor date as ``YYYY-MM-DDThh:mm:ss.fffZ`` (UTC, cut to the millisecond), with the
# fast paths for what Graph and RWS send (plain ISO text, ``/Date(ms)/``).
_iso_ms = iso_ms


@functools.lru_cache(maxsize=256)
def _iso_ms_cached(value: str) -> str | None:
    """:func:`_iso_ms` for values a page repeats on every row (RWS's query window)."""
    return _iso_ms(value)


def _format_ms(moment: datetime) -> str:
    """A UTC datetime (as :func:`parse_date` returns) as ISO-8601 with milliseconds and ``Z``."""
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _split(address: str | None) -> tuple[str | None, str | None]:
    """An address's local part and domain (at the last ``@``; ``None`` where missing)."""
    if address is None:
        return None, None
    local, at, domain = address.rpartition("@")
    if not at:
        return None, None
    return local or None, domain or None
