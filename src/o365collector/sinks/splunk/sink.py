"""Splunk HEC sink: concatenated JSON envelopes to ``/services/collector/event``, optional ack."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from o365collector.clock import Clock
from o365collector.config.sinks import NORMALIZED, PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, dumps, record_time, refusal, stream_slug
from o365collector.sinks.httpbase import (
    DeliveryVerdict,
    Fate,
    HttpSinkBase,
    Request,
    post,
    probe_status_failure,
)
from o365collector.sinks.probe import ProbeError
from o365collector.sinks.tls import TlsOptions

AUTH_REASON = "HEC token refused: check token"
NOT_ACKED = "not acknowledged by the indexers within ack_timeout_secs"
HEC_CREDENTIALS_ADVICE = (
    "check token: copy the Token Value of an enabled HTTP Event Collector input "
    "(Settings → Data inputs → HTTP Event Collector), and that HEC is enabled"
)
NO_DATA = 5  # HEC answer code for a request without events: the token was accepted
CHANNEL_CODES = (10, 11)  # data channel missing / invalid: the token has indexer ack on


def default_sourcetype(stream: str, payload: PayloadKind = "raw") -> str:
    """``message_trace`` → ``o365:reporting:messagetrace``; ``:ecs`` / ``:ocsf`` appended for
    normalized payloads (``o365:reporting:messagetrace:ecs``), whose fields differ.

    ``raw`` and ``envelope`` share the record's sourcetype (the envelope holds the record).
    """
    base = f"o365:reporting:{stream_slug(stream)}"
    return f"{base}:{payload}" if payload in NORMALIZED else base


class SplunkHecSink(HttpSinkBase):
    """Posts batches of ``{"time", "source", "sourcetype", "index", "host", "event"}``.

    ``time`` is the record's receive time when it has one. Without ``ack``, a 200
    answer means delivered. With ``ack``, requests carry a channel and each request's
    events are delivered only once ``/services/collector/ack`` reports its ackId as
    indexed; ackIds still unconfirmed after ``ack_timeout_secs`` answer RETRY (Splunk
    may then index those events twice). A 400 naming an ``invalid-event-number``
    refuses that event, counts the ones before it as delivered, and retries the rest.
    """

    label = "Splunk HEC"
    auth_reason = AUTH_REASON

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
        payload: Payload | PayloadKind = "raw",
        batch_max_bytes: int = 1_000_000,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
        ack: bool = False,
        channel: str | None = None,
        ack_poll_interval_secs: float = 2.0,
        ack_timeout_secs: float = 300.0,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        base = url.rstrip("/")
        self.channel = channel or str(uuid.uuid4())
        headers = {"Authorization": f"Splunk {token}", "Content-Type": "application/json"}
        if ack:
            headers["X-Splunk-Request-Channel"] = self.channel
        super().__init__(
            name,
            url=base + "/services/collector/event",
            headers=headers,
            tls=tls,
            payload=payload,
            batch_max_bytes=batch_max_bytes,
            gzip=gzip,
            request_timeout_secs=request_timeout_secs,
            clock=clock,
        )
        self.event_url = self.url
        self.ack_url = base + "/services/collector/ack"
        self.index = index
        self.sourcetype = sourcetype
        self.source = source
        self.host = host
        self.ack = ack
        self.ack_poll_interval_secs = ack_poll_interval_secs
        self.ack_timeout_secs = ack_timeout_secs

    async def probe_with(self, client: httpx.AsyncClient) -> str:
        """``GET /services/collector/health``, then an empty ``POST`` to the event endpoint.

        HEC answers an empty request with 400 "No data" (code 5) once the token is
        accepted, and 401/403 when it is not: nothing is indexed either way.
        """
        base = self.ack_url.removesuffix("/services/collector/ack")
        health_url = base + "/services/collector/health"
        health = await self.probe_request(client, "GET", health_url, credentials=False)
        failure = probe_status_failure(health, f"GET {health_url}", auth_fix=None)
        if failure is not None:
            raise failure
        healthy = (
            "HEC is healthy"
            if health.status_code == 200
            else f"the health endpoint answered HTTP {health.status_code}"
        )
        response = await self.probe_request(client, "POST", self.event_url, content=b"")
        what = f"an empty POST to {self.event_url}"
        status = response.status_code
        detail = _json(response)
        text, code = detail.get("text"), detail.get("code")
        said = f"HTTP {status} {text!r} (code {code})" if text else f"HTTP {status}"
        if status in (401, 403):
            fix = "enable the token in Splunk" if code == 1 else HEC_CREDENTIALS_ADVICE
            raise ProbeError(f"{what} answered {said}: token refused", fix, "sink_credentials")
        if status == 400 and code in CHANNEL_CODES:
            fix = "the token has indexer acknowledgement on: set ack: true on this sink"
            raise ProbeError(f"{what} answered {said}", fix, "sink_config")
        if status == 404:
            fix = "set url to the HEC base URL (https://<host>:8088), without /services/collector"
            raise ProbeError(f"{what} answered HTTP 404", fix, "sink_url")
        failure = probe_status_failure(response, what, auth_fix=HEC_CREDENTIALS_ADVICE)
        if failure is not None:
            raise failure
        if (status == 400 and code == NO_DATA) or 200 <= status < 300:
            return (
                f"{healthy}{self.tls_note()}; the token was accepted ({what} answered "
                f"{said}; nothing was indexed)"
            )
        fix = "check that url points to a Splunk HTTP Event Collector"
        raise ProbeError(f"{what} answered {said}", fix, "sink_url")

    def ready_fields(self) -> dict[str, Any]:
        """Whether indexer acknowledgement is on."""
        return {"ack": self.ack}

    def envelope(self, event: Event, stamp: str) -> dict[str, Any]:
        """The HEC envelope of one event; ``event`` is the sink's payload (ECS/OCSF too).

        Raises:
            ValueError: the payload cannot be mapped (see ``encode.refusal``).
        """
        out: dict[str, Any] = {}
        when = record_time(event.record)
        if when is not None:
            out["time"] = when
        if self.host:
            out["host"] = self.host
        out["source"] = self.source
        out["sourcetype"] = self.sourcetype or default_sourcetype(event.stream, self.payload.kind)
        if self.index:
            out["index"] = self.index
        out["event"] = self.payload.object(event, stamp)
        return out

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """Concatenated envelopes (one per line) within the size limit."""
        items: list[tuple[int, bytes]] = []
        for index, event in enumerate(events):
            try:
                items.append((index, dumps(self.envelope(event, stamp))))
            except ValueError as exc:
                outcome.reject(index, refusal(exc))
        groups = split_by_bytes([len(b) for _, b in items], self.batch_max_bytes, separator=1)
        return [
            Request([items[i][0] for i in group], b"\n".join(items[i][1] for i in group))
            for group in groups
        ]

    def settle(self, outcome: Outcome, request: Request, verdict: DeliveryVerdict) -> None:
        """REJECT: see :func:`_reject_group`; with ack, an OK must carry an ackId."""
        if verdict.fate is Fate.REJECT:
            _reject_group(outcome, request.indexes, verdict)
        elif self.ack and _ack_id(verdict) is None:
            outcome.retry(
                request.indexes, "HEC answered without an ackId; is ack enabled on the token?"
            )

    async def finish(
        self,
        client: httpx.AsyncClient,
        outcome: Outcome,
        accepted: list[tuple[Request, DeliveryVerdict]],
    ) -> None:
        """With ack: wait for the indexers to confirm each accepted request's ackId."""
        if not self.ack:
            return
        waiting: dict[int, list[int]] = {}
        for request, verdict in accepted:
            ack_id = _ack_id(verdict)
            if ack_id is not None:
                waiting[ack_id] = request.indexes
        if waiting:
            for group in (await self._await_acks(client, waiting)).values():
                outcome.retry(group, NOT_ACKED)

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


def _reject_group(outcome: Outcome, group: list[int], verdict: DeliveryVerdict) -> None:
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


def _ack_id(verdict: DeliveryVerdict) -> int | None:
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
