"""Normalized output: raw Microsoft records as ECS documents and OCSF 1.8.0 events.

- :mod:`.status`: the one status table (raw delivery status → ECS outcome / action, OCSF
  status / disposition / action).
- :mod:`.ecs`: message trace rows (Graph and RWS) → one ECS document.
- :mod:`.ocsf`: message trace rows → one OCSF Email Activity (4009, Trace) event.
"""

from __future__ import annotations

from o365collector.normalize.ecs import ECS_VERSION, email_direction, message_trace_to_ecs
from o365collector.normalize.ocsf import message_trace_to_ocsf
from o365collector.normalize.status import STATUS_TABLE, StatusMapping, status_of

__all__ = [
    "ECS_VERSION",
    "STATUS_TABLE",
    "StatusMapping",
    "email_direction",
    "message_trace_to_ecs",
    "message_trace_to_ocsf",
    "status_of",
]
