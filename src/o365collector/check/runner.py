"""Run every probe of ``check``: each tenant (concurrently), then each sink."""

from __future__ import annotations

import asyncio

from o365collector.check.model import Report
from o365collector.check.sinks import check_sinks
from o365collector.check.tenant import check_tenant
from o365collector.clock import Clock, SystemClock
from o365collector.config.model import Settings


async def check_all(settings: Settings, clock: Clock, max_wait_secs: float) -> Report:
    """Probe every tenant and sink of ``settings``; findings keep the configuration's order."""
    reports = [Report() for _ in settings.tenants]
    await asyncio.gather(
        *(
            check_tenant(tenant, settings, report, clock, max_wait_secs)
            for tenant, report in zip(settings.tenants, reports, strict=True)
        )
    )
    merged = Report([f for report in reports for f in report.findings])
    await check_sinks(settings, merged, max_wait_secs)
    return merged


def run_check(
    settings: Settings, *, clock: Clock | None = None, max_wait_secs: float = 15.0
) -> Report:
    """Run :func:`check_all` on a new event loop.

    ``max_wait_secs`` bounds how long a transient failure (network, 5xx, 429) is retried
    before it is reported; each probe request counts against the tenant's budget.
    """
    return asyncio.run(check_all(settings, clock or SystemClock(), max_wait_secs))
