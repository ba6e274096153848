"""Run the real collector against the real emulator in virtual time (one process).

    python bench/simulate.py SPEC.json RESULT.json

Hours of collection take seconds: the event loop's clock is virtual and jumps to the next
timer whenever nothing is ready, and every wait of the collector (budget, polls, re-sweep
periods, Retry-After) runs on that loop. The collector code is unchanged; its edges are
passed in through ``Collector``'s seams, nothing is patched: HTTP goes to
``Emulator.dispatch`` in-process (``http_client_factory``, no sockets), the emulator and
the collector share the virtual clock (``clock``, which also stamps ``delivered_at``),
and the JSON-lines sink writes inline instead of in a thread (``executor``: a thread
would let virtual time run while it works). Requests are counted per lane by the name
of the task that sends them. Used by ``economy.py`` for the budget and request
counts that need hours of collection with the default settings.

SPEC: ``{"emulator": {...emulator settings, no anchor...}, "collection": {...},
"budget": {...}, "duration_secs": N, "once": bool}``, plus ``first_start_secs``,
``cutoff_secs`` and ``fresh_from_secs`` (virtual seconds) to check against ground truth.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import tempfile
import time
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import CLIENT_ID, SECRET, tenant_id  # noqa: E402

HOST = "emulator.invalid"


class _VirtualSelector(selectors.DefaultSelector):
    """A selector that, when nothing is ready, advances the loop's virtual clock instead."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # nothing scheduled: only a thread could wake us
            return super().select(1.0)
        assert self.loop is not None
        self.loop.virtual += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        self.virtual = 0.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        """Virtual seconds since the start."""
        return self.virtual


class VirtualClock:
    """The collector's Clock over the loop's virtual time."""

    def __init__(self, loop: VirtualLoop, epoch: datetime) -> None:
        """``epoch`` is the wall-clock time at virtual second 0."""
        self.loop = loop
        self.epoch = epoch

    def now(self) -> datetime:
        """The virtual wall-clock time."""
        return self.epoch + timedelta(seconds=self.loop.virtual)

    def monotonic(self) -> float:
        """Virtual seconds."""
        return self.loop.virtual

    async def sleep(self, seconds: float) -> None:
        """Sleep in virtual time."""
        await asyncio.sleep(max(0.0, seconds))


class EmulatorTransport(httpx.AsyncBaseTransport):
    """httpx transport that answers from ``Emulator.dispatch`` and logs each request."""

    def __init__(self, emulator: Any, clock: VirtualClock) -> None:
        """Log entries are (virtual seconds, lane, status, rows)."""
        self.emulator = emulator
        self.clock = clock
        self.log: list[tuple[float, str, int, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Dispatch in-process; the body is read whole."""
        body = await request.aread()
        headers = {k.decode().lower(): v.decode() for k, v in request.headers.raw}
        headers["host"] = HOST
        answer = self.emulator.dispatch(
            request.method, request.url.raw_path.decode(), headers, body
        )
        content = answer.body if isinstance(answer.body, bytes) else b"".join(answer.body)
        if "/oauth2/" not in request.url.path:
            rows = content.count(b'"recipientAddress"') if answer.status == 200 else 0
            self.log.append((self.clock.loop.virtual, _lane(), answer.status, rows))
        return httpx.Response(answer.status, headers=answer.headers, content=content)


def _lane() -> str:
    """The lane of the running task (lane tasks are named ``lane <name> of …``)."""
    task = asyncio.current_task()
    name = "" if task is None else task.get_name()
    return name.split()[1] if name.startswith("lane ") else "token"


class InlineExecutor(Executor):
    """Runs blocking work at once, on the loop's thread: a thread would let virtual time run."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` now; its result (or exception) is ready in the returned future."""
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)
        return future


def _config(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    return {
        "state_dir": str(workdir / "state"),
        "tenants": [
            {
                "name": "sim",
                "tenant_id": tenant_id(0),
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "endpoints": {"authority": f"http://{HOST}", "graph": f"http://{HOST}"},
                "budget": spec.get("budget", {}),
            }
        ],
        "collection": spec.get("collection", {}),
        "sinks": [
            {
                "type": "jsonl",
                "path": str(workdir / "out" / "events.jsonl"),
                "max_bytes": 1 << 40,
            }
        ],
    }


def _truth(emulator: Any, workdir: Path, epoch: datetime, spec: dict[str, Any]) -> dict[str, Any]:
    """Completeness and freshness against ground truth, in virtual seconds."""
    from bench.common import output_events
    from bench.groundtruth import check, delivered_facts

    base = epoch.timestamp()
    result = check(
        emulator.iter_ground_truth(tenant_id(0)),
        delivered_facts(output_events(workdir), base),
        first_start=spec["first_start_secs"],
        cutoff=spec["cutoff_secs"],
        fresh_from=spec.get("fresh_from_secs", 0.0),
        base=base,
        horizon=spec.get("collection", {}).get("horizon_secs", 90000.0),
    )
    return result.to_json()


def simulate(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario; return the request log, budget view and (optionally) ground truth."""
    from o365collector.app import Collector, RunOptions
    from o365collector.config.loader import parse_settings
    from o365collector.observability.logging import configure_logging
    from o365emulator import Emulator, settings_from_mapping

    configure_logging("error", "json")
    epoch = datetime.now(UTC).replace(microsecond=0)
    loop = VirtualLoop()
    asyncio.set_event_loop(loop)
    clock = VirtualClock(loop, epoch)
    tenant = {
        "tenant_id": tenant_id(0),
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        **spec["emulator"].pop("tenant", {}),
    }
    emu_settings = settings_from_mapping(
        {**spec["emulator"], "tenants": [tenant], "anchor": epoch.isoformat()}
    )
    began = time.monotonic()
    emulator = Emulator(emu_settings, clock=clock.now)
    generated = time.monotonic() - began
    transport = EmulatorTransport(emulator, clock)
    with tempfile.TemporaryDirectory(prefix="o365sim-") as folder:
        workdir = Path(folder)
        settings = parse_settings(_config(spec, workdir))
        once = bool(spec.get("once"))
        options = RunOptions(once=once, install_signal_handlers=False)
        collector = Collector(
            settings,
            options,
            clock=clock,
            http_client_factory=lambda *_: httpx.AsyncClient(transport=transport),
            executor=InlineExecutor(),
        )
        if not once:
            loop.call_later(float(spec["duration_secs"]), collector.stop.set)
        began = time.monotonic()
        result = loop.run_until_complete(collector.run())
        real = time.monotonic() - began
        virtual = loop.virtual
        truth = _truth(emulator, workdir, epoch, spec) if "cutoff_secs" in spec else None
    loop.close()
    stats = emulator.stats(tenant_id(0))
    return {
        "requests": transport.log,
        "accepted_times": [t - epoch.timestamp() for t in stats["accepted_times"]],
        "throttled": stats["throttled"],
        "rows_served": stats["rows_served"],
        "rows": len(emulator.dataset(tenant_id(0))),
        "virtual_secs": virtual,
        "real_secs": real,
        "generate_secs": generated,
        "failures": result.failures,
        "truth": truth,
    }


def main() -> int:
    """``simulate.py SPEC.json RESULT.json``."""
    spec = orjson.loads(Path(sys.argv[1]).read_bytes())
    Path(sys.argv[2]).write_bytes(orjson.dumps(simulate(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
