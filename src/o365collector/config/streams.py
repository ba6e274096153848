"""Configured streams: each is its name (a ``str``) carrying its validated options.

A tenant's ``streams`` list takes names or mappings with a ``name``::

    streams:
      - message_trace                      # Graph message trace
      - rws.MailTraffic                    # any report of the catalog, by entity name
      - name: rws.SpoofMailReport
        settle_delay_secs: 90000           # aggregates: deliver a bucket once settled
      - name: rws.MailDetailATP
        poll_interval_secs: 300            # any stream: its own pace and delay, over
        settle_delay_secs: 3600            # `collection`'s (see config/timing.py)
      - name: message_trace_detail         # opt-in: detail of selected rows
        api: graph                         # or rws (MessageTraceDetail)
        statuses: [failed, quarantined, filteredAsSpam]

Because a :class:`ConfiguredStream` *is* its name, code that needs only names (state,
progress, event tagging) uses it as a plain string; code that builds the stream reads
``.options``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)

from o365collector.config.base import Strict
from o365collector.streams.catalog import (
    GRAPH_MESSAGE_TRACE,
    MESSAGE_TRACE_DETAIL,
    RWS_PREFIX,
    ReportSpec,
    listed_reports,
    report_for_stream,
)

AGGREGATE_SETTLE_DEFAULT_SECS = 90_000.0  # seed 004: "requests data with a 25 hours delay"
GRAPH_RETENTION_SECS = 90 * 86400  # the oldest message trace Graph serves

DetailStatus = Literal[
    "delivered", "failed", "pending", "expanded", "quarantined", "filteredAsSpam", "gettingStatus"
]


DEFAULT_DETAIL_STATUSES: tuple[DetailStatus, ...] = ("failed", "quarantined", "filteredAsSpam")


class StreamTiming(Strict):
    """The pace of one stream; each key unset falls back to ``collection`` (config/timing.py).

    - ``poll_interval_secs``: a new window is read once this much has settled.
    - ``settle_delay_secs``: how far behind now the stream's first read of a window ends
      (``fresh``: the live lane; ``fixed_delay``: the only lane; aggregated reports: when a
      bucket is final; detail: how settled a row must be).
    - ``initial_lookback_secs``: where the stream starts when it has no state.
    """

    poll_interval_secs: float | None = Field(None, ge=1)
    settle_delay_secs: float | None = Field(None, ge=0)
    initial_lookback_secs: float | None = Field(None, gt=0, le=GRAPH_RETENTION_SECS)


class GraphTraceOptions(StreamTiming):
    """``message_trace``: its pace; other ``collection`` settings apply."""


class ReportOptions(StreamTiming):
    """``rws.{Report}``: paging and pace."""

    page_size: int = Field(2000, ge=1, le=2000)
    max_window_secs: float | None = Field(None, gt=0)


class DetailOptions(StreamTiming):
    """``message_trace_detail``: which API, which rows, how settled they must be, its pace."""

    api: Literal["graph", "rws"] = "graph"
    statuses: list[DetailStatus] = Field(default_factory=lambda: list(DEFAULT_DETAIL_STATUSES))
    page_size: int = Field(1000, ge=1, le=2000)

    @field_validator("statuses")
    @classmethod
    def _some_statuses(cls, value: list[DetailStatus]) -> list[DetailStatus]:
        if not value:
            raise ValueError("list at least one status, e.g. [failed, quarantined]")
        return value


StreamOptions = GraphTraceOptions | ReportOptions | DetailOptions


class ConfiguredStream(str):
    """A stream name with its options; equal to (and hashed as) the name."""

    options: StreamOptions

    def __new__(cls, name: str, options: StreamOptions) -> ConfiguredStream:
        """Create the stream ``name`` with ``options``."""
        stream = super().__new__(cls, name)
        stream.options = options
        return stream

    @property
    def report(self) -> ReportSpec | None:
        """The catalog entry of an ``rws.`` stream."""
        return report_for_stream(self)


def _stream_names() -> str:
    reports = ", ".join(spec.stream for spec in listed_reports())
    return f"{GRAPH_MESSAGE_TRACE}, {MESSAGE_TRACE_DETAIL}, or one of {reports}"


def _options(name: str, values: dict[str, Any]) -> tuple[str, StreamOptions]:
    if name == GRAPH_MESSAGE_TRACE:
        return name, GraphTraceOptions(**values)
    if name == MESSAGE_TRACE_DETAIL:
        return name, DetailOptions(**values)
    spec = report_for_stream(name) if name.startswith(RWS_PREFIX) else None
    if spec is None:
        raise ValueError(f"unknown stream {name!r}; use {_stream_names()}")
    if spec.per_message:
        raise ValueError(
            f"{spec.name} is read per message: list `{MESSAGE_TRACE_DETAIL}` with `api: rws` "
            "instead"
        )
    return spec.stream, ReportOptions(**values)


def parse_stream(value: Any) -> ConfiguredStream:
    """Validate one entry of ``streams``: a name, or a mapping with ``name`` and options.

    Report names are matched case-insensitively and stored as the catalog spells them.

    Raises:
        ValueError: unknown stream, misplaced option, or an invalid option value.
    """
    if isinstance(value, ConfiguredStream):
        return value
    if isinstance(value, str):
        name, values = value, {}
    elif isinstance(value, dict):
        values = dict(value)
        name = values.pop("name", None)
        if not isinstance(name, str):
            msg = "a stream given as a mapping needs `name`, e.g. name: rws.MailTraffic"
            raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError
    else:
        msg = f"a stream is a name or a mapping with `name`; use {_stream_names()}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError
    try:
        canonical, options = _options(name.strip(), values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"stream {name}: {problems}") from None
    return ConfiguredStream(canonical, options)


def _dump(stream: ConfiguredStream) -> str | dict[str, Any]:
    values = stream.options.model_dump(exclude_defaults=True)
    return {"name": str(stream), **values} if values else str(stream)


StreamEntry = Annotated[
    ConfiguredStream, PlainValidator(parse_stream), PlainSerializer(_dump, return_type=Any)
]


def default_streams() -> list[ConfiguredStream]:
    """The streams of a tenant that lists none: Graph message trace."""
    return [ConfiguredStream(GRAPH_MESSAGE_TRACE, GraphTraceOptions())]


def configured(stream: str) -> ConfiguredStream:
    """``stream`` with its options (defaults when it is a plain name)."""
    return stream if isinstance(stream, ConfiguredStream) else parse_stream(stream)
