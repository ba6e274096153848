"""The event: an untouched vendor record plus its tenant, stream and deterministic id.

A record's identity is read once, by its source, as a :data:`RowFact`; the dedup store
hashes it into the row's key and, for a fact it delivers, into the event id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from hashlib import blake2b
from typing import Any

import msgspec
import orjson

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


Record = dict[str, Any] | msgspec.Raw
"""A record as a source keeps it: decoded, or its JSON text exactly as the API sent it."""


def decoded(record: Record) -> dict[str, Any]:
    """``record`` as a dict: itself, or its JSON text decoded (a new dict on each call)."""
    if isinstance(record, dict):
        return record
    value: dict[str, Any] = orjson.loads(memoryview(record))
    return value


class Event:
    """One record on its way to the sinks. ``record`` is exactly what Microsoft returned.

    A source may keep the record as the JSON text it came in (:attr:`raw`): a page then
    costs its body and one small object per row instead of a dict of strings per row, and
    a raw or envelope payload writes the text as it is. :attr:`record` decodes it on each
    access (normalizers read it once per document).
    """

    __slots__ = ("_record", "event_id", "stream", "tenant")

    def __init__(self, tenant: str, stream: str, event_id: str, record: Record) -> None:
        """An event of ``record`` (a dict, or its JSON text as a ``msgspec.Raw``)."""
        self.tenant = tenant
        self.stream = stream
        self.event_id = event_id
        self._record = record

    @property
    def record(self) -> dict[str, Any]:
        """The record as a dict (decoded from :attr:`raw` when the source kept the text)."""
        return decoded(self._record)

    @property
    def raw(self) -> msgspec.Raw | None:
        """The record's JSON text as the API sent it, when the source kept it."""
        record = self._record
        return None if isinstance(record, dict) else record

    def __eq__(self, other: object) -> bool:
        """Same tenant, stream, id and record (decoded)."""
        if not isinstance(other, Event):
            return NotImplemented
        return (self.tenant, self.stream, self.event_id, self.record) == (
            other.tenant,
            other.stream,
            other.event_id,
            other.record,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """``Event(tenant=…, stream=…, event_id=…, record=…)`` (a kept text that does not
        decode shows as its bytes)."""
        try:
            record: object = self.record
        except ValueError:
            record = bytes(memoryview(self.raw or b""))
        return (
            f"Event(tenant={self.tenant!r}, stream={self.stream!r}, "
            f"event_id={self.event_id!r}, record={record!r})"
        )


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

    def row_keys(self, facts: Iterable[RowFact]) -> list[bytes]:
        """Each fact's row key: the receive hour, then the hash of (tenant id, stream, trace
        id, recipient) — one row whatever its status.

        No hash state is kept for the event ids: one costs ~450 bytes, 2.2 MiB for a
        5,000-row page held while the dedup store is read. The facts found new are hashed
        again (:meth:`event_ids`), none of the known ones.
        """
        prefix = self._prefix
        keys = []
        for trace_id, recipient, _, received in facts:
            digest = prefix.copy()
            digest.update(f"{trace_id}\x1f{recipient}".encode())
            keys.append(str(received or "")[:13].encode() + digest.digest())
        return keys


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
