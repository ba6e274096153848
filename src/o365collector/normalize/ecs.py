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
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

import orjson

from o365collector.dates import parse_date, plain_iso
from o365collector.event import Event
from o365collector.normalize.status import StatusMapping, status_of

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
_GRAPH_KEYS = (GRAPH_NAMES, _MAPPED[GRAPH_NAMES])
_RWS_KEYS = (RWS_NAMES, _MAPPED[RWS_NAMES])
# RWS-only keys, kept under o365.message_trace by these names; dates as ISO-8601 UTC.
_RWS_LEFTOVERS = {
    "Organization": "organization",
    "StartDate": "start_date",
    "EndDate": "end_date",
    "Index": "index",
}
_DATE_LEFTOVERS = frozenset({"start_date", "end_date"})
_ENVELOPE_KEYS = frozenset({"__metadata"})  # RWS verbose JSON's per-row OData envelope


def message_trace_to_ecs(  # noqa: PLR0912, PLR0915 - one flat pass is the cost budget
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

    One pass with few calls: normalization's budget is a few microseconds per event
    (``bench/normalize.py``), so each value is read and checked once, inline.
    """
    record = event.record
    names, mapped = _RWS_KEYS if "MessageTraceId" in record or "Received" in record else _GRAPH_KEYS
    get = record.get
    raw_status = get(names.status)
    status = status_of(raw_status if raw_status.__class__ is str and raw_status else None)
    sender = get(names.sender)
    if sender.__class__ is not str or not sender:
        sender = None
    recipient = get(names.recipient)
    if recipient.__class__ is not str or not recipient:
        recipient = None
    from_ip = get(names.from_ip)
    if from_ip.__class__ is not str or not from_ip:
        from_ip = None
    to_ip = get(names.to_ip)
    if to_ip.__class__ is not str or not to_ip:
        to_ip = None
    s_name, s_domain, s_lower = _parts(sender)
    r_name, r_domain, r_lower = _parts(recipient)
    direction: Direction | None = None
    if local_domains:
        local = _local_set(tuple(local_domains))
        from_local = s_lower in local
        to_local = r_lower in local
        if from_local:
            direction = "internal" if to_local else "outbound"
        else:
            direction = "inbound" if to_local else "external"
    raw_received = get(names.received)
    received = _iso_ms(raw_received)

    doc: dict[str, Any] = {}
    if received is not None:
        doc["@timestamp"] = received
    doc["ecs"] = {"version": ECS_VERSION}
    event_part: dict[str, Any] = {
        "id": event.event_id,
        "kind": "event",
        "category": ["email"],
        "type": ["info"],
        "outcome": status.ecs_outcome,
    }
    if status.ecs_action:
        event_part["action"] = status.ecs_action
    if include_original:
        event_part["original"] = orjson.dumps(record).decode()
    doc["event"] = event_part

    email: dict[str, Any] = {}
    if direction is not None:
        email["direction"] = direction
    if sender is not None:
        email["from"] = {"address": [sender]}
    if recipient is not None:
        email["to"] = {"address": [recipient]}
    value = get(names.trace_id)
    if value.__class__ is str and value:
        email["local_id"] = value
    value = get(names.message_id)
    if value.__class__ is str and value:
        email["message_id"] = value
    value = get(names.subject)
    if value.__class__ is str and value:
        email["subject"] = value
    if received is not None:
        email["delivery_timestamp"] = received
    raw_size = get(names.size)
    size = _long(raw_size)
    if size is not None:
        email["attachments"] = {"file": {"size": size}}
    doc["email"] = email

    if from_ip is not None or sender is not None:
        doc["source"] = _side(from_ip, sender, s_name, s_domain)
    if to_ip is not None or recipient is not None:
        doc["destination"] = _side(to_ip, recipient, r_name, r_domain)
    if direction == "inbound":
        if recipient is not None:
            doc["user"] = _own_user(recipient, r_name)
    elif direction == "outbound":
        if sender is not None:
            doc["user"] = _own_user(sender, s_name)
    elif direction == "internal" and (sender is not None or recipient is not None):
        doc["user"] = _own_side(direction, sender, recipient)
    related: dict[str, Any] = {}
    users = [v for v in (recipient, sender, r_name, s_name) if v is not None]
    if users:
        related["user"] = list(dict.fromkeys(users)) if len(users) > 1 else users
    if from_ip is not None:
        related["ip"] = [from_ip] if to_ip is None or to_ip == from_ip else [from_ip, to_ip]
    elif to_ip is not None:
        related["ip"] = [to_ip]
    if related:
        doc["related"] = related
    doc[ENVELOPE_NAMESPACE] = {
        "tenant": event.tenant,
        "stream": event.stream,
        "event_id": event.event_id,
    }

    leftovers: dict[str, Any] = {}
    if raw_status is not None and raw_status != "":
        leftovers["status"] = raw_status
    if received is None and raw_received is not None and raw_received != "":
        leftovers["received"] = raw_received
    if size is None and raw_size is not None and raw_size != "":
        leftovers["size"] = raw_size
    for key, value in record.items():
        if key in mapped or key in _ENVELOPE_KEYS:
            continue
        if value is None or value == "" or (value.__class__ in (dict, list) and not value):
            continue
        name = _RWS_LEFTOVERS.get(key, key)
        if name in _DATE_LEFTOVERS:
            value = _iso_ms_cached(value) if value.__class__ is str else value
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


def _own_side(direction: Direction, sender: str | None, recipient: str | None) -> dict[str, Any]:
    """``user.*``: the tenant's own side (recipient inbound, sender outbound, both
    internal, recipient first as lists)."""
    if direction == "inbound":
        addresses = [recipient] if recipient else []
    elif direction == "outbound":
        addresses = [sender] if sender else []
    else:
        addresses = _unique([recipient, sender])
    if not addresses:
        return {}
    one = _one_or_list(addresses)
    part: dict[str, Any] = {"email": one, "id": one}
    local_names = _unique([_split(address)[0] for address in addresses])
    if local_names:
        part["name"] = _one_or_list(local_names)
    return part


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
    local = _local_set(tuple(local_domains))
    from_local = _domain(sender) in local
    to_local = _domain(recipient) in local
    if from_local and to_local:
        return "internal"
    if to_local:
        return "inbound"
    if from_local:
        return "outbound"
    return "external"


def _is_rws(record: dict[str, Any]) -> bool:
    """Whether the row is RWS's (PascalCase) rather than Graph's (camelCase)."""
    return "MessageTraceId" in record or "Received" in record


def _event_part(event: Event, status: StatusMapping, *, include_original: bool) -> dict[str, Any]:
    """``event.*``: the id, the classification and the status's outcome and action."""
    part: dict[str, Any] = {
        "id": event.event_id,
        "kind": "event",
        "category": ["email"],
        "type": ["info"],
        "outcome": status.ecs_outcome,
    }
    _put(part, "action", status.ecs_action)
    if include_original:
        part["original"] = orjson.dumps(event.record).decode()
    return part


