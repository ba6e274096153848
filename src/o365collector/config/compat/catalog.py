"""The services of Devo's Office 365 reporting collector, from the report catalog.

Each service is the report whose ``devo_service`` names it (``streams/catalog.py``); its
stream is ``rws.<report>``, except MessageTrace, read from Graph where Graph offers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from o365collector.clouds import CLOUDS, CloudName
from o365collector.streams.catalog import GRAPH_MESSAGE_TRACE, ReportSpec, listed_reports


@dataclass(frozen=True, slots=True)
class DevoService:
    """One service of Devo's "Office 365 Exchange Reports" collector and its report."""

    name: str
    report: ReportSpec

    @property
    def table(self) -> str:
        """The Devo table the service writes to."""
        assert self.report.devo_table is not None  # every Devo service has a table
        return self.report.devo_table

    @property
    def is_message_trace(self) -> bool:
        """True for the MessageTrace report, which Graph also offers."""
        return self.report.name == "MessageTrace"

    @property
    def aggregated(self) -> bool:
        """True when the report is hourly or daily buckets (delayed per stream)."""
        return self.report.aggregated

    def stream(self, cloud: CloudName) -> str:
        """The stream collecting this service in ``cloud``.

        MessageTrace is read from Graph wherever Graph offers it (Microsoft is retiring the
        RWS report; client secrets, certificates and user sign-ins can all hold Graph's
        ExchangeMessageTrace.Read.All), else from the Reporting Web Service.
        """
        if self.is_message_trace and CLOUDS[cloud].graph_message_trace:
            return GRAPH_MESSAGE_TRACE
        return self.report.stream

    def candidate_streams(self) -> tuple[str, ...]:
        """Every stream that may collect this service (resets follow an override)."""
        if self.is_message_trace:
            return (GRAPH_MESSAGE_TRACE, self.report.stream)
        return (self.report.stream,)


SERVICES: dict[str, DevoService] = {
    spec.devo_service: DevoService(spec.devo_service, spec)
    for spec in listed_reports()
    if spec.devo_service is not None and spec.devo_table is not None
}
MESSAGE_TRACE_SERVICE = SERVICES["office365_reporting_MessageTrace_service"]
