"""Sink probes: can the collector write where each sink delivers?

Every configured sink is built and asked to ``probe()`` its receiver (see
:mod:`o365collector.sinks.probe`): the file sink creates and removes a temporary file,
socket sinks connect and complete their TLS handshake, HTTP sinks send a request that
delivers nothing (and authenticate where the receiver allows it). No sink is ever
skipped: one that cannot be probed is a failure, so ``check`` never passes on a guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from o365collector.check.model import Finding, Report
from o365collector.config.model import Settings
from o365collector.config.sinks import SinkSettings, sink_name
from o365collector.errors import O365CollectorError
from o365collector.observability.redact import redact
from o365collector.sinks.factory import build_sink
from o365collector.sinks.probe import ProbeError

PROBE = "sink"
MIN_WAIT_SECS = 5.0  # a TLS 1.3 probe waits up to 1 s for a refusal after its handshake


async def check_sinks(settings: Settings, report: Report, max_wait_secs: float) -> None:
    """Add one finding per configured sink to ``report``; nothing raises.

    Each probe is bounded by ``max(max_wait_secs, MIN_WAIT_SECS)``. A passing finding's
    detail says what was verified; a failing one names the problem and the fix.
    """
    limit = max(MIN_WAIT_SECS, max_wait_secs)
    for sink_settings in settings.sinks:
        target = f"sink {sink_name(sink_settings)}"
        report.add(await probe_sink(target, sink_settings, limit))


async def probe_sink(target: str, sink_settings: SinkSettings, limit_secs: float) -> Finding:
    """Build the sink of ``sink_settings`` and probe it within ``limit_secs``."""
    try:
        sink: Any = build_sink(sink_settings)
    except O365CollectorError as exc:
        fix = "fix the sink's settings (TLS files, key password) named here"
        return _fail(target, "sink_config", str(exc), fix)
    probe: Callable[[], Awaitable[str]] | None = getattr(sink, "probe", None)
    if probe is None or not asyncio.iscoroutinefunction(probe):
        detail = f"{type(sink).__name__} has no probe: whether it can deliver is unknown"
        return _fail(target, "sink_not_checked", detail, "report this as a bug of o365collector")
    try:
        detail = await asyncio.wait_for(probe(), timeout=limit_secs)
    except ProbeError as exc:
        return _fail(target, exc.problem, str(exc), exc.fix)
    except TimeoutError:
        detail = f"no answer within {limit_secs:g} s"
        fix = "check the receiver's host and port, and that firewalls let this machine through"
        return _fail(target, "sink_unreachable", detail, fix)
    except (O365CollectorError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return _fail(target, "sink_unreachable", detail, "see the detail; fix the sink")
    return Finding(target, PROBE, "pass", detail=redact(detail))


def _fail(target: str, problem: str, detail: str, fix: str) -> Finding:
    return Finding(target, PROBE, "fail", problem, redact(detail), redact(fix))
