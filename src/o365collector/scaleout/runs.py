"""The running work of each tenant a replica holds: start one, stop one, wait for all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

TenantRun = Callable[[str, asyncio.Event, bool], Coroutine[Any, Any, None]]
"""``run(tenant, stop, takeover)``: one tenant's work until ``stop`` is set (or, with
``--once``, until caught up); ``takeover`` when the tenant's previous owner stopped without
handing it back."""


class TenantRuns:
    """One task per tenant, each with its own stop event (the app supplies the work)."""

    def __init__(self, run: TenantRun) -> None:
        """Start tenants with ``run(tenant, stop)``."""
        self._run = run
        self._running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    def start(self, tenant: str, *, takeover: bool = False) -> None:
        """Start ``tenant``'s work (nothing if it is running).

        If its previous work was asked to stop and has not ended yet, the new work starts
        once the old has drained, so one tenant never has two runs at a time.
        """
        entry = self._running.get(tenant)
        if entry is not None and not entry[1].done() and not entry[0].is_set():
            return
        previous = entry[1] if entry is not None and not entry[1].done() else None
        stop = asyncio.Event()
        task = asyncio.create_task(
            self._after(previous, tenant, stop, takeover), name=f"tenant {tenant}"
        )
        self._running[tenant] = (stop, task)

    async def _after(
        self,
        previous: asyncio.Task[None] | None,
        tenant: str,
        stop: asyncio.Event,
        takeover: bool,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        if not stop.is_set():
            await self._run(tenant, stop, takeover)

    async def stop(self, tenant: str) -> None:
        """Ask ``tenant``'s work to stop and wait until it drained (nothing if not running).

        The work commits every acknowledged page before it ends; an error it ends with is
        logged, not raised (the tenant is someone else's, or nobody's, from now on).
        """
        entry = self._running.get(tenant)
        if entry is None:
            return
        stop, task = entry
        stop.set()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                raise  # our caller was cancelled, not the tenant's work
        except Exception as exc:  # noqa: BLE001 - logged; the tenant stops either way
            log.error("Tenant work ended with an error.", tenant=tenant, error=str(exc))
        finally:
            if task.done() and self._running.get(tenant) == entry:
                del self._running[tenant]

    def running(self) -> list[str]:
        """Tenants whose work has not ended."""
        return sorted(t for t, (_, task) in self._running.items() if not task.done())

    async def wait_all(self) -> None:
        """Until the work of every started tenant has ended (``--once``)."""
        tasks = [task for _, task in self._running.values()]
        await asyncio.gather(*tasks, return_exceptions=True)