def _email_part(
    record: dict[str, Any], names: _Names, direction: Direction | None, received: str | None
) -> dict[str, Any]:
    """``email.*``: addresses, ids, subject, size, direction and delivery time."""
    part: dict[str, Any] = {}
    _put(part, "direction", direction)
    sender = _text(record.get(names.sender))
    recipient = _text(record.get(names.recipient))
    if sender is not None:
        part["from"] = {"address": [sender]}
    if recipient is not None:
        part["to"] = {"address": [recipient]}
    _put(part, "local_id", _text(record.get(names.trace_id)))
    _put(part, "message_id", _text(record.get(names.message_id)))
    _put(part, "subject", _text(record.get(names.subject)))
    _put(part, "delivery_timestamp", received)
    size = _long(record.get(names.size))
    if size is not None:
        part["attachments"] = {"file": {"size": size}}
    return part


def _endpoint(ip: str | None, address: str | None) -> dict[str, Any]:
    """``source.*`` or ``destination.*``: the IP, the domain and the user of an address."""
    part: dict[str, Any] = {}
    _put(part, "ip", ip)
    if address is None:
        return part
    name, domain = _split(address)
    _put(part, "domain", domain)
    user: dict[str, Any] = {"email": address, "id": address}
    _put(user, "name", name)
    _put(user, "domain", domain)
    part["user"] = user
    return part


