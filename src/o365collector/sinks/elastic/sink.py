"""Elasticsearch/OpenSearch sink: ``_bulk`` ``create`` with the event id as ``_id``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import structlog

from o365collector.clock import Clock
from o365collector.config.sinks import PayloadKind
from o365collector.event import Event
from o365collector.observability.redact import redact
from o365collector.sinks.base import Outcome
from o365collector.sinks.batching import split_by_bytes
from o365collector.sinks.elastic.template import (
    DATASET_PREFIX,
    TEMPLATE_NAME,
    data_stream,
    index_template,
)
from o365collector.sinks.encode import Payload, dumps, record_time, refusal
from o365collector.sinks.httpbase import (
    DeliveryVerdict,
    Fate,
    HttpSinkBase,
    Request,
    excerpt,
    probe_status_failure,
)
from o365collector.sinks.probe import ProbeError
from o365collector.sinks.tls import TlsOptions

log = structlog.get_logger(__name__)

AUTH_REASON = "credentials refused: check username/password or api_key"
DEFAULT_INDEX = "o365-{stream}"
TEMPLATE_PRIVILEGE = "manage_index_templates"
CREDENTIALS_FIX = (
    "check username and password, or api_key (the encoded value Elasticsearch shows once "
    "when the key is created); set them if the cluster requires credentials"
)


class ElasticsearchSink(HttpSinkBase):
    """Indexes each event with ``create`` and ``_id`` = event id, so replays are harmless.

    Per item: 2xx is delivered; 409 (the document already exists: an earlier attempt
    got through) is delivered too; 429 and 5xx are retried (only those items); any
    other status refuses the item with the server's error type and reason. Whole
    request failures follow the shared HTTP rules (429/5xx/network: RETRY).

    Where events go: ``index`` (placeholders ``{stream}``, ``{tenant}``) when given; else,
    with ``payload: ecs``, one data stream per stream
    (``logs-o365collector.<stream>-<namespace>``, see :mod:`.template`), whose index
    template :meth:`start` installs when ``index_template`` (a refusal is only a warning);
    else ``o365-{stream}``. A document bound for a data stream without ``@timestamp``
    gets the record's receive time, or the delivery time (data streams require one).
    """

    label = "Elasticsearch"
    auth_reason = AUTH_REASON

    def __init__(
        self,
        name: str,
        *,
        url: str,
        index: str | None = None,
        namespace: str = "default",
        index_template: bool = True,
        pipeline: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        tls: TlsOptions | None = None,
        payload: Payload | PayloadKind = "raw",
        batch_max_bytes: int = 5 * 1024 * 1024,
        gzip: bool = False,
        request_timeout_secs: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`."""
        headers = {"Content-Type": "application/x-ndjson"}
        auth = None
        if username is not None and password is not None:
            auth = httpx.BasicAuth(username, password)
        if api_key is not None:
            headers["Authorization"] = f"ApiKey {api_key}"
        params = {"pipeline": pipeline} if pipeline else {}
        self.base_url = url.rstrip("/")
        super().__init__(
            name,
            url=self.base_url + "/_bulk",
            headers=headers,
            tls=tls,
            payload=payload,
            batch_max_bytes=batch_max_bytes,
            gzip=gzip,
            request_timeout_secs=request_timeout_secs,
            clock=clock,
            auth=auth,
            params=params,
        )
        self.params = params
        self.data_streams = index is None and self.payload.kind == "ecs"
        self.index = index or DEFAULT_INDEX
        self.namespace = namespace
        self.index_template = index_template and self.data_streams
        self._indexes: dict[tuple[str, str], str] = {}

    def ready_fields(self) -> dict[str, Any]:
        """The index template, or the data streams' pattern."""
        if self.data_streams:
            pattern = f"logs-{DATASET_PREFIX}.<stream>-{self.namespace}"
            return {"index": pattern, "payload": "ecs", "template": self.index_template}
        return {"index": self.index, "payload": self.payload.kind}

    async def probe_with(self, client: httpx.AsyncClient) -> str:
        """``GET /_security/_authenticate`` with the credentials; ``GET /`` without that API.

        401/403 fail naming the credentials. A cluster without Elastic's security API
        (security off, OpenSearch) answers something else: then ``GET /`` must answer
        200 with the credentials. Nothing is written.
        """
        url = f"{self.base_url}/_security/_authenticate"
        response = await self.probe_request(client, "GET", url)
        status = response.status_code
        if status in (401, 403) or 300 <= status < 400:
            failure = probe_status_failure(response, f"GET {url}", auth_fix=CREDENTIALS_FIX)
            assert failure is not None
            raise failure
        if status == 200:
            user = _field(response, "username")
            who = f" as {user}" if user else ""
            return f"authenticated to {self.base_url}{who}{self.tls_note()} ({url} answered 200)"
        root = f"{self.base_url}/"
        response = await self.probe_request(client, "GET", root)
        failure = probe_status_failure(response, f"GET {root}", auth_fix=CREDENTIALS_FIX)
        if failure is not None:
            raise failure
        if response.status_code != 200:
            detail = f"GET {root} answered HTTP {response.status_code}: {excerpt(response)}"
            fix = "set url to the cluster's base URL (https://<host>:9200)"
            raise ProbeError(detail.rstrip(": "), fix, "sink_url")
        version = _field(response, "version")
        number = version.get("number") if isinstance(version, dict) else None
        name = _field(response, "cluster_name")
        about = f" (cluster {name}, version {number})" if name or number else ""
        return (
            f"reached {self.base_url}{about}{self.tls_note()}; GET / accepted the request "
            f"({url} answered HTTP {status}: no Elastic security API, so the credentials "
            "are only checked as far as GET / requires them)"
        )

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """For the ECS data streams, install their index template (see :meth:`install_template`)."""
        if self.index_template:
            await self.install_template(client)

    async def install_template(self, client: httpx.AsyncClient) -> bool:
        """``PUT _index_template/o365collector-ecs``; any failure is a warning, never fatal.

        Returns:
            Whether the template was installed.
        """
        url = f"{self.base_url}/_index_template/{TEMPLATE_NAME}"
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        headers["Content-Type"] = "application/json"
        try:
            response = await client.put(
                url,
                content=orjson.dumps(index_template()),
                headers=headers,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            log.warning(
                "Could not install the ECS index template; delivery goes on without it.",
                sink=self.name,
                template=TEMPLATE_NAME,
                reason=f"{type(exc).__name__}: {redact(str(exc)) or 'no detail'}",
            )
            return False
        status = response.status_code
        if 200 <= status < 300:
            log.info("ECS index template installed.", sink=self.name, template=TEMPLATE_NAME)
            return True
        if status in (401, 403):
            log.warning(
                f"The credentials may not install the ECS index template: grant the "
                f"{TEMPLATE_PRIVILEGE} cluster privilege, or install it yourself (docs/sinks.md); "
                "delivery goes on, the data streams then use Elastic's logs-*-* template.",
                sink=self.name,
                template=TEMPLATE_NAME,
                status=status,
                privilege=TEMPLATE_PRIVILEGE,
            )
        else:
            log.warning(
                "Could not install the ECS index template; delivery goes on without it.",
                sink=self.name,
                template=TEMPLATE_NAME,
                status=status,
                reason=excerpt(response),
            )
        return False

    def index_for(self, event: Event) -> str:
        """The target index: a data stream, or the template with ``{stream}``, ``{tenant}``."""
        key = (event.stream, event.tenant)
        found = self._indexes.get(key)
        if found is None:
            if self.data_streams:
                found = data_stream(event.stream, self.namespace)
            else:
                found = (
                    self.index.replace("{stream}", event.stream)
                    .replace("{tenant}", event.tenant)
                    .lower()
                )
            self._indexes[key] = found
        return found

    def source(self, event: Event, stamp: str) -> bytes:
        """The document of ``event`` as JSON.

        Raises:
            ValueError: the payload cannot be mapped or encoded (see ``encode.refusal``).
        """
        document = self.payload.object(event, stamp)
        if self.data_streams and "@timestamp" not in document:
            document = {"@timestamp": _timestamp(event, stamp), **document}
        return dumps(document)

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """``_bulk`` bodies (a ``create`` line and the source line per event) within the limit."""
        items: list[tuple[int, bytes]] = []
        for index, event in enumerate(events):
            try:
                source = self.source(event, stamp)
            except ValueError as exc:
                outcome.reject(index, refusal(exc))
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


def _field(response: httpx.Response, key: str) -> Any:
    """``key`` of a JSON object answer, or None."""
    try:
        body: Any = response.json()
    except ValueError:
        return None
    return body.get(key) if isinstance(body, dict) else None


def _timestamp(event: Event, stamp: str) -> str:
    """The record's receive time as ISO 8601 (UTC, milliseconds), else ``stamp``."""
    when = record_time(event.record)
    if when is None:
        return stamp
    moment = datetime.fromtimestamp(when, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
