"""Sekoia.io sink: ``POST {base_url}/batch`` with the intake key and raw records as JSON text."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
import structlog

from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, delivered_at, encode_batch
from o365collector.sinks.httpbase import apply_verdict, make_client, maybe_gzip, post
from o365collector.sinks.tls import TlsOptions

log = structlog.get_logger(__name__)

DEFAULT_BASE_URL = "https://intake.sekoia.io"
OVERSIZE = "oversize"
AUTH_REASON = "intake key refused: check intake_key"


class SekoiaSink:
    """Ships each record as JSON text in ``{"intake_key", "jsons": [...]}`` requests.

    Sekoia parses records on its side, so the raw vendor record is the default payload.
    An event over ``max_event_bytes`` is refused (``oversize``); requests stay within
    ``batch_max_bytes`` and are sent in order. "Delivered" means a 2xx answer. 429, 5xx
    and network errors answer RETRY for the request that failed and those after it;
    400, 401 and 403 refuse that request's events.
    """

    def __init__(
        self,
        name: str,
        *,
        intake_key: str,
        base_url: str = DEFAULT_BASE_URL,
        tls: TlsOptions | None = None,
        payload: Payload = "raw",
        batch_max_bytes: int = 9 * 1024 * 1024,
        max_event_bytes: int = 250_000,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        self.name = name
        self.url = base_url.rstrip("/") + "/batch"
        self.payload: Payload = payload
        self.batch_max_bytes = batch_max_bytes
        self.max_event_bytes = max_event_bytes
        self.gzip = gzip
        self._tls = tls or TlsOptions()
        self._timeout = request_timeout_secs
        self._head = b'{"intake_key":' + orjson.dumps(intake_key) + b',"jsons":['
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Create the HTTP client (TLS files are read now)."""
        self._client = make_client(self.name, self._tls, self._timeout)
        log.info("Sekoia sink ready.", sink=self.name, url=self.url, gzip=self.gzip)

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Send the batch in as few requests as the size limit allows, in order."""
        client = self._client
        assert client is not None, "start() first"
        bodies, rejected = encode_batch(events, self.payload, delivered_at())
        outcome = Outcome()
        for index, reason in rejected.items():
            outcome.reject(index, reason)
        items: list[tuple[int, bytes]] = []
        for index, body in enumerate(bodies):
            if body is None:
                continue
            if len(body) > self.max_event_bytes:
                outcome.reject(index, OVERSIZE)
                continue
            items.append((index, orjson.dumps(body.decode("utf-8"))))
        groups = split_by_bytes(
            [len(text) for _, text in items],
            self.batch_max_bytes,
            overhead=len(self._head) + 2,
            separator=1,
        )
        for number, group in enumerate(groups):
            data = self._head + b",".join(items[i][1] for i in group) + b"]}"
            content, extra = maybe_gzip(data, self.gzip)
            headers = {"Content-Type": "application/json", **extra}
            verdict = await post(client, self.url, content, headers, auth_reason=AUTH_REASON)
            if apply_verdict(outcome, verdict, groups, number, lambda i: items[i][0]):
                break
        return outcome.result()

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
