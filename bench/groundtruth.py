"""Completeness and freshness of delivered events against the emulator's ground truth.

A fact is (trace id, recipient, status). A row is *due* when it was received after
``first_start`` and first became visible by ``cutoff``; its final status is due when that
status was visible by ``cutoff`` too. Intermediate statuses are never due (a reader only
sees a row's current status) but count as delivered facts when they were read.

Freshness is the output line's ``delivered_at`` minus the fact's ``visible_at``, for every
delivered fact that became visible after ``fresh_from`` — split into first sightings of
rows on time, late rows (first visible more than 5 minutes after receipt) and status
changes. All times are epoch seconds minus ``base``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.results import parse_time, percentile

LATE_SECS = 300.0
Fact = tuple[str, str, str]


def delivered_facts(events: Iterable[dict[str, Any]], base: float = 0.0) -> dict[Fact, list[float]]:
    """Each delivered fact with the ``delivered_at`` of every line that carried it."""
    out: dict[Fact, list[float]] = {}
    for event in events:
        record = event["record"]
        fact = (record["id"], record["recipientAddress"].lower(), record["status"].lower())
        out.setdefault(fact, []).append(parse_time(event["delivered_at"]) - base)
    return out


@dataclass
class Check:
    """The outcome of one comparison with ground truth."""

    rows_due: int = 0
    rows_missing: int = 0
    finals_due: int = 0
    finals_missing: int = 0
    facts_delivered: int = 0
    repeated: int = 0
    unknown_delivered: int = 0
    latency: dict[str, list[float]] = field(
        default_factory=lambda: {"all": [], "on_time": [], "late_rows": [], "status_changes": []}
    )
    missing_examples: list[Any] = field(default_factory=list)
    finals_past_horizon: int = 0  # due final statuses visible more than ``horizon`` after receipt
    finals_past_horizon_missing: int = 0
    late_or_changed: int = 0  # delivered late rows and status changes, visible after fresh_from
    slow: int = 0  # of those, delivered later than ``allowed(age)`` after becoming visible
    slow_examples: list[Any] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing missing, nothing repeated."""
        return not (self.rows_missing or self.finals_missing or self.repeated)

    def completeness(self) -> str:
        """One line: what is missing or repeated."""
        return (
            f"rows missing {self.rows_missing} of {self.rows_due:,}, final statuses missing "
            f"{self.finals_missing} of {self.finals_due:,}, repeated (key, status) {self.repeated}"
        )

    def freshness(self) -> str:
        """p50 / p99 per kind of fact."""
        parts = []
        for kind, values in self.latency.items():
            if values:
                parts.append(
                    f"{kind.replace('_', ' ')} p50 {percentile(values, 0.5):.1f} s, "
                    f"p99 {percentile(values, 0.99):.1f} s (n={len(values):,})"
                )
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (latencies sorted)."""
        out = dict(self.__dict__)
        out["latency"] = {k: sorted(v) for k, v in self.latency.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


def check(
    truth: Iterable[dict[str, Any]],
    delivered: dict[Fact, list[float]],
    *,
    first_start: float,
    cutoff: float,
    fresh_from: float,
    base: float = 0.0,
    allowed: Callable[[float], float] | None = None,
    horizon: float | None = None,
) -> Check:
    """Compare ground-truth rows (``/_emulator/ground-truth`` records) with ``delivered``.

    ``allowed(age)``: the longest acceptable wait for a late row or a status change that
    became visible when its row was ``age`` seconds old (one re-sweep period of the band
    that covers that age); slower ones are counted in ``slow``. ``horizon``: count the due
    final statuses that became visible more than ``horizon`` seconds after receipt, when no
    re-sweep reads their row any more.
    """
    out = Check()
    known = 0
    for row in truth:
        received = parse_time(row["receivedDateTime"]) - base
        key = (row["id"], row["recipientAddress"].lower())
        history = [
            (s["status"].lower(), parse_time(s["visible_at"]) - base) for s in row["history"]
        ]
        seen_any = False
        for index, (status, visible) in enumerate(history):
            times = delivered.get((*key, status))
            if not times:
                continue
            known += 1
            seen_any = True
            out.repeated += len(times) - 1
            if visible >= fresh_from and received >= first_start:
                wait = min(times) - visible
                out.latency["all"].append(wait)
                kind = "on_time"
                if index > 0:
                    kind = "status_changes"
                elif visible - received > LATE_SECS:
                    kind = "late_rows"
                out.latency[kind].append(wait)
                if kind != "on_time" and allowed is not None:
                    out.late_or_changed += 1
                    if wait > allowed(visible - received):
                        out.slow += 1
                        if len(out.slow_examples) < 5:
                            out.slow_examples.append([kind, visible - received, wait])
        if received < first_start or history[0][1] > cutoff:
            continue
        out.rows_due += 1
        out.rows_missing += not seen_any
        final, visible = history[-1]
        if visible <= cutoff:
            out.finals_due += 1
            late_final = horizon is not None and visible - received > horizon
            out.finals_past_horizon += late_final
            if (*key, final) not in delivered:
                out.finals_missing += 1
                out.finals_past_horizon_missing += late_final
                if len(out.missing_examples) < 5:
                    got = [s for s, _ in history if (*key, s) in delivered]
                    out.missing_examples.append([received, history, got])
    out.facts_delivered = sum(len(t) for t in delivered.values())
    out.unknown_delivered = len(delivered) - known
    return out
