"""What a mapper is: one function from an event to its normalized document."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from o365collector.event import Event

Mapper = Callable[[Event, Sequence[str], bool], dict[str, Any]]
"""``(event, the tenant's local domains, include_original) -> document``."""
