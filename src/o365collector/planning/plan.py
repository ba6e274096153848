"""How each configured stream is read: its lanes, window limits and retention.

One :class:`StreamPlan` per stream, built from the catalog and the settings by
:func:`plan_for`; the pipeline runs it, ``backfill`` checks a range against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from o365collector.config.model import CollectionSettings
from o365collector.config.streams import (
    GRAPH_RETENTION_SECS,
    ConfiguredStream,
    DetailOptions,
    ReportOptions,
    configured,
)
from o365collector.config.timing import (
    initial_lookback,
    longest_window,
    poll_interval,
    settle_delay,
)
from o365collector.planning.lanes import (
    BandLane,
    Priority,
    Tier,
    WatermarkLane,
    build_lanes,
    final_age_secs,
)
from o365collector.streams.catalog import CATALOG, ReportSpec

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """How a stream is read: its lanes and the limits of its API."""

    lanes: list[WatermarkLane | BandLane]
    initial_lookback_secs: float
    horizon_secs: float
    retention_secs: float
    max_window_secs: float
    unavailable_pause_secs: float = 30.0

    @property
    def final_age_secs(self) -> float:
        """How old a window is when ``final`` reads it; no lane reads it after that."""
        return final_age_secs(self.lanes, self.horizon_secs)

    @property
    def remember_secs(self) -> float:
        """How long after a window's end its facts are kept: ``final``'s age plus a day.

        The day covers a band sweep still running when ``final`` reads the same window.
        """
        return self.final_age_secs + 86400


def plan_for(stream: ConfiguredStream, collection: CollectionSettings) -> StreamPlan:
    """How ``stream`` is read.

    Its poll interval and settle delay are the stream's own or ``collection``'s
    (:mod:`o365collector.config.timing`).

    - Graph message trace and per-row reports: the lanes of ``collection`` (live,
      re-sweeps, final; or one lane at the fixed delay), with the report's retention and
      query length.
    - Aggregated reports: one lane reading each whole bucket once it has settled
      (``settle_delay_secs``, default 90,000 s as in seed 004): buckets are final then,
      and each is read by exactly one window.
    - Message trace detail: one lane, at ``Priority.DETAIL``, over windows settled for
      ``settle_delay_secs`` (default ``collection.horizon_secs``), so each row's final
      status is known and its detail is fetched once.
    """
    options = stream.options
    spec = stream.report
    poll = poll_interval(stream, collection).value
    settle = settle_delay(stream, collection).value
    lookback = initial_lookback(stream, collection).value
    longest = longest_window(stream, collection)
    if isinstance(options, DetailOptions):
        return _detail_plan(options, (poll, settle, lookback, longest))
    if spec is not None and isinstance(options, ReportOptions) and spec.aggregated:
        return _settled_plan(spec, (poll, settle, lookback, longest))
    retention = float(GRAPH_RETENTION_SECS)
    if spec is not None and isinstance(options, ReportOptions):
        retention = spec.retention_secs
    return lanes_plan(
        collection,
        poll_interval_secs=poll,
        settle_delay_secs=settle,
        initial_lookback_secs=lookback,
        retention_secs=retention,
        max_window_secs=longest,
    )


def lanes_plan(
    collection: CollectionSettings,
    *,
    poll_interval_secs: float,
    settle_delay_secs: float,
    initial_lookback_secs: float,
    retention_secs: float,
    max_window_secs: float,
) -> StreamPlan:
    """The lanes of ``collection`` (``fresh`` or ``fixed_delay``) for a per-row stream.

    ``settle_delay_secs`` is the live lane's delay (``fresh``) or the fixed delay.
    """
    fixed = collection.mode == "fixed_delay"
    horizon = settle_delay_secs if fixed else collection.horizon_secs
    lanes = build_lanes(
        mode=collection.mode,
        settle_delay_secs=settle_delay_secs,
        poll_interval_secs=poll_interval_secs,
        horizon_secs=horizon,
        final_every_secs=poll_interval_secs if fixed else collection.final_every_secs,
        tiers=[Tier(t.max_age_secs, t.every_secs) for t in collection.resweeps],
    )
    return StreamPlan(
        lanes=lanes,
        initial_lookback_secs=initial_lookback_secs,
        horizon_secs=horizon,
        retention_secs=retention_secs,
        max_window_secs=max_window_secs,
    )


def _settled_plan(spec: ReportSpec, timing: tuple[float, float, float, float]) -> StreamPlan:
    poll, delay, lookback, longest = timing
    bucket = spec.bucket_secs or _DAY
    lanes = build_lanes(
        mode="fixed_delay",
        settle_delay_secs=delay,
        poll_interval_secs=poll,
        horizon_secs=delay,
        final_every_secs=poll,  # at least one bucket (config/timing.py)
        tiers=[],
    )
    return StreamPlan(
        lanes=lanes,
        initial_lookback_secs=lookback,
        horizon_secs=delay,
        # a window's first bucket starts up to one bucket before the window: keep it inside
        retention_secs=spec.retention_secs - bucket,
        max_window_secs=longest,
    )


def _detail_plan(options: DetailOptions, timing: tuple[float, float, float, float]) -> StreamPlan:
    poll, delay, lookback, longest = timing
    rws = options.api == "rws"
    lane = WatermarkLane("final", Priority.DETAIL, delay, poll)
    return StreamPlan(
        lanes=[lane],
        initial_lookback_secs=lookback,
        horizon_secs=max(delay, 3600.0),
        retention_secs=CATALOG["MessageTrace"].retention_secs if rws else GRAPH_RETENTION_SECS,
        max_window_secs=longest,
    )


def stream_plan(collection: CollectionSettings, stream: str = "message_trace") -> StreamPlan:
    """The lanes and limits of the stream named ``stream`` under ``collection``.

    Graph message trace and per-row reports use the lanes; aggregated reports one settled
    lane; message trace detail one lane at ``Priority.DETAIL`` (see :func:`plan_for`).
    """
    return plan_for(configured(stream), collection)
