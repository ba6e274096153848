"""The Exchange reports (every ``rws.<Report>`` but MessageTrace, and message trace detail)
as OCSF 1.8.0 events.

``MAPPERS`` maps a report name (``MailTraffic``) or a stream (``message_trace_detail``) to
its mapper; :func:`generic` maps any other stream.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from typing import Any

import orjson

from o365collector.event import Event
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.ocsf import (
    EMAIL_ACTIVITY_CLASS_UID,
    LOG_PROVIDER,
    NETWORK_CATEGORY_UID,
    OCSF_VERSION,
    PRODUCT,
    SEVERITY_INFORMATIONAL,
)

_OTHER = 99


def generic(event: Event, local_domains: Sequence[str], include_original: bool) -> dict[str, Any]:
    """A stream no mapper knows: Email Activity, activity Other, the record in ``unmapped``.

    ``time`` is the processing time: a mapper-less stream has no known time field.
    """
    del local_domains
    doc: dict[str, Any] = {
        "class_uid": EMAIL_ACTIVITY_CLASS_UID,
        "class_name": "Email Activity",
        "category_uid": NETWORK_CATEGORY_UID,
        "category_name": "Network Activity",
        "activity_id": _OTHER,
        "activity_name": event.stream,
        "type_uid": EMAIL_ACTIVITY_CLASS_UID * 100 + _OTHER,
        "type_name": "Email Activity: Other",
        "time": _time.time_ns() // 1_000_000,
        "severity_id": SEVERITY_INFORMATIONAL,
        "severity": "Informational",
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT["name"], "vendor_name": PRODUCT["vendor_name"]},
            "log_provider": LOG_PROVIDER,
            "uid": event.event_id,
            "tenant_uid": event.tenant,
            "log_name": event.stream,
        },
        "unmapped": dict(event.record),
    }
    if include_original:
        doc["raw_data"] = orjson.dumps(event.record).decode()
    return doc


MAPPERS: dict[str, Mapper] = {}
