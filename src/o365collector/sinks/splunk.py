"""Splunk HEC sink: concatenated JSON envelopes to ``/services/collector/event``, optional ack."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import structlog

from o365collector.clock import Clock
from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import (
    UNENCODABLE,
    Payload,
    delivered_at,
    dumps,
    payload_object,
    record_time,
    stream_slug,
)
from o365collector.sinks.httpbase import Fate, Verdict, make_client, maybe_gzip, post
from o365collector.sinks.tls import TlsOptions

log = structlog.get_logger(__name__)

AUTH_REASON = "HEC token refused: check token"
NOT_ACKED = "not acknowledged by the indexers within ack_timeout_secs"


def default_sourcetype(stream: str) -> str:
    """``message_trace`` → ``o365:reporting:messagetrace``."""
    return f"o365:reporting:{stream_slug(stream)}"


class SplunkHecSink:
    """Posts batches of ``{"time", "source", "sourcetype", "index", "host", "event"}``.

    ``time`` is the record's receive time when it has one. Without ``ack``, a 200
    answer means delivered. With ``ack``, requests carry a channel and each request's
    events are delivered only once ``/services/collector/ack`` reports its ackId as
    indexed; ackIds still unconfirmed after ``ack_timeout_secs`` answer RETRY (Splunk
    may then index those events twice). A 400 naming an ``invalid-event-number``
    refuses that event, counts the ones before it as delivered, and retries the rest.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        url: str,
        token: str,
        index: str | None = None,
        sourcetype: str | None = None,
        source: str = "o365collector",
        host: str | None = None,
        tls: TlsOptions | None = None,
        payload: Payload = "raw",
        batch_max_bytes: int = 1_000_000,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
        ack: bool = False,
        channel: str | None = None,
        ack_poll_interval_secs: float = 2.0,
        ack_timeout_secs: float = 300.0,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        self.name = name
        self.clock = clock
        base = url.rstrip("/")
        self.event_url = base + "/services/collector/event"
        self.ack_url = base + "/services/collector/ack"
        self.index = index
        self.sourcetype = sourcetype
        self.source = source
        self.host = host
        self.payload: Payload = payload
        self.batch_max_bytes = batch_max_bytes
        self.gzip = gzip
        self.ack = ack
        self.channel = channel or str(uuid.uuid4())
        self.ack_poll_interval_secs = ack_poll_interval_secs
        self.ack_timeout_secs = ack_timeout_secs
        self._tls = tls or TlsOptions()
        self._timeout = request_timeout_secs
        self._headers = {"Authorization": f"Splunk {token}", "Content-Type": "application/json"}
        if ack:
            self._headers["X-Splunk-Request-Channel"] = self.channel
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Create the HTTP client (TLS files are read now)."""
        self._client = make_client(self.name, self._tls, self._timeout)
        log.info("Splunk HEC sink ready.", sink=self.name, url=self.event_url, ack=self.ack)

    def envelope(self, event: Event, stamp: str) -> dict[str, Any]:
        """The HEC envelope of one event."""
        out: dict[str, Any] = {}
        when = record_time(event.record)
        if when is not None:
            out["time"] = when
        if self.host:
            out["host"] = self.host
        out["source"] = self.source
        out["sourcetype"] = self.sourcetype or default_sourcetype(event.stream)
        if self.index:
            out["index"] = self.index
        out["event"] = payload_object(event, self.payload, stamp)
        return out

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Post the batch in size-bounded requests, in order; then wait for acks if enabled."""
        client = self._client
        assert client is not None, "start() first"
        stamp = delivered_at()
        outcome = Outcome()
        items: list[tuple[int, bytes]] = []
        for index, event in enumerate(events):
            try:
                items.append((index, dumps(self.envelope(event, stamp))))
            except ValueError:
                outcome.reject(index, UNENCODABLE)
        groups = [
            [items[i][0] for i in g]
            for g in split_by_bytes([len(b) for _, b in items], self.batch_max_bytes, separator=1)
        ]
        bodies = dict(items)
        waiting: dict[int, list[int]] = {}
        for number, group in enumerate(groups):
            content, extra = maybe_gzip(b"\n".join(bodies[i] for i in group), self.gzip)
            verdict = await post(
                client, self.event_url, content, {**self._headers, **extra}, auth_reason=AUTH_REASON
            )
            if verdict.fate is Fate.RETRY:
                outcome.retry([i for g in groups[number:] for i in g], verdict.reason,
                              verdict.retry_after_secs)  # fmt: skip
                break
            if verdict.fate is Fate.REJECT:
                _reject_group(outcome, group, verdict)
                continue
            ack_id = _ack_id(verdict) if self.ack else None
            if self.ack and ack_id is None:
                outcome.retry(group, "HEC answered without an ackId; is ack enabled on the token?")
            elif ack_id is not None:
                waiting[ack_id] = group
        if waiting:
            for group in (await self._await_acks(client, waiting)).values():
                outcome.retry(group, NOT_ACKED)
        return outcome.result()

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _await_acks(
        self, client: httpx.AsyncClient, waiting: dict[int, list[int]]
    ) -> dict[int, list[int]]:
        """Poll until every ackId is confirmed or the timeout passes; return the unconfirmed."""
        deadline = self.clock.monotonic() + self.ack_timeout_secs
        while waiting:
            body = orjson.dumps({"acks": sorted(waiting)})
            verdict = await post(client, self.ack_url, body, self._headers, auth_reason=AUTH_REASON)
            if verdict.fate is Fate.OK and verdict.response is not None:
                for key, done in _acks(verdict.response).items():
                    if done:
                        waiting.pop(key, None)
            if not waiting or self.clock.monotonic() >= deadline:
                break
            await self.clock.sleep(self.ack_poll_interval_secs)
        return waiting


def _reject_group(outcome: Outcome, group: list[int], verdict: Verdict) -> None:
    """Refuse a group; with ``invalid-event-number`` only that event, retrying those after."""
    response = verdict.response
    detail = _json(response) if response is not None else {}
    text = detail.get("text")
    reason = verdict.reason
    if isinstance(text, str) and response is not None and response.status_code not in (401, 403):
        reason = f"HTTP {response.status_code}: {text} (code {detail.get('code')})"
    bad = detail.get("invalid-event-number")
    if isinstance(bad, int) and 0 <= bad < len(group):
        outcome.reject(group[bad], reason)
        if group[bad + 1 :]:
            outcome.retry(group[bad + 1 :], f"resending events after refused event ({text})")
        return
    for index in group:
        outcome.reject(index, reason)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _ack_id(verdict: Verdict) -> int | None:
    if verdict.response is None:
        return None
    value = _json(verdict.response).get("ackId")
    return value if isinstance(value, int) else None


def _acks(response: httpx.Response) -> dict[int, bool]:
    acks = _json(response).get("acks")
    if not isinstance(acks, dict):
        return {}
    out: dict[int, bool] = {}
    for key, value in acks.items():
        try:
            out[int(key)] = value is True
        except ValueError:
            continue
    return out
