"""Message trace ECS documents written straight as JSON text: the sinks' hot path.

:func:`.ecs.map_message_trace` builds a document of ~20 dicts and lists that
``orjson.dumps`` then walks: most of an ECS line's CPU goes to making and walking them. Yet
most of the text is fixed (keys, ``"kind":"event"``…) or repeats across rows (an address's
``source.user``, a status's outcome and action, the tenant and stream). Here the repeated
parts are JSON text made once, by orjson from the dicts the mapper builds, and each row
splices in its own values, written as they are when they need no escaping.

The cost is then the number of pieces spliced (each ~25 ns of bytecode), not their length,
so the cached parts carry the fixed text around them: an address used as the sender brings
``"from":{"address":[…]},"to":{"address":[`` along.

The mapper stays the definition: :func:`message_trace_json` returns exactly
``orjson.dumps(map_message_trace(event, local_domains, include_original))``, or raises
where that raises (``tests/normalize/test_ecs_text.py`` holds it to that). Rows of another
shape than the usual one (a missing address, subject, IP…) are mapped and dumped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from o365collector.dates import iso_ms
from o365collector.event import Event
from o365collector.normalize.ecs import (
    _GRAPH_KEYS,
    _RWS_KEYS,
    ECS_VERSION,
    _both_users,
    _local_set,
    _split,
    map_message_trace,
    trace_leftovers,
)
from o365collector.normalize.status import status_of

_CACHE_MAX = 4096
"""Entries per cache; a cache that fills is emptied, not evicted per entry. An address
costs ~1 KB of text: 4,096 hold ~4 MiB at most. The emulator's 200k-row backlog draws on
~8,000 addresses: with 2,048 places most were misses and the backlog's ECS lines cost what
the mapper's did; with 8,192, 1 us less per event and 6 MiB more peak RSS."""
_INT_MIN = -(2**63)  # orjson's integer range: outside it orjson refuses, str() would not
_INT_MAX = 2**64 - 1
_HEAD = '"ecs":' + orjson.dumps({"version": ECS_VERSION}).decode() + ',"event":{"id":"'
_KIND = '","kind":"event","category":["email"],"type":["info"]'


@dataclass(slots=True)
class _Address:
    """One address's JSON text, made once: every row it appears on reuses it.

    Slots, not a named tuple: a slot is read in one specialised step. Not frozen: a frozen
    dataclass sets each field through ``object.__setattr__`` (1.9 us a miss, against 0.3).
    """

    text: str
    """The address as a JSON string (with its quotes)."""
    name: str | None
    """The local part (``None`` without an ``@`` or before it)."""
    name_text: str | None
    """The local part as a JSON string."""
    lower_domain: str | None
    """The lower-case domain, for ``email.direction``."""
    sender: str
    """As the sender: ``"from":{"address":[…]},"to":{"address":[``."""
    recipient: str
    """As the recipient: ``…]},"local_id":"``."""
    side: str
    """``"domain":…,"user":{…}}`` closing ``source`` / ``destination`` (after the IP)."""
    own: str
    """``,"user":{"email":…,"id":…}``: this address as the tenant's side alone."""


_ADDRESSES: dict[str, _Address] = {}
_STATUSES: dict[str, tuple[str, str]] = {}
_ENVELOPES: dict[tuple[str, str], str] = {}
_LOCALS: dict[Sequence[str], frozenset[str]] = {}


def _address(address: str) -> _Address:
    """The :class:`_Address` of ``address``: a non-empty string that needs no JSON escaping
    (the caller checked), so its text and its parts' are written as they are.

    A miss costs a few string joins, as little as the mapper spends on an address: many
    addresses are seen once (external senders), and a cache of them would cost more than
    it saves (dumping the mapper's dicts for each made the backlog's ECS lines slower).
    """
    found = _ADDRESSES.get(address)
    if found is None:
        if len(_ADDRESSES) >= _CACHE_MAX:
            _ADDRESSES.clear()
        name, domain = _split(address)  # not through _parts' cache: this is the cache
        lower = None if domain is None else domain.lower()
        text = f'"{address}"'
        name_text = None if name is None else f'"{name}"'
        # .ecs._own_user and .ecs._side (without the IP), as text
        user = (
            f'"email":{text},"id":{text}'
            if name is None
            else (f'"email":{text},"id":{text},"name":{name_text}')
        )
        if domain is None:
            side = f'"user":{{{user}}}}}'
        else:
            side = f'"domain":"{domain}","user":{{{user},"domain":"{domain}"}}}}'
        found = _ADDRESSES[address] = _Address(
            text,
            name,
            name_text,
            lower,
            f'"from":{{"address":[{text}]}},"to":{{"address":[',
            f'{text}]}},"local_id":"',
            side,
            f',"user":{{{user}}}',
        )
    return found


