"""Elasticsearch/OpenSearch sink: ``_bulk`` ``create`` with the event id as ``_id``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import structlog

from o365collector.event import Event
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import UNENCODABLE, Payload, delivered_at, dumps, payload_object
from o365collector.sinks.httpbase import Fate, make_client, maybe_gzip, post
from o365collector.sinks.tls import TlsOptions

log = structlog.get_logger(__name__)

AUTH_REASON = "credentials refused: check username/password or api_key"


class ElasticsearchSink:
    """Indexes each event with ``create`` and ``_id`` = event id, so replays are harmless.

    Per item: 2xx is delivered; 409 (the document already exists: an earlier attempt
    got through) is delivered too; 429 and 5xx are retried (only those items); any
    other status refuses the item with the server's error type and reason. Whole
    request failures follow the shared HTTP rules (429/5xx/network: RETRY).
    """

    def __init__(
        self,
        name: str,
        *,
        url: str,
        index: str = "o365-{stream}",
        pipeline: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        tls: TlsOptions | None = None,
        payload: Payload = "raw",
        batch_max_bytes: int = 5 * 1024 * 1024,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        self.name = name
        self.url = url.rstrip("/") + "/_bulk"
        self.params = {"pipeline": pipeline} if pipeline else {}
        self.index = index
        self.payload: Payload = payload
        self.batch_max_bytes = batch_max_bytes
        self.gzip = gzip
        self._auth: httpx.Auth | None = None
        self._headers = {"Content-Type": "application/x-ndjson"}
        if username is not None and password is not None:
            self._auth = httpx.BasicAuth(username, password)
        if api_key is not None:
            self._headers["Authorization"] = f"ApiKey {api_key}"
        self._tls = tls or TlsOptions()
        self._timeout = request_timeout_secs
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Create the HTTP client (TLS files are read now)."""
        self._client = make_client(self.name, self._tls, self._timeout)
        log.info("Elasticsearch sink ready.", sink=self.name, url=self.url, index=self.index)

    def index_for(self, event: Event) -> str:
        """The target index: the template with ``{stream}`` and ``{tenant}`` filled in."""
        return (
            self.index.replace("{stream}", event.stream).replace("{tenant}", event.tenant).lower()
        )

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Bulk-create the batch in size-bounded requests and read every item's status."""
        client = self._client
        assert client is not None, "start() first"
        stamp = delivered_at()
        outcome = Outcome()
        items: list[tuple[int, bytes]] = []
        for index, event in enumerate(events):
            try:
                source = dumps(payload_object(event, self.payload, stamp))
            except ValueError:
                outcome.reject(index, UNENCODABLE)
                continue
            action = dumps({"create": {"_index": self.index_for(event), "_id": event.event_id}})
            items.append((index, action + b"\n" + source + b"\n"))
        groups = split_by_bytes([len(b) for _, b in items], self.batch_max_bytes)
        for number, group in enumerate(groups):
            indexes = [items[i][0] for i in group]
            content, extra = maybe_gzip(b"".join(items[i][1] for i in group), self.gzip)
            url = str(httpx.URL(self.url, params=self.params))
            verdict = await post(
                client,
                url,
                content,
                {**self._headers, **extra},
                auth_reason=AUTH_REASON,
                auth=self._auth,
            )
            if verdict.fate is Fate.RETRY:
                unsent = [items[i][0] for g in groups[number:] for i in g]
                outcome.retry(unsent, verdict.reason, verdict.retry_after_secs)
                break
            if verdict.fate is Fate.REJECT or verdict.response is None:
                for index in indexes:
                    outcome.reject(index, verdict.reason)
                continue
            _read_items(outcome, indexes, verdict.response)
        return outcome.result()

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _read_items(outcome: Outcome, indexes: list[int], response: httpx.Response) -> None:
    """Settle each event from its ``_bulk`` item; an unreadable answer retries them all."""
    try:
        body: Any = response.json()
    except ValueError:
        outcome.retry(indexes, "_bulk answered with something that is not JSON")
        return
    results = body.get("items") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != len(indexes):
        outcome.retry(indexes, "_bulk answer does not list one item per document")
        return
    if body.get("errors") is False:
        return
    for index, item in zip(indexes, results, strict=True):
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
        status = result.get("status", 0) if isinstance(result, dict) else 0
        if not isinstance(status, int):
            status = 0
        if 200 <= status < 300 or status == 409:
            continue
        error = result.get("error") if isinstance(result, dict) else None
        if isinstance(error, dict):
            detail = f"{error.get('type', 'error')}: {str(error.get('reason', ''))[:200]}"
        else:
            detail = str(error or "no detail")
        if status == 429 or status >= 500 or status == 0:
            outcome.retry([index], f"_bulk item {status} {detail}")
        else:
            outcome.reject(index, f"{status} {detail}")
