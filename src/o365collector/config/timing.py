"""The pace of each stream: poll interval, settle delay, first lookback, and their keys.

A stream's own ``poll_interval_secs`` / ``settle_delay_secs`` (``tenants[].streams[]``)
win over ``collection``'s; this module is the one place that resolves them, for the
planner (``planning/plan.py``), the start-up checks and ``validate`` / ``state show``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from o365collector.config.streams import (
    AGGREGATE_SETTLE_DEFAULT_SECS,
    DetailOptions,
    ReportOptions,
    configured,
)
from o365collector.streams.catalog import CATALOG

if TYPE_CHECKING:
    from o365collector.config.model import CollectionSettings

STREAM_KEY = "stream"  # ``Effective.key`` of a value the stream entry itself gives


@dataclass(frozen=True, slots=True)
class Effective:
    """A resolved setting: its value, the native key it came from, and whether it was given.

    ``key`` is :data:`STREAM_KEY` for the stream's own option, a ``collection.…`` key, or a
    built-in rule (``report bucket``, ``aggregated-report default``); ``given`` is false
    when nobody set it (the key's default applies).
    """

    value: float
    key: str
    given: bool
    note: str = ""


def poll_interval(stream: str, collection: CollectionSettings) -> Effective:
    """How much must have settled before the stream reads a new window.

    An aggregated report reads whole buckets: it reads at most once per bucket (its new
    data appears once per bucket), more rarely when its interval is longer. No stream
    waits for more than its longest window (:func:`longest_window`): a window longer than
    that is never read in one query.
    """
    entry = configured(stream)
    own = entry.options.poll_interval_secs
    if own is not None:
        found = Effective(own, STREAM_KEY, given=True)
    else:
        given = "poll_interval_secs" in collection.model_fields_set
        found = Effective(collection.poll_interval_secs, "collection.poll_interval_secs", given)
    spec = entry.report
    if spec is not None and spec.aggregated:
        bucket = spec.bucket_secs or 86400.0
        if found.value < bucket:
            return Effective(
                bucket,
                found.key,
                found.given,
                f"{found.value:g} s raised to one {_bucket_name(bucket)} bucket: the report "
                "gains data once per bucket",
            )
    longest = longest_window(stream, collection)
    if found.value > longest:
        return Effective(
            longest,
            found.key,
            found.given,
            f"{found.value:g} s lowered to {longest:g} s: the longest range one query of this "
            "stream may span (the Reporting Web Service times out on longer ones)",
        )
    return found


def longest_window(stream: str, collection: CollectionSettings) -> float:
    """The longest window the stream reads in one query.

    ``collection.max_window_secs`` (Graph: 10 days), and for a report the shorter of its
    ``max_window_secs`` (default: the range the catalog says one RWS query may span); an
    aggregated report reads at least one whole bucket.
    """
    entry = configured(stream)
    longest = collection.max_window_secs
    options = entry.options
    if isinstance(options, DetailOptions):
        if options.api == "rws":
            longest = min(longest, CATALOG["MessageTrace"].max_query_secs)
        return longest
    spec = entry.report
    if spec is None or not isinstance(options, ReportOptions):
        return longest
    longest = min(longest, options.max_window_secs or spec.max_query_secs)
    return max(spec.bucket_secs or 86400.0, longest) if spec.aggregated else longest


def settle_delay(stream: str, collection: CollectionSettings) -> Effective:
    """How far behind now a window ends when the stream first reads it.

    - The stream's ``settle_delay_secs`` when given.
    - Aggregated reports: 90,000 s (seed 004's 25 hours), whatever the mode.
    - Message trace detail: ``collection.horizon_secs`` (rows have their final status).
    - Per-row streams: ``collection.fixed_delay_secs`` in mode ``fixed_delay``,
      ``collection.settle_delay_secs`` (the live lane's) in mode ``fresh``.
    """
    entry = configured(stream)
    own = entry.options.settle_delay_secs
    if own is not None:
        return Effective(own, STREAM_KEY, given=True)
    spec = entry.report
    if spec is not None and spec.aggregated:
        return Effective(AGGREGATE_SETTLE_DEFAULT_SECS, "aggregated-report default", given=False)
    if isinstance(entry.options, DetailOptions):
        return _collection(collection, "horizon_secs")
    if collection.mode == "fixed_delay":
        return _collection(collection, "fixed_delay_secs")
    return _collection(collection, "settle_delay_secs")


def initial_lookback(stream: str, collection: CollectionSettings) -> Effective:
    """Where the stream starts when it has no state: this long before now."""
    own = configured(stream).options.initial_lookback_secs
    if own is not None:
        return Effective(own, STREAM_KEY, given=True)
    return _collection(collection, "initial_lookback_secs")


def timing_problems(stream: str, collection: CollectionSettings) -> list[str]:
    """What is wrong with the stream's own pace under ``collection`` (each with its fix)."""
    entry = configured(stream)
    problems: list[str] = []
    own_poll = entry.options.poll_interval_secs
    if own_poll is not None and own_poll > collection.max_window_secs:
        problems.append(
            f"poll_interval_secs {own_poll:g} exceeds collection.max_window_secs "
            f"({collection.max_window_secs:g}); lower it"
        )
    own_settle = entry.options.settle_delay_secs
    spec = entry.report
    per_row = not isinstance(entry.options, DetailOptions) and not (spec and spec.aggregated)
    if (
        own_settle is not None
        and per_row
        and collection.mode == "fresh"
        and own_settle >= collection.horizon_secs
    ):
        problems.append(
            f"settle_delay_secs {own_settle:g} must be shorter than collection.horizon_secs "
            f"({collection.horizon_secs:g}) in mode fresh (re-sweeps read what follows); "
            "lower it, or set collection.mode: fixed_delay to read each window once, this late"
        )
    return problems


def _collection(collection: CollectionSettings, key: str) -> Effective:
    value = float(getattr(collection, key))
    return Effective(value, f"collection.{key}", key in collection.model_fields_set)


def _bucket_name(seconds: float) -> str:
    if seconds == 3600:
        return "hourly"
    if seconds == 86400:
        return "daily"
    return f"{seconds:g} s"
