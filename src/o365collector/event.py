"""The event: an untouched vendor record plus its tenant, stream and deterministic id.

A record's identity is read once, by its source, as a :data:`RowFact`; the dedup store
hashes it once into the row's key and, for a fact it delivers, the event id (one blake2b
pass serves both: the row key's material is the start of the event id's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

RowFact = tuple[str, str, str, object]
"""What a source reads of a record, once: ``(trace id, recipient, status, received)``.

- ``recipient`` is lower-cased (ids and keys ignore its case);
- ``status`` is as the dedup store keeps it (``|``, its separator, never appears); the
  event id lower-cases it;
- ``received`` is the receive time as sent (``receivedDateTime``, or RWS's ``Received``);
  its leading 13 characters (``2026-11-22T05``) lead the row key, so a page's keys sit side
  by side in the store.

Built by :func:`row_facts`; a plain tuple because one is made for every record.
"""


@dataclass(slots=True)
class Event:
    """One record on its way to the sinks. ``record`` is exactly what Microsoft returned."""

    tenant: str
    stream: str
    event_id: str
    record: dict[str, Any]


def row_facts(
    records: Iterable[Mapping[str, Any]], key: Callable[[Any], tuple[str, str, str]]
) -> list[RowFact]:
    """The :data:`RowFact` of each record, whose ``key`` is (trace id, recipient, status)."""
    facts: list[RowFact] = []
    append = facts.append
    for record in records:
        trace_id, recipient, status = key(record)
        received = record.get("receivedDateTime") or record.get("Received")
        append((trace_id, recipient.lower(), status, received))
    return facts


class StreamIds:
    """Row keys and event ids of one (tenant id, stream), from the :data:`RowFact` of rows."""

    __slots__ = ("_prefix",)

    def __init__(self, tenant_id: str, stream: str) -> None:
        """Hash the (tenant id, stream) prefix once; every row continues a copy of it."""
        self._prefix = _prefix(tenant_id, stream)

    def event_ids(self, facts: Iterable[RowFact]) -> list[str]:
        """:func:`event_id` of each fact."""
        prefix = self._prefix
        ids = []
        for trace_id, recipient, status, _ in facts:
            digest = prefix.copy()
            digest.update(f"{trace_id}\x1f{recipient}\x1f{status.lower()}".encode())
            ids.append(digest.hexdigest())
        return ids

    def row_keys(self, facts: Iterable[RowFact]) -> list[tuple[bytes, blake2b]]:
        """Each fact's row key and the hash state after its row, for :func:`event_id_after`.

        The row key is the receive hour, then the hash of (tenant id, stream, trace id,
        recipient): one row whatever its status.
        """
        prefix = self._prefix
        keys = []
        for trace_id, recipient, _, received in facts:
            digest = prefix.copy()
            digest.update(f"{trace_id}\x1f{recipient}".encode())
            keys.append((str(received or "")[:13].encode() + digest.digest(), digest))
        return keys


def event_id_after(row_state: blake2b, status: str) -> str:
    """The event id of a row whose hash state :meth:`StreamIds.row_keys` returned.

    The state is consumed: call this at most once per state.
    """
    row_state.update(_status_suffix(status))
    return row_state.hexdigest()


def events_after(
    tenant: str,
    stream: str,
    records: Iterable[dict[str, Any]],
    row_states: Iterable[blake2b],
    statuses: Iterable[str],
) -> list[Event]:
    """The events of records never delivered, ids as :func:`event_id_after` (states consumed).

    One loop for a page's new facts: a status's suffix is encoded once per page, not per row.
    """
    suffixes: dict[str, bytes] = {}
    events: list[Event] = []
    append = events.append
    for record, state, status in zip(records, row_states, statuses, strict=True):
        suffix = suffixes.get(status)
        if suffix is None:
            suffix = suffixes[status] = _status_suffix(status)
        state.update(suffix)
        append(Event(tenant, stream, state.hexdigest(), record))
    return events


def _status_suffix(status: str) -> bytes:
    """What a row's hash state is continued with to name the fact: status case ignored."""
    return f"\x1f{status.lower()}".encode()


def event_id(tenant_id: str, stream: str, trace_id: str, recipient: str, status: str) -> str:
    """Hash of (tenant, stream, trace id, recipient, status): the same fact, the same id.

    A replay after a crash yields the same id, so idempotent sinks drop it; a status change
    is a new fact and gets a new id. Recipient and status are compared case-insensitively.
    """
    digest = _prefix(tenant_id, stream).copy()  # blake2b is incremental: same digest
    digest.update(f"{trace_id}\x1f{recipient.lower()}\x1f{status.lower()}".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _prefix(tenant_id: str, stream: str) -> blake2b:
    """The blake2b state after the tenant id and stream: copied per row, not recomputed."""
    return blake2b(f"{tenant_id}\x1f{stream}\x1f".encode(), digest_size=16)