def _user_part(
    direction: Direction | None, sender: str | None, recipient: str | None
) -> dict[str, Any]:
    """``user.*``: the tenant's own side: the recipient inbound, the sender outbound, both
    (recipient first, as lists) internal, nobody when external or unknown."""
    if direction == "inbound":
        users = [recipient]
    elif direction == "outbound":
        users = [sender]
    elif direction == "internal":
        users = [recipient, sender]
    else:
        return {}
    addresses = _unique(users)
    if not addresses:
        return {}
    part: dict[str, Any] = {"email": _one_or_list(addresses), "id": _one_or_list(addresses)}
    names = _unique([_split(address)[0] for address in addresses])
    _put(part, "name", _one_or_list(names) if names else None)
    return part


def _related_part(
    record: dict[str, Any], names: _Names, sender: str | None, recipient: str | None
) -> dict[str, Any]:
    """``related.user`` (recipient, sender, their local parts) and ``related.ip``."""
    part: dict[str, Any] = {}
    users = _unique([recipient, sender, _split(recipient)[0], _split(sender)[0]])
    ips = _unique([_text(record.get(names.from_ip)), _text(record.get(names.to_ip))])
    _put(part, "user", users or None)
    _put(part, "ip", ips or None)
    return part


def _leftovers(record: dict[str, Any], names: _Names, received: str | None) -> dict[str, Any]:
    """``o365.message_trace.*``: the raw status, and every field no ECS field holds."""
    part: dict[str, Any] = {}
    _put(part, "status", record.get(names.status))
    if received is None:
        _put(part, "received", record.get(names.received))
    if _long(record.get(names.size)) is None:
        _put(part, "size", record.get(names.size))
    mapped = _MAPPED[names]
    for key, value in record.items():
        if key in mapped or key in _ENVELOPE_KEYS:
            continue
        name = _RWS_LEFTOVERS.get(key, key)
        if name in _DATE_LEFTOVERS:
            value = _iso_ms(value) or value
        _put(part, name, value)
    return {"message_trace": part} if part else {}


def _put(part: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is ``None``, ``""`` or an empty dict or list."""
    if value is None or value == "" or (isinstance(value, (dict, list)) and not value):
        return
    part[key] = value


def _text(value: object) -> str | None:
    """A non-empty string, else ``None`` (Graph sends ``""`` where RWS sends ``null``)."""
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


def _iso_ms(value: object) -> str | None:
    """A vendor date as ``YYYY-MM-DDThh:mm:ss.fffZ`` (UTC, cut to the millisecond).

    Zone-less and ``Z`` ISO values (what Graph and RWS JSON light send) are cut as text,
    after the calendar is checked; other shapes (``/Date(ms)/``, offsets) go through
    :func:`parse_date`.
    """
    plain = plain_iso(value)
    if plain is not None:
        second, head, millis = plain
        return None if second is None else f"{head}.{millis}Z"
    moment = parse_date(value)
    return None if moment is None else _format_ms(moment)


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


def _domain(address: str | None) -> str | None:
    """An address's domain in lower case, or ``None``."""
    domain = _split(address)[1]
    return None if domain is None else domain.lower()


def _unique(values: Sequence[str | None]) -> list[str]:
    """The present values, first occurrence kept, in order."""
    return list(dict.fromkeys(value for value in values if value))


def _one_or_list(values: list[str]) -> str | list[str]:
    """A single value as itself, several as a list (Elastic's ``user.*`` shape)."""
    return values[0] if len(values) == 1 else values
