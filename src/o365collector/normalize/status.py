"""The one status table: a raw message-trace delivery status → ECS and OCSF values.

Graph (``delivered``, ``filteredAsSpam``, ``unknownFutureValue``…) and the Reporting Web
Service (``Delivered``, ``FilteredAsSpam``…) spell the same statuses differently, and Graph's
own documentation shows both cases: the table is keyed by the lower-cased value, so matching
is case-insensitive.

Choices (reference ``normalization.md`` §2.3 and §4.3):

- ``event.outcome`` follows Elastic's 1.21 pipeline (the project rule): ``delivered`` is
  ``success``, ``failed`` is ``failure``, everything else is ``unknown`` (Quarantined and
  FilteredAsSpam too: the message was handled as designed, not lost).
- ``event.action`` is the status in lower case (``filteredasspam``); a value the table does
  not know is lower-cased as well, so it is kept, never dropped.
- OCSF ``status_id`` agrees with the outcome: 1 Success ↔ success, 2 Failure ↔ failure,
  0 Unknown / 99 Other ↔ unknown. With 99 the ``status`` caption is the value itself (the
  canonical spelling for a known status, the raw value for an unknown one).
- OCSF ``disposition_id`` carries the mail-security meaning, ``action_id`` the
  security-control verdict the schema pairs with it.

The raw value is always kept in :attr:`StatusMapping.raw`, verbatim.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

Outcome = Literal["success", "failure", "unknown"]

OCSF_STATUS: dict[int, str] = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
OCSF_DISPOSITION: dict[int, str] = {
    0: "Unknown",
    1: "Allowed",
    2: "Blocked",
    3: "Quarantined",
    4: "Isolated",
    5: "Deleted",
    6: "Dropped",
    7: "Custom Action",
    8: "Approved",
    9: "Restored",
    10: "Exonerated",
    11: "Corrected",
    12: "Partially Corrected",
    13: "Uncorrected",
    14: "Delayed",
    15: "Detected",
    16: "No Action",
    17: "Logged",
    18: "Tagged",
    19: "Alert",
    20: "Count",
    21: "Reset",
    22: "Captcha",
    23: "Challenge",
    24: "Access Revoked",
    25: "Rejected",
    26: "Unauthorized",
    27: "Error",
    99: "Other",
}
"""OCSF 1.8.0 ``disposition_id`` captions (``dictionary.json``), every one of them."""
OCSF_ACTION: dict[int, str] = {
    0: "Unknown",
    1: "Allowed",
    2: "Denied",
    3: "Observed",
    4: "Modified",
    99: "Other",
}
"""OCSF 1.8.0 ``action_id`` captions (the ``security_control`` profile's enum)."""
_OTHER = 99


@dataclass(frozen=True, slots=True)
class StatusMapping:
    """What one raw status means in ECS and OCSF.

    Attributes:
        raw: The status exactly as Microsoft sent it (``None`` when absent).
        known: Whether the table knows the status (case-insensitively).
        name: The canonical spelling (Graph's enum name in PascalCase, RWS's spelling:
            ``FilteredAsSpam``); the raw value for an unknown status, ``None`` when absent.
        ecs_outcome: ECS ``event.outcome``.
        ecs_action: ECS ``event.action``: the status in lower case, ``None`` when absent.
        ocsf_status_id: OCSF ``status_id`` (0 Unknown, 1 Success, 2 Failure, 99 Other).
        ocsf_status: OCSF ``status``: the caption, or the status itself with 99.
        ocsf_disposition_id: OCSF ``disposition_id``.
        ocsf_disposition: OCSF ``disposition`` (its caption).
        ocsf_action_id: OCSF ``action_id``.
        ocsf_action: OCSF ``action`` (its caption).
    """

    raw: str | None
    known: bool
    name: str | None
    ecs_outcome: Outcome
    ecs_action: str | None
    ocsf_status_id: int
    ocsf_status: str
    ocsf_disposition_id: int
    ocsf_disposition: str
    ocsf_action_id: int
    ocsf_action: str


def _entry(
    name: str, outcome: Outcome, status_id: int, disposition_id: int, action_id: int
) -> StatusMapping:
    """A table row; ``raw`` is filled in by :func:`status_of`."""
    return StatusMapping(
        raw=name,
        known=True,
        name=name,
        ecs_outcome=outcome,
        ecs_action=name.lower(),
        ocsf_status_id=status_id,
        ocsf_status=name if status_id == _OTHER else OCSF_STATUS[status_id],
        ocsf_disposition_id=disposition_id,
        ocsf_disposition=OCSF_DISPOSITION[disposition_id],
        ocsf_action_id=action_id,
        ocsf_action=OCSF_ACTION[action_id],
    )


_ROWS: tuple[StatusMapping, ...] = (
    # name, outcome, OCSF status_id, disposition_id, action_id
    _entry("Delivered", "success", 1, 1, 1),  # reached the mailbox: Allowed / Allowed
    _entry("Failed", "failure", 2, 25, 2),  # not delivered (NDR): Rejected / Denied
    _entry("Quarantined", "unknown", _OTHER, 3, 2),  # held: Quarantined / Denied
    _entry("FilteredAsSpam", "unknown", _OTHER, 18, 4),  # to Junk Email: Tagged / Modified
    _entry("Expanded", "unknown", _OTHER, 16, 1),  # group expanded into member rows
    _entry("Resolved", "unknown", _OTHER, 16, 1),  # redirected after a directory lookup
    _entry("Recalled", "unknown", _OTHER, 5, 0),  # Graph opt-in member: Deleted
    _entry("Pending", "unknown", 0, 14, 0),  # being (re-)attempted: Delayed
    _entry("GettingStatus", "unknown", 0, 0, 0),  # not final yet
    _entry("None", "unknown", 0, 0, 0),  # no delivery status (rejected or redirected)
    _entry("UnknownFutureValue", "unknown", 0, 0, 0),  # Graph's evolvable-enum sentinel
)

STATUS_TABLE: dict[str, StatusMapping] = {row.ecs_action or "": row for row in _ROWS}
"""The known statuses, keyed by the lower-cased value."""

_MISSING = StatusMapping(
    raw=None,
    known=False,
    name=None,
    ecs_outcome="unknown",
    ecs_action=None,
    ocsf_status_id=0,
    ocsf_status=OCSF_STATUS[0],
    ocsf_disposition_id=0,
    ocsf_disposition=OCSF_DISPOSITION[0],
    ocsf_action_id=0,
    ocsf_action=OCSF_ACTION[0],
)


@functools.lru_cache(maxsize=512)
def status_of(raw: str | None) -> StatusMapping:
    """The meaning of a raw delivery status, in either spelling and any case.

    A status the table does not know maps to outcome ``unknown``, OCSF status 99 (Other,
    with ``status`` = the raw value), disposition and action 0 (Unknown); its raw value is
    kept in ``raw``, ``name`` and (lower-cased) ``ecs_action``. An absent or empty status
    maps to every "unknown" value with ``raw`` ``None`` (or ``""``).
    """
    if not raw:
        return _MISSING if raw is None else replace(_MISSING, raw=raw)
    row = STATUS_TABLE.get(raw.lower())
    if row is not None:
        return row if row.raw == raw else replace(row, raw=raw)
    return replace(
        _MISSING,
        raw=raw,
        name=raw,
        ecs_action=raw.lower(),
        ocsf_status_id=_OTHER,
        ocsf_status=raw,
    )


# -- The reports' Action values ---------------------------------------------------------------

EcsActionType = Literal["allowed", "denied"]


@dataclass(frozen=True, slots=True)
class ActionMapping:
    """What one raw report ``Action`` (MailDetailATP, DLP, Safe Links, MailTraffic…) means.

    Attributes:
        raw: The action exactly as Microsoft sent it (``None`` when absent).
        known: Whether the table knows the action (case-insensitively).
        name: The canonical spelling (``MoveToJmf``); the raw value for an unknown action,
            ``None`` when absent.
        ecs_type: The ECS ``event.type`` value that goes with ``info``: ``allowed`` when
            the message or click went through, ``denied`` when it was stopped, ``None`` when
            the action says neither (tagged, notified, no action, unknown).
        ecs_action: ECS ``event.action``: the action in lower case, ``None`` when absent.
        blocked: Whether the message, access or click was stopped (quarantined, deleted,
            blocked, rejected).
        ocsf_disposition_id: OCSF ``disposition_id``.
        ocsf_disposition: OCSF ``disposition`` (its caption, or the raw value with 99).
        ocsf_action_id: OCSF ``action_id`` (0 Unknown, 1 Allowed, 2 Denied, 3 Observed,
            4 Modified, 99 Other).
        ocsf_action: OCSF ``action`` (its caption, or the raw value with 99).
    """

    raw: str | None
    known: bool
    name: str | None
    ecs_type: EcsActionType | None
    ecs_action: str | None
    blocked: bool
    ocsf_disposition_id: int
    ocsf_disposition: str
    ocsf_action_id: int
    ocsf_action: str


def _action(
    name: str, ecs_type: EcsActionType | None, disposition_id: int, action_id: int
) -> ActionMapping:
    """An action table row; ``raw`` is filled in by :func:`action_of`."""
    return ActionMapping(
        raw=name,
        known=True,
        name=name,
        ecs_type=ecs_type,
        ecs_action=name.lower(),
        blocked=ecs_type == "denied",
        ocsf_disposition_id=disposition_id,
        ocsf_disposition=OCSF_DISPOSITION[disposition_id],
        ocsf_action_id=action_id,
        ocsf_action=OCSF_ACTION[action_id],
    )


_ALLOWED: EcsActionType = "allowed"
_DENIED: EcsActionType = "denied"
_ACTION_ROWS: tuple[ActionMapping, ...] = (
    # name, ECS event.type (with info), OCSF disposition_id, action_id
    # Let through: Allowed / Allowed.
    _action("Allow", _ALLOWED, 1, 1),
    _action("Allowed", _ALLOWED, 1, 1),
    # Safe Links: the user clicked through the block page, or before the scan finished.
    # The click went through, so Allowed / Allowed and not blocked (the verdict was "block",
    # which the raw action in event.action / ocsf action keeps).
    _action("ClickedEvenBlocked", _ALLOWED, 1, 1),
    _action("ClickedDuringScan", _ALLOWED, 1, 1),
    # Stopped: Blocked / Denied.
    _action("Block", _DENIED, 2, 2),
    _action("Blocked", _DENIED, 2, 2),
    _action("BlockAccess", _DENIED, 2, 2),  # DLP: recipients cannot open the message
    _action("Quarantine", _DENIED, 3, 2),  # held in quarantine
    _action("DeleteMessage", _DENIED, 5, 2),  # malware: the message was deleted
    _action("Reject", _DENIED, 25, 2),
    _action("RejectMessage", _DENIED, 25, 2),  # transport rule / NDR
    # Delivered, but marked: Tagged / Modified.
    _action("MoveToJmf", None, 18, 4),  # to the Junk Email folder
    _action("DeliverToJunk", None, 18, 4),
    _action("Junk", None, 18, 4),
    _action("PrependSubject", None, 18, 4),  # transport rule: subject prefixed
    _action("SetSpamConfidenceLevel", None, 18, 4),  # message trace detail: SCL stamped
    # Only told about it: not blocked, Observed.
    _action("NotifyUser", None, 19, 3),  # DLP policy tip: notified, not blocked (Alert)
    _action("GenerateIncidentReport", None, 17, 3),  # DLP incident report to admins: Logged
    _action("None", None, 16, 3),  # the report's explicit "no action"
)

ACTION_TABLE: dict[str, ActionMapping] = {row.ecs_action or "": row for row in _ACTION_ROWS}
"""The known report actions, keyed by the lower-cased value."""

_NO_ACTION = ActionMapping(
    raw=None,
    known=False,
    name=None,
    ecs_type=None,
    ecs_action=None,
    blocked=False,
    ocsf_disposition_id=0,
    ocsf_disposition=OCSF_DISPOSITION[0],
    ocsf_action_id=0,
    ocsf_action=OCSF_ACTION[0],
)


@functools.lru_cache(maxsize=512)
def action_of(raw: str | None) -> ActionMapping:
    """The meaning of a raw report ``Action``, in any case.

    An action the table does not know is kept, never dropped: ``known`` False, no ECS
    ``event.type`` value, ``ecs_action`` the raw value in lower case, OCSF disposition and
    action 99 Other with the raw value as their caption. An absent or empty action (the
    aggregate reports' ``null``) maps to every "unknown" value (0) with ``raw`` ``None``
    (or ``""``).
    """
    if not raw:
        return _NO_ACTION if raw is None else replace(_NO_ACTION, raw=raw)
    row = ACTION_TABLE.get(raw.lower())
    if row is not None:
        return row if row.raw == raw else replace(row, raw=raw)
    return replace(
        _NO_ACTION,
        raw=raw,
        name=raw,
        ecs_action=raw.lower(),
        ocsf_disposition_id=_OTHER,
        ocsf_disposition=raw,
        ocsf_action_id=_OTHER,
        ocsf_action=raw,
    )
