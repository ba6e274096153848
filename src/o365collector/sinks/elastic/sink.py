"""Elasticsearch/OpenSearch sink: ``_bulk`` ``create`` with the event id as ``_id``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from o365collector.event import Event
from o365collector.sinks.base import Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.encode import UNENCODABLE, Payload, dumps, payload_object
from o365collector.sinks.httpbase import DeliveryVerdict, Fate, HttpSinkBase, Request
from o365collector.sinks.tls import TlsOptions

AUTH_REASON = "credentials refused: check username/password or api_key"


class ElasticsearchSink(HttpSinkBase):
    """Indexes each event with ``create`` and ``_id`` = event id, so replays are harmless.

    Per item: 2xx is delivered; 409 (the document already exists: an earlier attempt
    got through) is delivered too; 429 and 5xx are retried (only those items); any
    other status refuses the item with the server's error type and reason. Whole
    request failures follow the shared HTTP rules (429/5xx/network: RETRY).
    """

    label = "Elasticsearch"
    auth_reason = AUTH_REASON

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
        headers = {"Content-Type": "application/x-ndjson"}
        auth = None
        if username is not None and password is not None:
            auth = httpx.BasicAuth(username, password)
        if api_key is not None:
            headers["Authorization"] = f"ApiKey {api_key}"
        params = {"pipeline": pipeline} if pipeline else {}
        super().__init__(
            name,
            url=url.rstrip("/") + "/_bulk",
            headers=headers,
            tls=tls,
            payload=payload,
            batch_max_bytes=batch_max_bytes,
            gzip=gzip,
            request_timeout_secs=request_timeout_secs,
            auth=auth,
            params=params,
        )
        self.params = params
        self.index = index

    def ready_fields(self) -> dict[str, Any]:
        """The index template."""
        return {"index": self.index}

    def index_for(self, event: Event) -> str:
        """The target index: the template with ``{stream}`` and ``{tenant}`` filled in."""
        return (
            self.index.replace("{stream}", event.stream).replace("{tenant}", event.tenant).lower()
        )

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """``_bulk`` bodies (a ``create`` line and the source line per event) within the limit."""
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
        return [
            Request([items[i][0] for i in group], b"".join(items[i][1] for i in group))
            for group in groups
        ]

    def settle(self, outcome: Outcome, request: Request, verdict: DeliveryVerdict) -> None:
        """A refused request refuses its events; an accepted one is read item by item."""
        if verdict.fate is Fate.REJECT or verdict.response is None:
            for index in request.indexes:
                outcome.reject(index, verdict.reason)
            return
        _read_items(outcome, request.indexes, verdict.response)


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
