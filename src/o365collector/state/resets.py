"""``reset_persistence_auth`` bookkeeping: reset a stream once each time its marker changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog

from o365collector.config.compat.settings import CompatSettings, ResetMarker
from o365collector.config.model import Settings
from o365collector.state.store import ResetMarkers, StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AppliedReset:
    """A stream whose state was cleared because its marker changed from ``previous``."""

    tenant: str
    stream: str
    marker: str
    previous: str | None
    checkpoints_removed: int


def apply_configured_resets(
    settings: Settings, store: StateStore, now: datetime, *, tenant: str | None = None
) -> list[AppliedReset]:
    """Apply the resets ``settings`` asks for (only Devo layouts have any; see apply_resets).

    ``tenant``: only that tenant's (a replica applies them as it takes the tenant).
    """
    if not isinstance(settings, CompatSettings):
        return []
    markers = settings.reset_markers()
    if tenant is not None:
        markers = [m for m in markers if m.tenant == tenant]
    return apply_resets(store, markers, now)


def apply_resets(
    store: StateStore, markers: Iterable[ResetMarker], now: datetime
) -> list[AppliedReset]:
    """Reset each stream whose marker differs from the last one applied, then remember it.

    Must run before the streams start. A marker never applied before counts as changed (a
    stream without state loses nothing). The reset is done before the marker is recorded,
    so a crash in between resets again on the next start rather than not at all.

    Raises:
        StateError: the state cannot be read or written.
    """
    markers = list(markers)
    if not markers:
        return []
    applied = []
    known = store.reset_markers()
    for marker in markers:
        key = (marker.tenant, marker.stream)
        previous = known.get(key)
        if previous == marker.marker:
            continue
        removed = store.reset(marker.tenant, marker.stream)
        store.record_reset_marker(marker.tenant, marker.stream, marker.marker, now)
        known[key] = marker.marker
        applied.append(AppliedReset(marker.tenant, marker.stream, marker.marker, previous, removed))
        first = previous is None and removed == 0
        (log.info if first else log.warning)(
            "reset_persistence_auth recorded for a stream without state."
            if first
            else "State cleared: reset_persistence_auth changed; the stream starts again.",
            tenant=marker.tenant,
            stream=marker.stream,
            parameter=marker.parameter,
            marker=marker.marker,
            previous=previous,
            checkpoints_removed=removed,
        )
    return applied


def applied_markers(store: ResetMarkers) -> dict[tuple[str, str], str]:
    """The last marker applied per (tenant, stream), for ``state show`` and tests.

    Raises:
        StateError: the state cannot be read.
    """
    return store.reset_markers()
