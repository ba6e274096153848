"""Generic HTTP sink: batches as NDJSON or a JSON array, custom headers, basic/bearer auth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import httpx
import structlog

from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, delivered_at, encode_batch
from o365collector.sinks.httpbase import apply_verdict, make_client, maybe_gzip, post
from o365collector.sinks.tls import TlsOptions

log = structlog.get_logger(__name__)

AUTH_REASON = "credentials refused: check token or username/password"
Format = Literal["ndjson", "json_array"]


class HttpSink:
    """Sends each request as NDJSON (one payload per line) or as one JSON array.

    Requests stay within ``batch_max_bytes`` (a single larger event goes alone) and are
    sent in order. "Delivered" means a 2xx answer; 408, 429, 5xx and network errors
    answer RETRY for the failed request and those after it; other 4xx refuse the
    request's events.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str,
        method: str = "POST",
        format: Format = "ndjson",
        headers: Mapping[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls: TlsOptions | None = None,
        payload: Payload = "raw",
        batch_max_bytes: int = 1024 * 1024,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        self.name = name
        self.url = url
        self.method = method
        self.format: Format = format
        content_type = "application/x-ndjson" if format == "ndjson" else "application/json"
        self._headers = {"Content-Type": content_type, **(headers or {})}
        self._auth: httpx.Auth | None = None
        if username is not None and password is not None:
            self._auth = httpx.BasicAuth(username, password)
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self.payload: Payload = payload
        self.batch_max_bytes = batch_max_bytes
        self.gzip = gzip
        self._tls = tls or TlsOptions()
        self._timeout = request_timeout_secs
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Create the HTTP client (TLS files are read now)."""
        self._client = make_client(self.name, self._tls, self._timeout)
        log.info("HTTP sink ready.", sink=self.name, url=self.url, format=self.format)

    def body(self, payloads: Sequence[bytes]) -> bytes:
        """The request body of ``payloads`` in the configured format."""
        if self.format == "ndjson":
            return b"".join(p + b"\n" for p in payloads)
        return b"[" + b",".join(payloads) + b"]"

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Send the batch in size-bounded requests, in order."""
        client = self._client
        assert client is not None, "start() first"
        bodies, rejected = encode_batch(events, self.payload, delivered_at())
        outcome = Outcome()
        for index, reason in rejected.items():
            outcome.reject(index, reason)
        items = [(i, b) for i, b in enumerate(bodies) if b is not None]
        ndjson = self.format == "ndjson"
        groups = split_by_bytes(
            [len(b) + (1 if ndjson else 0) for _, b in items],
            self.batch_max_bytes,
            overhead=0 if ndjson else 2,
            separator=0 if ndjson else 1,
        )
        for number, group in enumerate(groups):
            content, extra = maybe_gzip(self.body([items[i][1] for i in group]), self.gzip)
            verdict = await post(
                client,
                self.url,
                content,
                {**self._headers, **extra},
                auth_reason=AUTH_REASON,
                method=self.method,
                auth=self._auth,
            )
            if apply_verdict(outcome, verdict, groups, number, lambda i: items[i][0]):
                break
        return outcome.result()

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
