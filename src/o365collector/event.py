"""The event: an untouched vendor record plus its tenant, stream and deterministic id."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any


@dataclass(slots=True)
class Event:
    """One record on its way to the sinks. ``record`` is exactly what Microsoft returned."""

    tenant: str
    stream: str
    event_id: str
    record: dict[str, Any]


def event_id(tenant_id: str, stream: str, trace_id: str, recipient: str, status: str) -> str:
    """Hash of (tenant, stream, trace id, recipient, status): the same fact, the same id.

    A replay after a crash yields the same id, so idempotent sinks drop it; a status change
    is a new fact and gets a new id. Recipient and status are compared case-insensitively.
    """
    digest = _prefix(tenant_id, stream).copy()  # blake2b is incremental: same digest
    digest.update(f"{trace_id}\x1f{recipient.lower()}\x1f{status.lower()}".encode())
    return digest.hexdigest()


def event_ids(tenant_id: str, stream: str, keys: Iterable[tuple[str, str, str]]) -> list[str]:
    """:func:`event_id` of each (trace id, recipient, status), for a page at once."""
    prefix = _prefix(tenant_id, stream)
    ids = []
    for trace_id, recipient, status in keys:
        digest = prefix.copy()
        digest.update(f"{trace_id}\x1f{recipient.lower()}\x1f{status.lower()}".encode())
        ids.append(digest.hexdigest())
    return ids


def row_key(tenant_id: str, stream: str, trace_id: str, recipient: str) -> bytes:
    """Hash of (tenant, stream, trace id, recipient): one row, whatever its status."""
    digest = _prefix(tenant_id, stream).copy()
    digest.update(f"{trace_id}\x1f{recipient.lower()}".encode())
    return digest.digest()


@functools.lru_cache(maxsize=4096)
def _prefix(tenant_id: str, stream: str) -> blake2b:
    """The blake2b state after the tenant id and stream: copied per row, not recomputed."""
    return blake2b(f"{tenant_id}\x1f{stream}\x1f".encode(), digest_size=16)
