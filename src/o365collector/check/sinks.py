"""Sink probes: can the collector write where each sink delivers?"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from o365collector.check.model import Finding, Report
from o365collector.config.model import Settings
from o365collector.config.sinks import (
    JsonlSinkSettings,
    SinkSettings,
    StdoutSinkSettings,
    sink_name,
)
from o365collector.errors import O365CollectorError
from o365collector.observability.redact import redact
from o365collector.sinks.factory import build_sink


async def check_sinks(settings: Settings, report: Report, max_wait_secs: float) -> None:
    """Add one finding per configured sink to ``report``; nothing raises.

    A sink object that has an async ``healthcheck()`` is asked to reach its receiver (TLS
    handshake, authentication): it returns a short description, or raises an
    O365CollectorError (or OSError) whose message names the fix. Others are reported
    "not checked".
    """
    for index, sink_settings in enumerate(settings.sinks):
        target = f"sink {sink_name(sink_settings)}"
        if isinstance(sink_settings, JsonlSinkSettings):
            report.add(_jsonl(target, sink_settings.path))
            continue
        if isinstance(sink_settings, StdoutSinkSettings):
            report.add(Finding(target, "sink", "pass", detail="writes to standard output"))
            continue
        report.add(await _health(target, sink_settings, index, max_wait_secs))


def _jsonl(target: str, path: Path) -> Finding:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == path and not path.is_file():
        detail = f"{path} exists and is not a file"
        return Finding(target, "sink", "fail", "sink_unwritable", detail, "give a file path")
    mode = os.W_OK if existing == path else os.W_OK | os.X_OK
    if existing.exists() and os.access(existing, mode) and (existing == path or existing.is_dir()):
        return Finding(target, "sink", "pass", detail=f"can write {path}")
    return Finding(
        target,
        "sink",
        "fail",
        "sink_unwritable",
        f"cannot write {path} ({existing} is not writable by this user)",
        f"create {path.parent} and let the collector's user write to it, or change the path",
    )


async def _health(
    target: str, sink_settings: SinkSettings, index: int, max_wait_secs: float
) -> Finding:
    try:
        sink = build_sink(sink_settings)
    except O365CollectorError as exc:
        return Finding(target, "sink", "fail", "sink_config", redact(str(exc)), "fix the sink")
    health = getattr(sink, "healthcheck", None)
    if health is None or not asyncio.iscoroutinefunction(health):
        return Finding(target, "sink", "skip", detail="not checked: no health check yet")
    try:
        detail = await asyncio.wait_for(health(), timeout=max(1.0, max_wait_secs))
    except (O365CollectorError, OSError, TimeoutError) as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")
        return Finding(
            target, "sink", "fail", "sink_unreachable", reason, "see the detail; fix the sink"
        )
    finally:
        with contextlib.suppress(O365CollectorError, OSError):
            await sink.close()
    return Finding(target, "sink", "pass", detail=redact(str(detail or "reached")))
