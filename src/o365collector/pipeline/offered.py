"""A stream that runs only while the tenant's service document offers the reports it reads."""

from __future__ import annotations

import asyncio

import structlog

from o365collector.observability import metrics
from o365collector.pipeline.lane import LaneContext, wait_or_stop
from o365collector.pipeline.stream import StreamWorker
from o365collector.planning.plan import StreamPlan
from o365collector.sources.reporting.discovery import ServiceDocument
from o365collector.state.writer import StateWriter

log = structlog.get_logger(__name__)


class OfferedReportWorker(StreamWorker):
    """Checks discovery before running the stream's lanes.

    A report the tenant does not offer is reported once, at ERROR with the fix, and the
    stream is skipped without failing the run or stopping the tenant's other streams. A
    daemon looks again every ``recheck_secs`` (silently) and starts the stream once the
    report appears; nothing is committed meanwhile, so no history is skipped.
    """

    def __init__(
        self,
        ctx: LaneContext,
        store: StateWriter,
        plan: StreamPlan,
        *,
        discovery: ServiceDocument,
        reports: tuple[str, ...],
        recheck_secs: float = 3600.0,
    ) -> None:
        """Gate the stream on ``reports`` (names as the catalog spells them)."""
        super().__init__(ctx, store, plan)
        self.discovery = discovery
        self.reports = reports
        self.recheck_secs = recheck_secs
        self.reported = False

    async def run(self, stop: asyncio.Event, *, once: bool) -> None:
        """Run the lanes once every report is offered; see the class docstring.

        Raises:
            SourceError: the service document itself could not be read (401, 403, …).
        """
        offered = await self.discovery.offered()
        while missing := [r for r in self.reports if r.lower() not in offered]:
            if not self.reported:
                self._report(missing, len(offered))
            self.progress.state = "skipped"
            if once:
                return
            await wait_or_stop(stop, self.recheck_secs)
            if stop.is_set():
                return
            offered = await self.discovery.offered(refresh=True)
        if self.reported:
            log.info("Report now offered; starting the stream.", **self._fields())
            self.reported = False
        await super().run(stop, once=once)

    def _report(self, missing: list[str], offered: int) -> None:
        self.reported = True
        metrics.ERRORS.labels(stage="discovery", error_type="report_not_offered").inc()
        names = ", ".join(missing)
        log.error(
            "Report not offered to this tenant; skipping the stream.",
            **self._fields(),
            report=names,
            reports_offered=offered,
            fix=(
                f"the tenant's Reporting Web Service does not list {names} for this app: "
                f"remove `{self.id.stream}` from the tenant's streams, or license the tenant "
                "for the report and give the app a role that may read it (Global Reader or "
                "Security Reader)"
            ),
        )

    def _fields(self) -> dict[str, str]:
        return {"tenant": self.id.tenant, "stream": self.id.stream}