def _status(raw: str) -> tuple[str, str]:
    """A raw status (a string) as ``,"outcome":…[,"action":…]`` for ``event`` and as
    ``,"o365":{"message_trace":{"status":…}}`` (``""`` for ``""``, which is omitted)."""
    found = _STATUSES.get(raw)
    if found is None:
        if len(_STATUSES) >= _CACHE_MAX:
            _STATUSES.clear()
        status = status_of(raw or None)
        part: dict[str, Any] = {"outcome": status.ecs_outcome}
        if status.ecs_action:
            part["action"] = status.ecs_action
        event = "," + orjson.dumps(part).decode()[1:-1]
        product = f',"o365":{{"message_trace":{orjson.dumps({"status": raw}).decode()}}}'
        found = _STATUSES[raw] = (event, product if raw else "")
    return found


def _envelope(tenant: str, stream: str) -> str:
    """``,"o365collector":{"tenant":…,"stream":…,"event_id":`` of a tenant's stream."""
    key = (tenant, stream)
    found = _ENVELOPES.get(key)
    if found is None:
        if len(_ENVELOPES) >= _CACHE_MAX:
            _ENVELOPES.clear()
        text = orjson.dumps({"tenant": tenant, "stream": stream}).decode()[:-1]
        found = f',"o365collector":{text},"event_id":'
        if tenant.__class__ is str and stream.__class__ is str:  # 1 and True are one key
            _ENVELOPES[key] = found
    return found


def _locals(local_domains: Sequence[str]) -> frozenset[str]:
    """The tenant's local domains as a lower-case set (:func:`.ecs._local_set`), looked up
    by the tuple the normalizer passes without a call per row."""
    key = tuple(local_domains)
    found = _LOCALS.get(key)
    if found is None:
        if len(_LOCALS) >= _CACHE_MAX:
            _LOCALS.clear()
        found = _LOCALS[key] = _local_set(key)
    return found


def _inner(value: str) -> str:
    """``value`` as JSON string content (escaped, without the quotes)."""
    return orjson.dumps(value).decode()[1:-1]


