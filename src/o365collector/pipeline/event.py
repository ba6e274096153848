"""The event: an untouched vendor record plus its tenant, stream and deterministic id."""

from __future__ import annotations

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
    material = "\x1f".join((tenant_id, stream, trace_id, recipient.lower(), status.lower()))
    return blake2b(material.encode("utf-8"), digest_size=16).hexdigest()


def row_key(tenant_id: str, stream: str, trace_id: str, recipient: str) -> bytes:
    """Hash of (tenant, stream, trace id, recipient): one row, whatever its status."""
    material = "\x1f".join((tenant_id, stream, trace_id, recipient.lower()))
    return blake2b(material.encode("utf-8"), digest_size=16).digest()
