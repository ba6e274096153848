"""What every source yields: pages of raw vendor records, each with the link to the next."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from o365collector.event import RowFact
from o365collector.page_gate import Permit
from o365collector.windows import TimeWindow


@dataclass(frozen=True, slots=True)
class Page:
    """One API page: untouched records, the link that continues the window, their identities.

    ``facts[i]`` is the identity of ``records[i]``, read once by the source: the dedup
    store and the event ids take it from there and never read the record again.

    ``permit`` is the page's place in the process-wide page gate (``page_gate``), taken by
    its request: whoever holds the page releases it (the lane, once every sink has the
    page's events). A page that was not requested through the gate holds a no-op permit.
    """

    records: list[dict[str, Any]]
    next_link: str | None
    facts: list[RowFact]
    permit: Permit = field(default_factory=Permit)


class WindowSource(Protocol):
    """Reads one stream of one tenant, window by window."""

    def pages(
        self, window: TimeWindow, resume_link: str | None, *, priority: int = 0
    ) -> AsyncIterator[Page]:
        """Yield every page of ``window`` in API order, starting at ``resume_link`` if given.

        ``priority`` orders requests in the tenant's budget (lower goes first).
        """
        ...
