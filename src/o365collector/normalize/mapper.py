"""What a mapper is: one function from an event to its normalized document (and a writer,
one from an event to that document's JSON text)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from o365collector.event import Event

Mapper = Callable[[Event, Sequence[str], bool], dict[str, Any]]
"""``(event, the tenant's local domains, include_original) -> document``."""

Writer = Callable[[Event, Sequence[str], bool], bytes]
"""``(event, the tenant's local domains, include_original) -> orjson.dumps(document)``."""
