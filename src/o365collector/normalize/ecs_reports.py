"""The Exchange reports (every ``rws.<Report>`` but MessageTrace, and message trace detail)
as ECS documents.

``MAPPERS`` maps a report name (``MailTraffic``) or a stream (``message_trace_detail``) to
its mapper; :func:`generic` maps any other stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import orjson

from o365collector.event import Event
from o365collector.normalize.ecs import ECS_VERSION, ENVELOPE_NAMESPACE, PRODUCT_NAMESPACE
from o365collector.normalize.mapper import Mapper


def generic(event: Event, local_domains: Sequence[str], include_original: bool) -> dict[str, Any]:
    """A stream no mapper knows: the envelope, and the record under ``o365.<stream>``."""
    del local_domains
    part: dict[str, Any] = {"kind": "event", "category": ["email"], "type": ["info"]}
    part["id"] = event.event_id
    if include_original:
        part["original"] = orjson.dumps(event.record).decode()
    return {
        "ecs": {"version": ECS_VERSION},
        "event": part,
        ENVELOPE_NAMESPACE: {
            "tenant": event.tenant,
            "stream": event.stream,
            "event_id": event.event_id,
        },
        PRODUCT_NAMESPACE: {_namespace(event.stream): dict(event.record)},
    }


def _namespace(stream: str) -> str:
    """``rws.MailTraffic`` → ``mail_traffic``; ``message_trace_detail`` stays."""
    name = stream.rsplit(".", 1)[-1]
    out = [name[0].lower()]
    for previous, char in itertools.pairwise(name):
        if char.isupper() and previous.islower():
            out.append("_")
        out.append(char.lower())
    return "".join(out)


MAPPERS: dict[str, Mapper] = {}
