"""Per-row RWS reports derived from a tenant's message trace rows, so all reports agree.

MessageTrace renders the same rows Graph serves (PascalCase statuses, ``null`` IPs);
MessageTraceDetail the same processing events as ``getDetailsByRecipient``. The detail
reports (spam, malware, ATP, DLP, Safe Links) are seeded subsets of those rows, visible once
the row reached its final status (Safe Links clicks once their day is over).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .dataset import (
    DELIVERED,
    FILTERED_AS_SPAM,
    QUARANTINED,
    STATUSES,
    TenantData,
)
from .reporting_format import When, iso7, truth_row
from .reporting_query import QueryError
from .ticks import TICKS_PER_SEC, parse_odata_datetime
from .traces import detail_rows, find_row

HOUR = 3600 * TICKS_PER_SEC
DAY = 24 * HOUR
Row = dict[str, Any]


def pascal(status: int) -> str:
    """RWS spells statuses in PascalCase (``FilteredAsSpam``); Graph in camelCase."""
    name = STATUSES[status]
    return name[0].upper() + name[1:]


def matches(row: Row, eq: Mapping[str, str]) -> bool:
    """True when every ``eq`` clause holds (case-insensitive, as the service compares)."""
    return all(
        str(row.get(k) if row.get(k) is not None else "").lower() == v.lower()
        for k, v in eq.items()
    )


@dataclass
class Table:
    """Rows of a report in time order, each with the time it becomes visible."""

    times: list[int]
    visible: list[int]
    rows: list[Row]

    @classmethod
    def of(cls, items: Iterable[tuple[int, int, Row]]) -> Table:
        """Build from (time, visible-at, row) triples in any order."""
        ordered = sorted(items, key=lambda item: item[0])
        return cls([t for t, _, _ in ordered], [v for _, v, _ in ordered], [r for *_, r in ordered])

    def select(self, low: int, high: int, now: int, eq: Mapping[str, str]) -> list[Row]:
        """Visible rows with a time in ``[low, high]`` (both bounds included) matching ``eq``."""
        first, last = bisect_left(self.times, low), bisect_right(self.times, high)
        return [
            self.rows[i]
            for i in range(first, last)
            if self.visible[i] <= now and matches(self.rows[i], eq)
        ]

    def truth(self) -> Iterator[dict[str, Any]]:
        """Ground truth: every row (visible or not yet) with when it becomes visible."""
        for visible, row in zip(self.visible, self.rows, strict=True):
            yield {"record": truth_row(row), "visible_at": iso7(visible)}


class Facts:
    """Per-row facts the derived reports share: direction, picks, parties."""

    def __init__(self, data: TenantData) -> None:
        """Index the tenant's own mailboxes."""
        self.data = data
        self.internal = frozenset(data.pools.internal)

    def guid(self, row: int) -> bytes:
        """The trace id bytes: a stable seeded source for per-message picks."""
        return self.data.trace_guid(row)

    def direction(self, row: int) -> str:
        """Inbound, Outbound or IntraOrg, from who sends and who receives."""
        data = self.data
        sender_in = data.msg_sender[data.row_msg[row]] in self.internal
        rcpt_in = data.row_rcpt[row] in self.internal
        if sender_in and rcpt_in:
            return "IntraOrg"
        return "Inbound" if rcpt_in else "Outbound"

    def sender(self, row: int) -> str:
        """The message's sender address."""
        return self.data.pools.addresses[self.data.msg_sender[self.data.row_msg[row]]]

    def final(self, row: int) -> tuple[int, int]:
        """(final status, when it was reached) of a row."""
        status, since = self.data.history(row)[-1]
        return status, since

    def message(self, row: int) -> Row:
        """Fields every mail detail report shares."""
        data = self.data
        msg = data.row_msg[row]
        recipient = data.recipient(row)
        return {
            "Date": When(data.ticks[row]),
            "MessageId": data.message_id(row),
            "MessageTraceId": data.trace_id(row),
            "Domain": recipient.rsplit("@", 1)[1],
            "Subject": data.pools.subjects[data.msg_subject[msg]],
            "MessageSize": data.msg_size[msg],
            "Direction": self.direction(row),
            "SenderAddress": self.sender(row),
            "RecipientAddress": recipient,
        }


