"""Aggregated RWS reports: hourly and daily buckets counted from the tenant's rows.

A bucket is published ``delay`` after it ends, with its final counts (the emulator never
serves a partial bucket; the collector must not read one early, or it would miss it).
MailTrafficSummary summarises whatever range it is asked for, one ``Category`` per query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .dataset import DELIVERED, EXPANDED, FAILED, FILTERED_AS_SPAM, QUARANTINED
from .reporting_format import When, iso7, truth_row
from .reporting_query import QueryError
from .reporting_rows import DAY, HOUR, Facts, Row, Table, dlp_pick, matches

Dimensions = tuple[Any, ...]
_TRAFFIC_EVENT = {
    DELIVERED: "GoodMail",
    EXPANDED: "GoodMail",
    FILTERED_AS_SPAM: "SpamContentFiltered",
    QUARANTINED: "Malware",
    FAILED: "EdgeBlockSpam",
}
_TRANSPORT_RULES = ("External sender banner", "Block executable attachments")
SUMMARY_CATEGORIES = ("TopMailSender", "TopMailRecipient", "TopSpamRecipient")


def _buckets(
    facts: Facts,
    size: int,
    delay: int,
    names: tuple[str, ...],
    dims: Callable[[int], Dimensions | None],
    count_field: str = "MessageCount",
) -> Table:
    """Count rows per (bucket, dimensions); ``dims(row)`` is None for rows not counted."""
    counts: Counter[tuple[int, Dimensions]] = Counter()
    data = facts.data
    for row in range(len(data)):
        key = dims(row)
        if key is not None:
            counts[(data.ticks[row] // size * size, key)] += 1
    items = []
    for (start, key), count in counts.items():
        fields: Row = {"Date": When(start), **dict(zip(names, key, strict=True))}
        fields[count_field] = count
        items.append((start, start + size + delay, fields))
    items.sort(key=lambda item: (item[0], tuple(str(v) for v in item[2].values())))
    return Table.of(items)


def mail_traffic(facts: Facts, delay: int) -> Table:
    """MailTraffic: hourly counts by direction and event type."""

    def dims(row: int) -> Dimensions | None:
        direction = facts.direction(row)
        if direction == "IntraOrg":
            return None
        event = _TRAFFIC_EVENT.get(facts.final(row)[0], "GoodMail")
        return direction, facts.data.spec.domain, event, None, None

    names = ("Direction", "Domain", "EventType", "Action", "AggregateBy")
    return _buckets(facts, HOUR, delay, names, dims)


def mail_traffic_policy(facts: Facts, delay: int) -> Table:
    """MailTrafficPolicy: hourly counts of DLP policy and transport rule hits."""

    def dims(row: int) -> Dimensions | None:
        g = facts.guid(row)
        if g[2] % 5 != 0 or facts.direction(row) == "IntraOrg":
            return None
        domain = facts.data.spec.domain
        if g[3] % 2:
            pick = dlp_pick(facts, row)
            policy = pick[0] if pick else "GDPR Enhanced"
            return facts.direction(row), domain, "DLPPolicyHits", policy, None, "NotifyUser"
        rule = _TRANSPORT_RULES[g[4] % 2]
        action = "PrependSubject" if g[4] % 2 == 0 else "RejectMessage"
        return facts.direction(row), domain, "TransportRuleHits", None, rule, action

    names = ("Direction", "Domain", "EventType", "DlpPolicy", "TransportRule", "Action")
    return _buckets(facts, HOUR, delay, names, dims)


def mail_traffic_atp(facts: Facts, delay: int) -> Table:
    """MailTrafficATP: daily counts by event type and verdict source."""

    def dims(row: int) -> Dimensions | None:
        status = facts.final(row)[0]
        g = facts.guid(row)
        if status == QUARANTINED:
            event, source = ("Malware", "Anti-malware engine") if g[4] % 2 else ("Phish", "ATP")
        elif status == FILTERED_AS_SPAM:
            event, source = "Spam", "Spam"
        elif status == FAILED:
            event, source = "Transport rule", "Transport rule"
        else:
            event, source = "Message passed", "Good mail"
        return facts.direction(row), facts.data.spec.domain, event, source, None

    names = ("Direction", "Domain", "EventType", "VerdictSource", "Action")
    return _buckets(facts, DAY, delay, names, dims)


def spoof_mail(facts: Facts, delay: int) -> Table:
    """SpoofMailReport: daily counts of inbound mail from spoofed senders."""

    def dims(row: int) -> Dimensions | None:
        g = facts.guid(row)
        if facts.direction(row) != "Inbound" or g[5] % 6 != 0:
            return None
        sender = facts.sender(row)
        result = ("fail", "pass", "softpass")[g[6] % 3]
        return (
            sender,
            sender.rsplit("@", 1)[1],
            f"mail{g[7] % 4}.{sender.rsplit('@', 1)[1]}",
            ("External", "Internal")[g[8] % 2],
            "SPOOF",
            result,
            ("000", "001", "010")[g[6] % 3],
            "SpoofMail",
            "Inbound",
            facts.data.spec.domain,
            ("fail", "none")[g[9] % 2],
            ("fail", "none")[g[10] % 2],
            ("fail", "none", "bestguesspass")[g[11] % 3],
        )

    names = (
        "SpoofedUser",
        "TrueSender",
        "SendingInfrastructure",
        "SpoofType",
        "Source",
        "Result",
        "ResultCode",
        "EventType",
        "Direction",
        "Domain",
        "SPF",
        "DKIM",
        "DMARC",
    )
    return _buckets(facts, DAY, delay, names, dims, count_field="Count")


def dlp_detections(facts: Facts, delay: int) -> Table:
    """DlpDetectionsReport: daily DLP rule matches by policy and sensitive information type."""

    def dims(row: int) -> Dimensions | None:
        pick = dlp_pick(facts, row)
        if not pick:
            return None
        policy, kind, action = pick
        return policy, kind, "EXCHANGE", "DLPPolicyHits", action

    names = ("DlpPolicy", "SensitiveInformationType", "Source", "EventType", "Action")
    return _buckets(facts, DAY, delay, names, dims)


def mail_traffic_top(facts: Facts, delay: int, top: int = 5) -> Table:
    """MailTrafficTop: each day's top senders and recipients per direction."""
    data = facts.data
    counts: Counter[tuple[int, str, str, str]] = Counter()
    for row in range(len(data)):
        direction = facts.direction(row)
        if direction == "IntraOrg":
            continue
        day = data.ticks[row] // DAY * DAY
        counts[(day, direction, "TopMailSender", facts.sender(row))] += 1
        counts[(day, direction, "TopMailRecipient", data.recipient(row))] += 1
    groups: dict[tuple[int, str, str], list[tuple[int, str]]] = {}
    for (day, direction, event, name), count in counts.items():
        groups.setdefault((day, direction, event), []).append((-count, name))
    items = []
    for (day, direction, event), ranked in sorted(groups.items()):
        for negative, name in sorted(ranked)[:top]:
            fields: Row = {
                "Date": When(day),
                "Direction": direction,
                "Domain": data.spec.domain,
                "EventType": event,
                "Name": name,
                "MessageCount": -negative,
                "AggregateBy": None,
            }
            items.append((day, day + DAY + delay, fields))
    return Table.of(items)


