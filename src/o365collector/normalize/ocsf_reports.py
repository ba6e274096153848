"""The Exchange reports (every ``rws.<Report>`` but MessageTrace, and message trace detail)
as OCSF 1.8.0 events.

``MAPPERS`` maps a report name (``MailTraffic``) or a stream (``message_trace_detail``) to
its mapper; :func:`generic` maps any other stream. Class and activity per report (the
modules say why):

================================  ===============================  =========================
Report / stream                   Class                            Activity
================================  ===============================  =========================
message_trace_detail              4009 Email Activity              4 Trace
MailDetailATP, MailDetailSpam,    4009 Email Activity              3 Scan
MailDetailMalware
SafelinksDetail                   4012 Email URL Activity          3 Scan
SpoofMailReport                   4009 Email Activity              3 Scan
MailTrafficTop,                   4009 Email Activity (a row with  99 Other (the row's
MailTrafficSummary                an address), else 0 Base Event   EventType / Category)
MailTraffic, MailTrafficATP,      0 Base Event (no address: Email  99 Other (EventType)
MailTrafficPolicy                 Activity needs ``email``)
DlpDetailReport,                  2006 Data Security Finding       1 Create
DlpDetectionsReport
================================  ===============================  =========================

- :mod:`.ocsf_reports_base`: envelope, times, leftovers, disposition from the report's
  ``Action`` (:func:`~.status.action_of`);
- :mod:`.ocsf_reports_mail`: per-message reports;
- :mod:`.ocsf_reports_traffic`: aggregates;
- :mod:`.ocsf_reports_dlp`: DLP findings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from o365collector.event import Event
from o365collector.normalize import ocsf_reports_dlp, ocsf_reports_mail, ocsf_reports_traffic
from o365collector.normalize.mapper import Mapper
from o365collector.normalize.ocsf_reports_base import (
    BASE_EVENT_CLASS_UID,
    OTHER,
    Classification,
    finish,
    names,
)

_GENERIC = Classification(BASE_EVENT_CLASS_UID, OTHER)
_NOTHING_MAPPED = names()


def generic(event: Event, local_domains: Sequence[str], include_original: bool) -> dict[str, Any]:
    """A stream no mapper knows: Base Event, activity Other, the record in ``unmapped``.

    ``time`` is the processing time: a mapper-less stream has no known time field. Base
    Event (class 0) rather than Email Activity: the latter requires an ``email`` with an
    address, which an unknown record may not name.
    """
    del local_domains
    doc = _GENERIC.start(event.stream)
    doc["time"] = time.time_ns() // 1_000_000
    return finish(doc, event, event.stream, _NOTHING_MAPPED, {}, include_original)


MAPPERS: dict[str, Mapper] = {
    **ocsf_reports_mail.MAPPERS,
    **ocsf_reports_traffic.MAPPERS,
    **ocsf_reports_dlp.MAPPERS,
}