def trace_row(data: TenantData, row: int, status: int) -> Row:
    """A MessageTrace row as RWS serialises it (before the StartDate/EndDate echo)."""
    msg = data.row_msg[row]
    pools = data.pools
    to_ip = pools.ips[pools.to_ip[data.row_rcpt[row]]]
    return {
        "Organization": data.spec.domain,
        "MessageId": data.message_id(row),
        "Received": When(data.ticks[row]),
        "SenderAddress": pools.addresses[data.msg_sender[msg]],
        "RecipientAddress": data.recipient(row),
        "Subject": pools.subjects[data.msg_subject[msg]],
        "Status": pascal(status),
        "ToIP": to_ip or None,
        "FromIP": pools.ips[data.msg_from_ip[msg]] or None,
        "Size": data.msg_size[msg],
        "MessageTraceId": data.trace_id(row),
    }


class TraceReport:
    """MessageTrace: every visible row with its status as of now."""

    def __init__(self, data: TenantData) -> None:
        """Serve ``data``'s rows."""
        self.data = data

    def select(self, low: int, high: int, now: int, eq: Mapping[str, str]) -> list[Row]:
        """See :meth:`Table.select`."""
        data = self.data
        first, last = data.window(low, high)
        out = []
        for i in range(first, last):
            if data.vis[i] <= now:
                row = trace_row(data, i, data.status_at(i, now))
                if matches(row, eq):
                    out.append(row)
        return out

    def truth(self) -> Iterator[dict[str, Any]]:
        """Every row with its final status and its status history."""
        data = self.data
        for i in range(len(data)):
            history = data.history(i)
            yield {
                "record": truth_row(trace_row(data, i, history[-1][0])),
                "visible_at": iso7(data.vis[i]),
                "history": [{"Status": pascal(s), "visible_at": iso7(t)} for s, t in history],
            }


class TraceDetailReport:
    """MessageTraceDetail: the processing events of one message and recipient."""

    def __init__(self, data: TenantData) -> None:
        """Serve ``data``'s rows."""
        self.data = data

    def events(self, row: int, now: int) -> list[Row]:
        """The RWS detail rows of ``row`` as of ``now``."""
        data = self.data
        base = {
            "Organization": data.spec.domain,
            "MessageId": data.message_id(row),
            "MessageTraceId": data.trace_id(row),
            "RecipientAddress": data.recipient(row),
            "SenderAddress": data.pools.addresses[data.msg_sender[data.row_msg[row]]],
        }
        return [
            {
                **base,
                "Date": When(parse_odata_datetime(step["dateTime"])),
                "Event": step["event"],
                "Action": step["action"] or None,
                "Detail": step["description"],
                "Data": step["data"],
            }
            for step in detail_rows(data, row, now)
        ]

    def select(self, low: int, high: int, now: int, eq: Mapping[str, str]) -> list[Row]:
        """Detail of the row named by ``MessageTraceId`` and ``RecipientAddress``.

        The range is not applied: detail rows belong to their message whatever the dates.

        Raises:
            QueryError: either filter is missing (RWS answers detail per message).
        """
        if "MessageTraceId" not in eq or "RecipientAddress" not in eq:
            raise QueryError(
                "MessageTraceDetail needs MessageTraceId and RecipientAddress filters."
            )
        row = find_row(self.data, eq.get("MessageTraceId", ""), eq.get("RecipientAddress", ""))
        if row is None or self.data.vis[row] > now:
            return []
        rest = {k: v for k, v in eq.items() if k not in ("MessageTraceId", "RecipientAddress")}
        return [e for e in self.events(row, now) if matches(e, rest)]

    def truth(self) -> Iterator[dict[str, Any]]:
        """Every row's full detail (as of the end of time)."""
        never = 2**62
        for i in range(len(self.data)):
            for event in self.events(i, never):
                yield {"record": truth_row(event), "visible_at": iso7(self.data.vis[i])}


def spam(facts: Facts) -> Table:
    """MailDetailSpam: rows filtered as spam."""
    items = []
    for row in range(len(facts.data)):
        status, since = facts.final(row)
        if status == FILTERED_AS_SPAM:
            g = facts.guid(row)
            kind = ("SpamContentFiltered", "SpamIPBlock", "SpamDBEBFilter")[g[0] % 3]
            fields = {"EventType": kind, "Action": "MoveToJmf", "SenderIP": _ip(facts, row)}
            items.append((facts.data.ticks[row], since, {**facts.message(row), **fields}))
    return Table.of(items)


def malware(facts: Facts) -> Table:
    """MailDetailMalware: half of the quarantined rows."""
    items = []
    for row in range(len(facts.data)):
        status, since = facts.final(row)
        g = facts.guid(row)
        if status == QUARANTINED and g[1] % 2 == 0:
            action = ("DeleteMessage", "Quarantine")[g[2] % 2]
            fields = {"EventType": "Malware", "Action": action, "SenderIP": _ip(facts, row)}
            items.append((facts.data.ticks[row], since, {**facts.message(row), **fields}))
    return Table.of(items)


