"""Graph message trace ``status`` values: the ones the collector knows, and noticing others.

``exchangeMessageTraceStatus`` is an evolvable enum (api-facts §3.3): members Microsoft
adds come as ``unknownFutureValue`` to clients that do not send
``Prefer: include-unknown-enum-members``, and under their own name (``recalled``) to those
that do. The collector gives no status a meaning: every row is delivered as Microsoft sent
it and re-read by the re-sweep bands whatever its status, so a value outside
:data:`KNOWN_STATUSES` is only counted (``collector_unknown_values_total``) and logged once
per distinct value per process, for operators to see that Microsoft added something.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from o365collector.observability import metrics

log = structlog.get_logger(__name__)

# Lower-case: Graph's documentation shows both ``delivered`` and ``Delivered``.
KNOWN_STATUSES: frozenset[str] = frozenset(
    {
        "gettingstatus",
        "pending",
        "delivered",
        "failed",
        "expanded",
        "quarantined",
        "filteredasspam",
    }
)
UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
PREFER_UNKNOWN_ENUM_MEMBERS = "include-unknown-enum-members"
MAX_VALUE_CHARS = 40  # a metric label keeps this much of a value
MAX_DISTINCT_VALUES = 20  # distinct values a process records as labels; others share one
OTHER_VALUE = "(other)"
MISSING_VALUE = "(missing)"
EMPTY_VALUE = "(empty)"
MAX_SPELLINGS = 64  # spellings of known values remembered (Graph's case varies)
# Known values as they were spelled, per known set: most rows are found here at once.
_SPELLINGS: dict[frozenset[str], set[str]] = {}


class SeenValues:
    """The distinct unknown values a process has recorded, at most ``limit`` of them.

    Bounds the metric's label set and the warnings: the first ``limit`` distinct values
    keep their own label and get one warning each; later ones are counted under
    :data:`OTHER_VALUE`, with a single warning saying so.
    """

    def __init__(self, limit: int = MAX_DISTINCT_VALUES) -> None:
        """Record up to ``limit`` distinct (field, value) pairs."""
        self._limit = limit
        self._labels: set[tuple[str, str]] = set()
        self._overflowed = False

    def label(self, field: str, value: str) -> tuple[str, bool]:
        """The label to count ``value`` under, and whether it is the first time it is seen."""
        if (field, value) in self._labels:
            return value, False
        if len(self._labels) < self._limit:
            self._labels.add((field, value))
            return value, True
        first = not self._overflowed
        self._overflowed = True
        return OTHER_VALUE, first


SEEN = SeenValues()  # per process, shared by every tenant and stream


class UnknownValueCounter:
    """Counts the records of one tenant and stream whose ``field`` is not a known value."""

    def __init__(
        self,
        *,
        tenant: str,
        stream: str,
        field: str = "status",
        known: frozenset[str] = KNOWN_STATUSES,
        seen: SeenValues = SEEN,
    ) -> None:
        """Compare ``field`` case-insensitively against the lower-case ``known`` values."""
        self._tenant = tenant
        self._stream = stream
        self._field = field
        self._known = known
        self._seen = seen
        self._spellings = _SPELLINGS.setdefault(known, set())

    def observe(self, records: Iterable[dict[str, Any]]) -> None:
        """Count each record whose value is unknown; the records are not changed."""
        field = self._field
        self.observe_values(record.get(field) for record in records)

    def observe_values(self, values: Iterable[object]) -> None:
        """Count each value (a record's ``field``, ``None`` if absent) that is unknown.

        Runs for every row read: a known value as Graph spells it costs one set look-up.
        """
        spellings = self._spellings
        for value in values:
            if value.__class__ is not str or value not in spellings:
                self._check(value)

    def _check(self, value: object) -> None:
        """A value not seen spelled this way yet: remember a known spelling, count others."""
        if isinstance(value, str) and value.lower() in self._known:
            if len(self._spellings) < MAX_SPELLINGS:
                self._spellings.add(value)
            return
        self._count(_shown(value))

    def _count(self, value: str) -> None:
        label, first = self._seen.label(self._field, value)
        metrics.UNKNOWN_VALUES.labels(
            tenant=self._tenant, stream=self._stream, field=self._field, value=label
        ).inc()
        if not first:
            return
        if label == OTHER_VALUE:
            log.warning(
                "More distinct unknown values than the metric records; further ones are "
                f"counted as {OTHER_VALUE} and not logged.",
                tenant=self._tenant,
                stream=self._stream,
                field=self._field,
                limit=MAX_DISTINCT_VALUES,
            )
            return
        log.warning(
            "A value the collector does not know yet; rows are delivered with it unchanged "
            "and re-read like any other.",
            tenant=self._tenant,
            stream=self._stream,
            field=self._field,
            value=label,
        )


def _shown(value: object) -> str:
    """The value as a bounded metric label."""
    if value is None:
        return MISSING_VALUE
    text = str(value)
    return text[:MAX_VALUE_CHARS] if text else EMPTY_VALUE