def message_trace_json(  # noqa: PLR0912, PLR0915 - one flat pass is the cost budget
    event: Event, local_domains: Sequence[str], include_original: bool
) -> bytes:
    """``orjson.dumps(map_message_trace(event, local_domains, include_original))``, written
    as text (see the module) for the usual row: a Graph or RWS row with both addresses, the
    ids, subject, time, size and source IP. Any other row is mapped and dumped.

    Raises:
        Exception: what the mapper or orjson raises on this row (a surrogate in a string, an
            integer orjson cannot hold…), or a refusal of its own on an odd value (an
            unhashable tenant): the caller maps and dumps the row itself then.
    """
    event_id = event.event_id
    record = event.record
    rws = "MessageTraceId" in record or "Received" in record
    keys, mapped = _RWS_KEYS if rws else _GRAPH_KEYS
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
    sender = get(k_sender)
    recipient = get(k_recipient)
    trace = get(k_trace)
    message = get(k_message)
    subject = get(k_subject)
    from_ip = get(k_from)
    size = get(k_size)
    received = iso_ms(get(k_received))
    if (
        sender.__class__ is not str
        or not sender
        or recipient.__class__ is not str
        or not recipient
        or trace.__class__ is not str
        or not trace
        or message.__class__ is not str
        or not message
        or subject.__class__ is not str
        or not subject
        or from_ip.__class__ is not str
        or not from_ip
        or size.__class__ is not int
        or not _INT_MIN <= size <= _INT_MAX
        or event_id.__class__ is not str
        or received is None
    ):  # not the usual row: the mapper's own document
        return orjson.dumps(map_message_trace(event, local_domains, include_original))
    to_ip = get(k_to)
    if to_ip.__class__ is not str or not to_ip:
        to_ip = None
    # The row's own text, written as it is unless something in it needs escaping (rare).
    probe = f"{event_id}{trace}{message}{subject}{from_ip}{to_ip}{sender}{recipient}"
    if len(orjson.dumps(probe)) != len(probe.encode()) + 2:  # an escape lengthens the text
        both = sender + recipient
        if len(orjson.dumps(both)) != len(both.encode()) + 2:  # addresses are text as they are
            return orjson.dumps(map_message_trace(event, local_domains, include_original))
        event_id, trace, message, subject, from_ip = map(
            _inner, (event_id, trace, message, subject, from_ip)
        )
        to_ip = None if to_ip is None else _inner(to_ip)

    s = _ADDRESSES.get(sender) or _address(sender)
    r = _ADDRESSES.get(recipient) or _address(recipient)
    # email.direction and user: the rule of .ecs.direction_of, inline.
    if not local_domains:
        direction = user = ""
    else:
        try:  # the normalizer's tuple: found, without a call
            local = _LOCALS[local_domains]
        except (KeyError, TypeError):  # a tenant's first row, or a list
            local = _locals(local_domains)
        if s.lower_domain in local:
            if r.lower_domain in local:
                direction = '"direction":"internal",'
                user = _internal_users(recipient, r, sender, s)
            else:
                direction, user = '"direction":"outbound",', s.own
        elif r.lower_domain in local:
            direction, user = '"direction":"inbound",', r.own
        else:
            direction = '"direction":"external",'
            user = ""
    # related.user as the mapper makes it: distinct as a rule, deduped only when not.
    r_name = r.name
    s_name = s.name
    if (
        r_name is not None
        and s_name is not None
        and recipient not in (sender, s_name)
        and r_name not in (s_name, sender)
    ):
        users = f"[{r.text},{s.text},{r.name_text},{s.name_text}]"
    else:
        users = _users(recipient, r_name, sender, s_name)

    raw_status = get(k_status)
    status, left = (
        _STATUSES.get(raw_status) or _status(raw_status)
        if raw_status.__class__ is str
        else (_status("")[0], None)
    )
    if left is None or not mapped.issuperset(record):  # RWS, or a field the mapper keeps
        left = _product(record, rws, raw_status, k_received, received, size)
    if include_original:
        status += ',"original":' + orjson.dumps(orjson.dumps(record).decode()).decode()
    if to_ip is None:
        dest = r.side
        ip_tail = ""
    else:
        dest = f'"ip":"{to_ip}",{r.side}'
        ip_tail = "" if to_ip == from_ip else f',"{to_ip}"'
    envelope = _ENVELOPES.get((event.tenant, event.stream)) or _envelope(event.tenant, event.stream)
    return (
        f'{{"@timestamp":"{received}",{_HEAD}{event_id}{_KIND}{status}}},"email":{{'
        f'{direction}{s.sender}{r.recipient}{trace}","message_id":"{message}",'
        f'"subject":"{subject}","delivery_timestamp":"{received}",'
        f'"attachments":{{"file":{{"size":{size}}}}}}},"source":{{"ip":"{from_ip}",{s.side},'
        f'"destination":{{{dest}{user},"related":{{"user":{users},"ip":["{from_ip}"{ip_tail}]}}'
        f'{envelope}"{event_id}"}}{left}}}'
    ).encode()


def _internal_users(recipient: str, r: _Address, sender: str, s: _Address) -> str:
    """``,"user":…`` of an internal message (:func:`.ecs._both_users`): both addresses,
    recipient first, from their cached text when they differ and both have a local part."""
    if recipient == sender or r.name is None or s.name is None:
        return ',"user":' + orjson.dumps(_both_users(recipient, r.name, sender, s.name)).decode()
    both = f"[{r.text},{s.text}]"
    names = f"[{r.name_text},{s.name_text}]" if r.name != s.name else r.name_text
    return f',"user":{{"email":{both},"id":{both},"name":{names}}}'


def _users(recipient: str, r_name: str | None, sender: str, s_name: str | None) -> str:
    """``related.user`` as the mapper dedupes it, when two of its values are alike or an
    address has no local part."""
    found = [v for v in (recipient, sender, r_name, s_name) if v is not None]
    return orjson.dumps(list(dict.fromkeys(found))).decode()


def _product(
    record: dict[str, Any], rws: bool, raw_status: Any, k_received: str, received: str, size: int
) -> str:
    """``,"o365":{"message_trace":{…}}`` of a row with more than its status to keep (an RWS
    row's organization and query window, a field the mapper does not know), or ``""``."""
    leftovers = trace_leftovers(
        record, rws, raw_status, record.get(k_received), received, size, size
    )
    if not leftovers:
        return ""
    return f',"o365":{{"message_trace":{orjson.dumps(leftovers).decode()}}}'