def atp(facts: Facts) -> Table:
    """MailDetailATP: quarantined rows and half of the spam, with verdicts."""
    items = []
    for row in range(len(facts.data)):
        status, since = facts.final(row)
        g = facts.guid(row)
        if status == QUARANTINED or (status == FILTERED_AS_SPAM and g[3] % 2 == 0):
            verdict = ("Phish", "Malware", "Spam")[2 if status == FILTERED_AS_SPAM else g[4] % 2]
            fields = {
                "EventType": {"Phish": "Phish", "Malware": "Malware", "Spam": "Spam"}[verdict],
                "BulkComplaintLevel": g[5] % 10,
                "VerdictType": verdict,
                "Action": "MoveToJmf" if verdict == "Spam" else "Quarantine",
                "FileName": f"invoice_{g[6]:03d}.docm" if verdict == "Malware" else None,
                "MalwareName": "Trojan:W97M/Emotet.PV" if verdict == "Malware" else None,
            }
            items.append((facts.data.ticks[row], since, {**facts.message(row), **fields}))
    return Table.of(items)


DLP_POLICIES = ("U.S. Financial Data", "GDPR Enhanced", "PCI DSS")
SENSITIVE_TYPES = ("Credit Card Number", "U.S. Social Security Number (SSN)", "IBAN")


def dlp_pick(facts: Facts, row: int) -> tuple[str, str, str] | None:
    """(policy, sensitive type, action) of an outbound row that matched a DLP rule, if any."""
    g = facts.guid(row)
    if facts.direction(row) != "Outbound" or g[7] % 9 != 0:
        return None
    action = ("BlockAccess", "NotifyUser", "GenerateIncidentReport")[g[10] % 3]
    return DLP_POLICIES[g[8] % 3], SENSITIVE_TYPES[g[9] % 3], action


def dlp_detail(facts: Facts) -> Table:
    """DlpDetailReport: one row per DLP rule match of an outbound message and recipient."""
    items = []
    data = facts.data
    for row in range(len(data)):
        pick = dlp_pick(facts, row)
        if pick is None:
            continue
        policy, kind, action = pick
        g = facts.guid(row)
        msg = data.row_msg[row]
        fields = {
            "Date": When(data.ticks[row]),
            "Title": data.pools.subjects[data.msg_subject[msg]],
            "Location": "Exchange",
            "Severity": ("Low", "Medium", "High")[g[11] % 3],
            "Size": data.msg_size[msg],
            "Source": "EXCHANGE",
            "Actor": facts.sender(row),
            "DLPPolicy": policy,
            "UserAction": "None",
            "Justification": None,
            "SensitiveInformationType": kind,
            "SensitiveInformationCount": 1 + g[12] % 5,
            "SensitiveInformationConfidence": (75, 85)[g[13] % 2],
            "EventType": "DLPRuleMatch",
            "Action": action,
            "ObjectId": data.message_id(row),
            "Recipients": data.recipient(row),
        }
        items.append((data.ticks[row], data.vis[row], fields))
    return Table.of(items)


def safelinks(facts: Facts) -> Table:
    """SafelinksDetail: clicks on links in delivered inbound mail, published the next day."""
    items = []
    data = facts.data
    for row in range(len(data)):
        status, _ = facts.final(row)
        g = facts.guid(row)
        if status != DELIVERED or facts.direction(row) != "Inbound" or g[14] % 7 != 0:
            continue
        clicked = data.ticks[row] + (1 + g[15] % 48) * HOUR
        domain = facts.sender(row).rsplit("@", 1)[1]
        action = ("Allowed", "Blocked", "ClickedEvenBlocked")[g[0] % 3]
        fields = {
            "ClickTime": When(clicked),
            "NetworkMessageId": data.trace_id(row),
            "ClientMessageId": data.message_id(row),
            "SenderAddress": facts.sender(row),
            "RecipientAddress": data.recipient(row),
            "Url": f"https://www.{domain}/l/{g[1]:02x}{g[2]:02x}{g[3]:02x}",
            "UrlDomain": f"www.{domain}",
            "Action": action,
            "AppName": ("Outlook", "Teams", "Word")[g[4] % 3],
            "SourceId": "0",
            "Organization": data.spec.domain,
            "DetectedBy": "Safe Links in Outlook",
            "UrlType": None,
            "Flags": ("Allowed", "Blocked", "ClickedEvenBlocked").index(action),
        }
        published = (clicked // DAY + 1) * DAY + HOUR // 2
        items.append((clicked, published, fields))
    return Table.of(items)


def _ip(facts: Facts, row: int) -> str | None:
    data = facts.data
    return data.pools.ips[data.msg_from_ip[data.row_msg[row]]] or None