class SummaryReport:
    """MailTrafficSummary: top-10 lists over the asked range, ``Category`` required."""

    def __init__(self, facts: Facts, delay: int, top: int = 10) -> None:
        """Summarise ``facts``' rows, counting only rows older than ``delay``."""
        self.facts = facts
        self.delay = delay
        self.top = top

    def rows(self, low: int, high: int, category: str, now: int) -> list[Row]:
        """The summary rows of ``category`` over received times in ``[low, high)``."""
        data = self.facts.data
        first, last = data.window(low, min(high, now - self.delay) - 1)
        counts: Counter[str] = Counter()
        for row in range(first, last):
            if category == "TopMailSender":
                counts[self.facts.sender(row)] += 1
            elif category == "TopMailRecipient" or self.facts.final(row)[0] == FILTERED_AS_SPAM:
                counts[data.recipient(row)] += 1
        ranked = sorted((-n, name) for name, n in counts.items())[: self.top]
        out = []
        for negative, name in ranked:
            row_: Row = {"Category": category, "C1": name, "C2": str(-negative)}
            row_.update({f"C{i}": None for i in range(3, 21)})
            row_.update({"DlpPolicy": None, "Domain": data.spec.domain})
            out.append(row_)
        return out

    def select(self, low: int, high: int, now: int, eq: Mapping[str, str]) -> list[Row]:
        """Rows of the ``Category`` in ``eq``.

        Raises:
            QueryError: no ``Category`` filter, or an unknown one.
        """
        wanted = eq.get("Category", "").lower()
        category = next((c for c in SUMMARY_CATEGORIES if c.lower() == wanted), None)
        if category is None:
            choices = ", ".join(SUMMARY_CATEGORIES)
            raise QueryError(f"MailTrafficSummary needs a Category filter, one of {choices}.")
        rest = {k: v for k, v in eq.items() if k != "Category"}
        return [r for r in self.rows(low, high, category, now) if matches(r, rest)]

    def truth(self) -> Iterator[dict[str, Any]]:
        """Every day's summaries, as a collector asking one day at a time receives them."""
        data = self.facts.data
        if not len(data):
            return
        never = 2**62
        for day in range(data.ticks[0] // DAY * DAY, data.ticks[-1] + 1, DAY):
            for category in SUMMARY_CATEGORIES:
                for row in self.rows(day, day + DAY, category, never):
                    record = {**row, "StartDate": When(day), "EndDate": When(day + DAY)}
                    yield {"record": truth_row(record), "visible_at": iso7(day + DAY + self.delay)}
