"""Normalized output: raw Microsoft records as ECS documents (and, later, OCSF events).

- :mod:`.status`: the one status table (raw delivery status → ECS outcome / action, OCSF
  status / disposition / action).
- :mod:`.ecs`: message trace rows (Graph and RWS) → one ECS document.
"""

from __future__ import annotations

from o365collector.normalize.ecs import ECS_VERSION, email_direction, message_trace_to_ecs
from o365collector.normalize.status import STATUS_TABLE, StatusMapping, status_of

__all__ = [
    "ECS_VERSION",
    "STATUS_TABLE",
    "StatusMapping",
    "email_direction",
    "message_trace_to_ecs",
    "status_of",
]
