"""Sekoia.io sink: ``POST {base_url}/batch`` with the intake key and raw records as JSON text."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.sinks.base import Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import Payload, encode_batch
from o365collector.sinks.httpbase import HttpSinkBase, Request, probe_status_failure
from o365collector.sinks.tls import TlsOptions

DEFAULT_BASE_URL = "https://intake.sekoia.io"
OVERSIZE = "oversize"
AUTH_REASON = "intake key refused: check intake_key"


class SekoiaSink(HttpSinkBase):
    """Ships each record as JSON text in ``{"intake_key", "jsons": [...]}`` requests.

    Sekoia parses records on its side, so the raw vendor record is the default payload.
    An event over ``max_event_bytes`` is refused (``oversize``); requests stay within
    ``batch_max_bytes`` and are sent in order. "Delivered" means a 2xx answer. 429, 5xx
    and network errors answer RETRY for the request that failed and those after it;
    400, 401 and 403 refuse that request's events.
    """

    label = "Sekoia"
    auth_reason = AUTH_REASON

    def __init__(
        self,
        name: str,
        *,
        intake_key: str,
        base_url: str = DEFAULT_BASE_URL,
        tls: TlsOptions | None = None,
        payload: Payload | PayloadKind = "raw",
        batch_max_bytes: int = 9 * 1024 * 1024,
        max_event_bytes: int = 250_000,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        super().__init__(
            name,
            url=base_url.rstrip("/") + "/batch",
            headers={"Content-Type": "application/json"},
            tls=tls,
            payload=payload,
            batch_max_bytes=batch_max_bytes,
            gzip=gzip,
            request_timeout_secs=request_timeout_secs,
            clock=clock,
        )
        self.max_event_bytes = max_event_bytes
        self._head = b'{"intake_key":' + orjson.dumps(intake_key) + b',"jsons":['

    async def probe_with(self, client: httpx.AsyncClient) -> str:
        """``HEAD {base_url}/batch`` without the intake key: DNS, TCP, TLS and an HTTP answer.

        Sekoia documents no request that checks an intake key without ingesting an
        event, so the key is not verified (nor sent). Redirects and 5xx fail.
        """
        response = await self.probe_request(client, "HEAD", self.url, credentials=False)
        what = f"HEAD {self.url}"
        failure = probe_status_failure(response, what, auth_fix=None)
        if failure is not None:
            raise failure
        return (
            f"{what} answered HTTP {response.status_code}{self.tls_note()}: the intake is "
            "reachable; the intake key was NOT verified (Sekoia's intake has no documented "
            "way to check a key without sending an event)"
        )

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """``{"intake_key": …, "jsons": ["<event JSON>", …]}`` bodies within the size limit."""
        bodies, rejected = encode_batch(events, self.payload, stamp)
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
        return [
            Request(
                [items[i][0] for i in group],
                self._head + b",".join(items[i][1] for i in group) + b"]}",
            )
            for group in groups
        ]
