"""Columnar per-tenant message-trace rows: sort keys, visibility, status history, row views."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from typing import Any

from .pools import Pools
from .settings import TenantSpec
from .ticks import format_micros, format_received

STATUSES = (
    "gettingStatus",
    "pending",
    "delivered",
    "failed",
    "expanded",
    "quarantined",
    "filteredAsSpam",
)
GETTING_STATUS, PENDING, DELIVERED, FAILED, EXPANDED, QUARANTINED, FILTERED_AS_SPAM = range(7)
STATUS_BY_LOWER = {name.lower(): code for code, name in enumerate(STATUSES)}

# A row's history is one byte: final status in bits 0-2, history kind in bits 3-4.
KIND_FINAL = 0  # final status from first visibility
KIND_GETTING = 1  # gettingStatus, then final at chg[i]
KIND_PENDING = 2  # pending, then final at chg[i]
KIND_GETTING_PENDING = 3  # gettingStatus, pending at chg[i], final at chg2[i]

RowKey = tuple[int, bytes, str]


def format_guid(raw: bytes) -> str:
    """Format 16 big-endian bytes as a lower-case hyphenated GUID string."""
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class TenantData:
    """One tenant's rows in columnar arrays, sorted ascending by (ticks, trace id, recipient).

    Times are 100 ns ticks. Rows of one message are contiguous (they share
    receivedDateTime and trace id). Row ``i`` is first visible at ``vis[i]``; its status
    history is encoded in ``hist[i]`` with change times ``chg[i]`` and ``chg2[i]`` (see the
    ``KIND_*`` constants). Immutable once generated, so concurrent readers need no lock.
    """

    def __init__(self, spec: TenantSpec, pools: Pools) -> None:
        """Create an empty dataset; :func:`generate.generate_tenant` fills it."""
        self.spec = spec
        self.pools = pools
        self.guids = bytearray()  # per message: the trace id's 16 bytes (big-endian)
        self.message_id_xor = 0  # Message-ID guid = trace id XOR this (a bijection)
        self.msg_sender = array("i")
        self.msg_subject = array("i")
        self.msg_size = array("i")
        self.msg_from_ip = array("i")
        self.msg_first_row = array("i")
        self.ticks = array("q")
        self.row_msg = array("i")
        self.row_rcpt = array("i")
        self.vis = array("q")
        self.hist = bytearray()
        self.chg = array("q")
        self.chg2: dict[int, int] = {}

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.ticks)

    def trace_guid(self, row: int) -> bytes:
        """The 16 bytes of the row's trace id."""
        m = self.row_msg[row] * 16
        return bytes(self.guids[m : m + 16])

    def trace_id(self, row: int) -> str:
        """The row's trace ``id`` (shared by all recipient rows of its message)."""
        return format_guid(self.trace_guid(row))

    def message_id(self, row: int) -> str:
        """The row's Internet ``messageId`` including angle brackets."""
        raw = int.from_bytes(self.trace_guid(row), "big") ^ self.message_id_xor
        domain = self.pools.address_domain[self.msg_sender[self.row_msg[row]]]
        return f"<{format_guid(raw.to_bytes(16, 'big'))}@{domain}>"

    def recipient(self, row: int) -> str:
        """The row's recipientAddress."""
        return self.pools.addresses[self.row_rcpt[row]]

    def key(self, row: int) -> RowKey:
        """Sort key (receivedDateTime ticks, trace id bytes, recipientAddress)."""
        return (self.ticks[row], self.trace_guid(row), self.recipient(row))

    def status_at(self, row: int, now: int) -> int:
        """Status code of a visible row as of ``now`` (ticks)."""
        code = self.hist[row]
        kind = code >> 3
        if kind == KIND_FINAL:
            return code & 7
        if self.chg[row] > now:
            return PENDING if kind == KIND_PENDING else GETTING_STATUS
        if kind == KIND_GETTING_PENDING and self.chg2[row] > now:
            return PENDING
        return code & 7

    def history(self, row: int) -> list[tuple[int, int]]:
        """The row's full status history as (status code, visible-from ticks) pairs."""
        code = self.hist[row]
        kind, final, first = code >> 3, code & 7, self.vis[row]
        if kind == KIND_FINAL:
            return [(final, first)]
        if kind == KIND_GETTING_PENDING:
            return [(GETTING_STATUS, first), (PENDING, self.chg[row]), (final, self.chg2[row])]
        initial = PENDING if kind == KIND_PENDING else GETTING_STATUS
        return [(initial, first), (final, self.chg[row])]

    def window(self, low: int, high: int) -> tuple[int, int]:
        """Row index range [start, stop) whose receivedDateTime ticks lie in [low, high]."""
        return bisect_left(self.ticks, low), bisect_right(self.ticks, high)

    def index_below(self, key: RowKey) -> int:
        """Smallest index j such that every row < j has a sort key strictly below ``key``."""
        ticks, guid, recipient = key
        j = bisect_right(self.ticks, ticks)
        while j > 0 and self.ticks[j - 1] == ticks and self.key(j - 1)[1:] >= (guid, recipient):
            j -= 1
        return j

    def message_rows(self, msg: int) -> tuple[int, int]:
        """Row index range [start, stop) of message ``msg``."""
        start = self.msg_first_row[msg]
        stop = self.msg_first_row[msg + 1] if msg + 1 < len(self.msg_first_row) else len(self)
        return start, stop

    def find_message(self, guid: bytes, *, message_id_part: bool = False) -> int | None:
        """Index of the message whose trace id (or Message-ID guid) is ``guid``, if any."""
        if message_id_part:
            guid = (int.from_bytes(guid, "big") ^ self.message_id_xor).to_bytes(16, "big")
        pos = self.guids.find(guid)
        while pos != -1:
            if pos % 16 == 0:
                return pos // 16
            pos = self.guids.find(guid, pos + 1)
        return None

    def render(self, row: int, status: int, *, beta: bool = False) -> dict[str, Any]:
        """The row exactly as Graph serialises an exchangeMessageTrace, with ``status``."""
        msg = self.row_msg[row]
        pools = self.pools
        rcpt = self.row_rcpt[row]
        out: dict[str, Any] = (
            {"@odata.type": "#microsoft.graph.exchangeMessageTrace"} if beta else {}
        )
        out["id"] = format_guid(bytes(self.guids[msg * 16 : msg * 16 + 16]))
        out["senderAddress"] = pools.addresses[self.msg_sender[msg]]
        out["recipientAddress"] = pools.addresses[rcpt]
        out["messageId"] = self.message_id(row)
        out["receivedDateTime"] = format_received(self.ticks[row])
        out["subject"] = pools.subjects[self.msg_subject[msg]]
        out["size"] = self.msg_size[msg]
        out["fromIP"] = pools.ips[self.msg_from_ip[msg]]
        out["toIP"] = pools.ips[pools.to_ip[rcpt]]
        out["status"] = STATUSES[status]
        return out

    def is_outbound(self, row: int) -> bool:
        """True when the row's recipient is outside the tenant (mail sent to the internet)."""
        return self.pools.to_ip[self.row_rcpt[row]] != 0

    def ground_truth_row(self, row: int, visible_by: int | None = None) -> dict[str, Any] | None:
        """Ground-truth record of a row; history cut at ``visible_by`` (None if not yet visible).

        Returns:
            ``{"id", "recipientAddress", "receivedDateTime", "history": [{"status",
            "visible_at"}, ...]}`` with ``receivedDateTime`` formatted exactly as served and
            ``visible_at`` as ISO UTC with microseconds; ``history[0]`` is first visibility.
        """
        history = self.history(row)
        if visible_by is not None:
            history = [h for h in history if h[1] <= visible_by]
            if not history:
                return None
        return {
            "id": self.trace_id(row),
            "recipientAddress": self.recipient(row),
            "receivedDateTime": format_received(self.ticks[row]),
            "history": [
                {"status": STATUSES[c], "visible_at": format_micros(t)} for c, t in history
            ],
        }
