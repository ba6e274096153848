"""Generic HTTP sink: batches as NDJSON or a JSON array, custom headers, basic/bearer auth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, encode_batch
from o365collector.sinks.httpbase import HttpSinkBase, Request, probe_status_failure
from o365collector.sinks.tls import TlsOptions

AUTH_REASON = "credentials refused: check token or username/password"
AUTH_FIX = (
    "check token, or username and password (or the Authorization header in headers); "
    "set them if the receiver requires credentials"
)
Format = Literal["ndjson", "json_array"]


class HttpSink(HttpSinkBase):
    """Sends each request as NDJSON (one payload per line) or as one JSON array.

    Requests stay within ``batch_max_bytes`` (a single larger event goes alone) and are
    sent in order. "Delivered" means a 2xx answer; 408, 429, 5xx and network errors
    answer RETRY for the failed request and those after it; other 4xx refuse the
    request's events.
    """

    label = "HTTP"
    auth_reason = AUTH_REASON

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
        payload: Payload | PayloadKind = "raw",
        batch_max_bytes: int = 1024 * 1024,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        content_type = "application/x-ndjson" if format == "ndjson" else "application/json"
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        auth = None
        if username is not None and password is not None:
            auth = httpx.BasicAuth(username, password)
        super().__init__(
            name,
            url=url,
            headers=all_headers,
            tls=tls,
            payload=payload,
            batch_max_bytes=batch_max_bytes,
            gzip=gzip,
            request_timeout_secs=request_timeout_secs,
            clock=clock,
            method=method,
            auth=auth,
        )
        self.format: Format = format

    async def probe_with(self, client: httpx.AsyncClient) -> str:
        """``HEAD`` the URL with the sink's headers and credentials; nothing is delivered.

        401/403 fail (credentials), as do redirects and 5xx; any other answer (405 or
        404 from a POST-only route included) shows the receiver is reachable. Whether it
        takes the ``method`` and body is only known at the first delivery.
        """
        response = await self.probe_request(client, "HEAD", self.url)
        what = f"HEAD {self.url}"
        failure = probe_status_failure(response, what, auth_fix=AUTH_FIX)
        if failure is not None:
            raise failure
        return (
            f"{what} answered HTTP {response.status_code}{self.tls_note()}: the receiver is "
            f"reachable and did not refuse the credentials; whether it accepts {self.method} "
            "deliveries shows at the first batch"
        )

    def ready_fields(self) -> dict[str, Any]:
        """The body format."""
        return {"format": self.format}

    def body(self, payloads: Sequence[bytes]) -> bytes:
        """The request body of ``payloads`` in the configured format."""
        if self.format == "ndjson":
            return b"".join(p + b"\n" for p in payloads)
        return b"[" + b",".join(payloads) + b"]"

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """NDJSON or JSON-array bodies within the size limit."""
        bodies, rejected = encode_batch(events, self.payload, stamp)
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
        return [
            Request([items[i][0] for i in group], self.body([items[i][1] for i in group]))
            for group in groups
        ]
