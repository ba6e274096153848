"""Query execution over a tenant's rows: filtered newest-first pages and per-recipient details."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .dataset import (
    DELIVERED,
    EXPANDED,
    FAILED,
    FILTERED_AS_SPAM,
    GETTING_STATUS,
    PENDING,
    QUARANTINED,
    STATUS_BY_LOWER,
    STATUSES,
    RowKey,
    TenantData,
)
from .filters import TraceFilter
from .ticks import TICKS_PER_SEC, format_received

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_MESSAGE_ID = re.compile(r"<(" + _GUID.pattern + r")@[^>]*>")


UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
EXTRA_BASE = len(STATUSES)  # status code of the first extra member


@dataclass(frozen=True)
class ExtraStatuses:
    """Members Graph added after its clients were written, shown by some rows for a while.

    ``shown`` maps a row to (index in ``names``, ticks until which it shows that member);
    from then on the row shows its own history. A shown member has status code
    ``EXTRA_BASE + index``. Graph only: RWS and the detail events never show them.
    """

    names: tuple[str, ...] = ()
    shown: dict[int, tuple[int, int]] = field(default_factory=dict)

    def code(self, name: str) -> int | None:
        """The status code of member ``name`` (case-insensitive), if it is one."""
        lowered = [n.lower() for n in self.names]
        return EXTRA_BASE + lowered.index(name.lower()) if name.lower() in lowered else None

    def render(
        self, data: TenantData, row: int, status: int, *, beta: bool, reveal: bool
    ) -> dict[str, Any]:
        """The row as Graph serialises it, showing an extra member by its name if ``reveal``.

        Without ``reveal`` (no ``Prefer: include-unknown-enum-members``) an extra member is
        ``unknownFutureValue``, as Graph serves evolvable enums.
        """
        if status < EXTRA_BASE:
            return data.render(row, status, beta=beta)
        out = data.render(row, DELIVERED, beta=beta)
        out["status"] = self.names[status - EXTRA_BASE] if reveal else UNKNOWN_FUTURE_VALUE
        return out


NO_EXTRA_STATUSES = ExtraStatuses()


def _guid_bytes(text: str) -> bytes | None:
    return bytes.fromhex(text.replace("-", "")) if _GUID.fullmatch(text) else None


@dataclass
class Matcher:
    """A filter compiled against one tenant's pools: sets of admissible pool indexes.

    ``None`` means "no constraint"; ``impossible`` means no row can match.
    """

    recipients: set[int] | None = None
    senders: set[int] | None = None
    from_ips: set[int] | None = None
    subjects: set[int] | None = None
    status: int | None = None
    message: int | None = None
    message_id: str | None = None
    impossible: bool = False


def _indexes(values: list[str], wanted: str, *, fold: bool = True) -> set[int]:
    if fold:
        wanted = wanted.lower()
        return {i for i, v in enumerate(values) if v.lower() == wanted}
    return {i for i, v in enumerate(values) if v == wanted}


def _subject_matches(function: str, needle: str, subject: str) -> bool:
    hay, needle = subject.lower(), needle.lower()
    if function == "contains":
        return needle in hay
    if function == "startswith":
        return hay.startswith(needle)
    return hay.endswith(needle)


def _narrow_message(data: TenantData, m: Matcher, eq: dict[str, str]) -> None:
    """Resolve ``id`` / ``messageId`` equality to one message index (or impossible)."""
    candidates: set[int] = set()
    if "id" in eq:
        raw = _guid_bytes(eq["id"])
        found = None if raw is None else data.find_message(raw)
        candidates.add(-1 if found is None else found)
    if "messageId" in eq:
        match = _MESSAGE_ID.fullmatch(eq["messageId"])
        raw = None if match is None else _guid_bytes(match.group(1))
        found = None if raw is None else data.find_message(raw, message_id_part=True)
        candidates.add(-1 if found is None else found)
        m.message_id = eq["messageId"]
    if candidates:
        m.message = candidates.pop()
        m.impossible = m.impossible or m.message == -1 or bool(candidates)


def compile_filter(
    data: TenantData, flt: TraceFilter, extra: ExtraStatuses = NO_EXTRA_STATUSES
) -> Matcher:
    """Compile the non-time parts of ``flt`` for ``data`` (and its ``extra`` members)."""
    pools, eq, m = data.pools, flt.eq, Matcher()
    if "recipientAddress" in eq:
        m.recipients = _indexes(pools.addresses, eq["recipientAddress"])
    if "toIP" in eq:
        ips = _indexes(pools.ips, eq["toIP"], fold=False)
        by_ip = {i for i, ip in enumerate(pools.to_ip) if ip in ips}
        m.recipients = by_ip if m.recipients is None else m.recipients & by_ip
    if "senderAddress" in eq:
        m.senders = _indexes(pools.addresses, eq["senderAddress"])
    if "fromIP" in eq:
        m.from_ips = _indexes(pools.ips, eq["fromIP"], fold=False)
    if flt.subject is not None:
        function, needle = flt.subject
        m.subjects = {
            i for i, s in enumerate(pools.subjects) if _subject_matches(function, needle, s)
        }
    if "status" in eq:
        wanted = eq["status"]
        code = STATUS_BY_LOWER.get(wanted.lower(), extra.code(wanted))
        m.status = -1 if code is None else code
    _narrow_message(data, m, eq)
    m.impossible = m.impossible or any(
        s is not None and not s for s in (m.recipients, m.senders, m.from_ips, m.subjects)
    )
    return m


def _row_range(
    data: TenantData, m: Matcher, window: tuple[int, int], below: RowKey | None
) -> tuple[int, int]:
    start, stop = data.window(*window)
    if m.message is not None:
        first, last = data.message_rows(m.message)
        start, stop = max(start, first), min(stop, last)
    if below is not None:
        stop = min(stop, data.index_below(below))
    return start, stop


def select_page(
    data: TenantData,
    m: Matcher,
    window: tuple[int, int],
    below: RowKey | None,
    top: int,
    now: int,
    extra: ExtraStatuses = NO_EXTRA_STATUSES,
) -> tuple[list[tuple[int, int]], bool]:
    """Up to ``top`` (row, status) pairs, newest first, visible at ``now`` and matching ``m``.

    Args:
        data: The tenant's rows.
        m: Compiled filter.
        window: Inclusive receivedDateTime tick bounds.
        below: Keyset cursor: only rows whose sort key is strictly below it qualify.
        top: Page size.
        now: Request time in ticks; decides visibility and each row's current status.
        extra: Members Graph added that some rows show first (code ``EXTRA_BASE + i``).

    Returns:
        The page and whether at least one more qualifying row exists after it.
    """
    if m.impossible:
        return [], False
    start, stop = _row_range(data, m, window, below)
    vis, rcpt, msgs, status_at = data.vis, data.row_rcpt, data.row_msg, data.status_at
    recipients, senders, from_ips, subjects = m.recipients, m.senders, m.from_ips, m.subjects
    msg_sender, msg_from_ip, msg_subject = data.msg_sender, data.msg_from_ip, data.msg_subject
    want_status, message_id = m.status, m.message_id
    shown = extra.shown or None
    message_level = senders is not None or from_ips is not None or subjects is not None
    page: list[tuple[int, int]] = []
    for i in range(stop - 1, start - 1, -1):
        if vis[i] > now or (recipients is not None and rcpt[i] not in recipients):
            continue
        if message_level:
            msg = msgs[i]
            if (
                (senders is not None and msg_sender[msg] not in senders)
                or (from_ips is not None and msg_from_ip[msg] not in from_ips)
                or (subjects is not None and msg_subject[msg] not in subjects)
            ):
                continue
        if message_id is not None and data.message_id(i) != message_id:
            continue
        status = status_at(i, now)
        if shown is not None and (member := shown.get(i)) is not None and now < member[1]:
            status = EXTRA_BASE + member[0]
        if want_status is not None and status != want_status:
            continue
        if len(page) == top:
            return page, True
        page.append((i, status))
    return page, False


_EVENTS = {
    PENDING: (
        "Defer",
        "The message was deferred. Reason: 451 4.4.0 Temporary server error; "
        "the message will be retried.",
    ),
    DELIVERED: ("Deliver", "The message was successfully delivered."),
    FAILED: (
        "Fail",
        "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not "
        "found by SMTP address lookup};{MSG=};{FQDN=};{IP=};{LRT=}]",
    ),
    EXPANDED: ("Expand", "The message was sent to a distribution group and expanded."),
    QUARANTINED: ("Quarantine", "The message was quarantined by a policy."),
    FILTERED_AS_SPAM: (
        "Spam",
        "The message was marked as spam and delivered to the Junk Email folder.",
    ),
}


def _server(guid: bytes) -> str:
    return (
        f"MN2PR{guid[0] % 20:02d}MB{int.from_bytes(guid[1:3], 'big') % 10000:04d}"
        f".namprd{guid[3] % 20:02d}.prod.outlook.com"
    )


def detail_rows(data: TenantData, row: int, now: int) -> list[dict[str, Any]]:
    """getDetailsByRecipient events of a visible row, consistent with its history up to now.

    ``Receive`` first, then one event per status reached (none for gettingStatus);
    delivered mail to outside recipients shows ``Send external``.
    """
    guid, received = data.trace_guid(row), data.ticks[row]
    base = {"id": data.trace_id(row), "messageId": data.message_id(row)}
    server = _server(guid)
    first_visible = data.vis[row]
    out = [
        {
            **base,
            "dateTime": format_received(received // TICKS_PER_SEC * TICKS_PER_SEC),
            "event": "Receive",
            "action": "",
            "description": f"Message received by: {server}",
            "data": f'<root><MEP Name="Connector" String="Default {server}" /></root>',
        }
    ]
    for status, since in data.history(row):
        if since > now or status == GETTING_STATUS:
            continue
        event, description = _EVENTS[status]
        if status == DELIVERED and data.is_outbound(row):
            event = "Send external"
            description = f"Message sent to {data.pools.ips[data.pools.to_ip[data.row_rcpt[row]]]}"
        at = (received + 2 * TICKS_PER_SEC + since - first_visible) // TICKS_PER_SEC
        out.append(
            {
                **base,
                "dateTime": format_received(at * TICKS_PER_SEC),
                "event": event,
                "action": "",
                "description": description,
                "data": f'<root><MEP Name="{event}" String="{server}" /></root>',
            }
        )
    return out


def find_row(data: TenantData, trace_id: str, recipient: str) -> int | None:
    """Index of the row with this trace id and recipient (case-insensitive), if any."""
    raw = _guid_bytes(trace_id)
    msg = None if raw is None else data.find_message(raw)
    if msg is None:
        return None
    first, last = data.message_rows(msg)
    wanted = recipient.lower()
    return next((i for i in range(first, last) if data.recipient(i) == wanted), None)
