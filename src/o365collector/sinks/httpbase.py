"""The skeleton of the HTTP sinks: client, gzip, the request loop, and status code → fate.

Sekoia, Splunk HEC, Elasticsearch and the generic HTTP sink share everything here; each
supplies only what differs: its URL and headers, how events become request bodies
(:meth:`HttpSinkBase.requests`), and what a receiver's answer means for the events it
carried (:meth:`HttpSinkBase.settle`, :meth:`HttpSinkBase.finish`).
"""

from __future__ import annotations

import enum
import gzip
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import structlog

from o365collector import __version__
from o365collector.clock import Clock, SystemClock
from o365collector.config.sinks import PayloadKind
from o365collector.errors import SinkError
from o365collector.event import Event
from o365collector.http.backoff import parse_retry_after
from o365collector.observability.redact import redact
from o365collector.sinks.base import DeliveryResult, Outcome
from o365collector.sinks.encode import Payload, delivered_at
from o365collector.sinks.probe import CERT_FILES, ProbeError
from o365collector.sinks.tls import TlsOptions, client_context

log = structlog.get_logger(__name__)

_RETRIED = frozenset({408, 425, 429})
PROBE_TIMEOUT_SECS = 10.0


class Fate(enum.Enum):
    """What a receiver's answer means for the events it carried."""

    OK = "ok"
    RETRY = "retry"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class DeliveryVerdict:
    """A sink receiver's answer (or a network failure), classified for the events sent.

    Unlike :class:`o365collector.http.classify.Verdict` (what the collector does next
    with a Microsoft API: refresh, throttle, stop), this only says the events' fate.
    """

    fate: Fate
    reason: str = ""
    retry_after_secs: float | None = None
    response: httpx.Response | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One request body and the batch indexes of the events it carries, in order."""

    indexes: list[int]
    body: bytes


def make_client(sink: str, tls: TlsOptions, timeout_secs: float) -> httpx.AsyncClient:
    """An AsyncClient with the sink's TLS context, timeouts, and no redirects.

    Raises:
        SinkError: the TLS files cannot be loaded.
    """
    return httpx.AsyncClient(
        verify=client_context(sink, tls),
        timeout=httpx.Timeout(timeout_secs, connect=min(10.0, timeout_secs)),
        headers={"User-Agent": f"o365collector/{__version__}"},
        follow_redirects=False,
    )


def maybe_gzip(body: bytes, enabled: bool) -> tuple[bytes, dict[str, str]]:
    """Compress ``body`` when enabled; return it with the matching Content-Encoding header."""
    if not enabled:
        return body, {}
    return gzip.compress(body, compresslevel=6, mtime=0), {"Content-Encoding": "gzip"}


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of a response body on one line, with secrets masked."""
    text = " ".join(response.text[:limit].split())
    return redact(text)


def classify_delivery(response: httpx.Response, *, auth_reason: str) -> DeliveryVerdict:
    """Map a status code to a fate.

    2xx: OK. 408, 425, 429, 5xx and redirects: RETRY (Retry-After honoured; a redirect
    means a wrong URL, and holding the pipeline loses nothing while it is fixed). 401 and
    403: REJECT with ``auth_reason``. Other 4xx: REJECT with the status and body start.
    """
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryVerdict(Fate.OK, response=response)
    fate, retry_after = Fate.REJECT, None
    if status in _RETRIED or status >= 500:
        fate, retry_after = Fate.RETRY, parse_retry_after(response.headers.get("Retry-After"))
        reason = f"HTTP {status}: {excerpt(response)}".rstrip(": ")
    elif 300 <= status < 400 or status < 200:
        where = redact(response.headers.get("Location", "?"))
        fate, reason = Fate.RETRY, f"HTTP {status} redirect to {where}: set the final URL"
    elif status in (401, 403):
        reason = f"{auth_reason} (HTTP {status})"
    elif status == 404:
        reason = "not found (HTTP 404): check the URL"
    elif status == 413:
        reason = "request too large (HTTP 413): lower batch_max_bytes"
    else:
        reason = f"HTTP {status}: {excerpt(response)}".rstrip(": ")
    return DeliveryVerdict(fate, reason, retry_after, response)


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth_reason: str,
    method: str = "POST",
    auth: httpx.Auth | None = None,
) -> DeliveryVerdict:
    """Send one request and classify the answer; network failures mean RETRY."""
    try:
        response = await client.request(
            method, url, content=body, headers=dict(headers), auth=auth or httpx.USE_CLIENT_DEFAULT
        )
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {redact(str(exc)) or 'no detail'}"
        return DeliveryVerdict(Fate.RETRY, reason)
    return classify_delivery(response, auth_reason=auth_reason)


def probe_network_failure(exc: httpx.HTTPError, url: str) -> ProbeError:
    """A request of a probe that got no answer: what happened, and the fix."""
    detail = f"{url}: {type(exc).__name__}: {redact(str(exc)) or 'no detail'}"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        fix = (
            "set ca_file to the CA chain that signed the receiver's certificate, and check "
            "that the host in the URL is a name in that certificate"
        )
        return ProbeError(detail, fix, "sink_tls")
    if isinstance(cause, ssl.SSLError):
        reason = str(cause.reason or cause)
        if "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
            fix = f"the receiver refused the client certificate: check {CERT_FILES}"
            return ProbeError(detail, fix, "sink_client_cert_refused")
        fix = "check that the URL's scheme and port are right (https needs a TLS port)"
        return ProbeError(detail, fix, "sink_tls")
    if isinstance(exc, httpx.TimeoutException):
        fix = (
            "check the URL's host and port, and that firewalls and proxies let this machine through"
        )
        return ProbeError(detail, fix)
    return ProbeError(detail, "check the URL's host and port, and that the receiver listens there")


def probe_status_failure(
    response: httpx.Response, what: str, *, auth_fix: str | None
) -> ProbeError | None:
    """A probe's answer that fails any sink: a redirect, 5xx, 401/403 (with ``auth_fix``)."""
    status = response.status_code
    if 300 <= status < 400:
        where = redact(response.headers.get("Location", "?"))
        detail = f"{what} answered HTTP {status}, a redirect to {where}"
        fix = "set the final URL: the sink does not follow redirects"
        return ProbeError(detail, fix, "sink_url")
    if status in (401, 403) and auth_fix is not None:
        detail = f"{what} answered HTTP {status}: the credentials were refused"
        body = excerpt(response)
        return ProbeError(f"{detail} ({body})" if body else detail, auth_fix, "sink_credentials")
    if status >= 500:
        detail = f"{what} answered HTTP {status}: {excerpt(response)}".rstrip(": ")
        fix = "the receiver is failing or unavailable: check it, then run check again"
        return ProbeError(detail, fix, "sink_unavailable")
    return None


class HttpSinkBase:
    """An HTTP sink: requests sent in order, each answer settling the events it carried.

    :meth:`send` encodes the batch into :class:`Request` objects, posts them one after
    the other (gzipped when enabled) and stops at the first RETRY, which covers that
    request and every later one (nothing after it was sent). Each OK or REJECT answer
    goes to :meth:`settle` as it arrives; :meth:`finish` then sees every OK answer.
    """

    label: ClassVar[str]
    """The sink's kind in log messages ("Sekoia")."""
    auth_reason: ClassVar[str]
    """The reason given to events refused with 401 or 403."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        headers: Mapping[str, str],
        tls: TlsOptions | None,
        payload: Payload | PayloadKind,
        batch_max_bytes: int,
        gzip: bool,
        request_timeout_secs: float,
        method: str = "POST",
        auth: httpx.Auth | None = None,
        params: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Configure the sink; the HTTP client is created by :meth:`start`.

        ``clock`` stamps ``delivered_at`` (the system clock by default).
        """
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.url = url
        self.method = method
        self.payload = Payload.of(payload)
        self.batch_max_bytes = batch_max_bytes
        self.gzip = gzip
        self._headers = dict(headers)
        self._auth = auth
        self._target = str(httpx.URL(url, params=params)) if params else url
        self._tls = tls or TlsOptions()
        self._timeout = request_timeout_secs
        self._client: httpx.AsyncClient | None = None

    def ready_fields(self) -> dict[str, Any]:
        """What the "sink ready" log line tells besides the sink and its URL."""
        return {"gzip": self.gzip}

    async def start(self) -> None:
        """Create the HTTP client (TLS files are read now)."""
        self._client = make_client(self.name, self._tls, self._timeout)
        log.info(f"{self.label} sink ready.", sink=self.name, url=self.url, **self.ready_fields())
        await self.prepare(self._client)

    async def probe(self) -> str:
        """For ``check``: reach the receiver with a request that delivers nothing.

        A client of its own is made (the sink's TLS settings, at most
        ``PROBE_TIMEOUT_SECS`` per request) and closed again; :meth:`probe_with` says
        what is asked.

        Raises:
            ProbeError: the TLS files, the connection, TLS, the credentials or the
                receiver failed.
        """
        try:
            client = make_client(self.name, self._tls, min(self._timeout, PROBE_TIMEOUT_SECS))
        except SinkError as exc:
            fix = "fix the TLS file or password named here"
            raise ProbeError(str(exc), fix, "sink_config") from exc
        try:
            return await self.probe_with(client)
        finally:
            await client.aclose()

    async def probe_with(self, client: httpx.AsyncClient) -> str:
        """The sink's probe requests; the default one sends ``HEAD`` to the delivery URL."""
        response = await self.probe_request(client, "HEAD", self.url)
        failure = probe_status_failure(response, f"HEAD {self.url}", auth_fix=self.auth_reason)
        if failure is not None:
            raise failure
        return (
            f"HEAD {self.url} answered HTTP {response.status_code}{self.tls_note()}: the "
            "receiver is reachable"
        )

    async def probe_request(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        credentials: bool = True,
    ) -> httpx.Response:
        """Send one probe request with the sink's headers (and credentials, unless told not).

        Raises:
            ProbeError: no answer (connection, TLS or timeout).
        """
        headers = dict(self._headers)
        if content is None:
            headers.pop("Content-Type", None)
        if not credentials:
            headers.pop("Authorization", None)
        auth = self._auth if credentials and self._auth is not None else httpx.USE_CLIENT_DEFAULT
        try:
            return await client.request(method, url, content=content, headers=headers, auth=auth)
        except httpx.HTTPError as exc:
            raise probe_network_failure(exc, url) from exc

    def tls_note(self) -> str:
        """`` over TLS (…)`` for an https URL: whether the receiver's certificate was verified."""
        if not self.url.lower().startswith("https://"):
            return ""
        if self._tls.verify:
            return " over TLS (the receiver's certificate was verified)"
        return " over TLS (the receiver's certificate was NOT verified: tls_verify is false)"

    async def prepare(self, client: httpx.AsyncClient) -> None:
        """Once started: set up the receiver (none by default); must not raise for a refusal."""

    def requests(self, events: Sequence[Event], stamp: str, outcome: Outcome) -> list[Request]:
        """The batch as size-bounded requests, in order; events refused now go to ``outcome``."""
        raise NotImplementedError

    def settle(self, outcome: Outcome, request: Request, verdict: DeliveryVerdict) -> None:
        """Record what an OK or REJECT answer means for its events: REJECT refuses them all."""
        if verdict.fate is Fate.REJECT:
            for index in request.indexes:
                outcome.reject(index, verdict.reason)

    async def finish(
        self,
        client: httpx.AsyncClient,
        outcome: Outcome,
        accepted: list[tuple[Request, DeliveryVerdict]],
    ) -> None:
        """After the last request: work that needs every OK answer (none by default)."""

    async def send(self, events: Sequence[Event]) -> DeliveryResult:
        """Send the batch in as few requests as the size limit allows, in order."""
        client = self._client
        assert client is not None, "start() first"
        outcome = Outcome()
        requests = self.requests(events, delivered_at(self.clock), outcome)
        accepted: list[tuple[Request, DeliveryVerdict]] = []
        for number, request in enumerate(requests):
            content, extra = maybe_gzip(request.body, self.gzip)
            verdict = await post(
                client,
                self._target,
                content,
                {**self._headers, **extra},
                auth_reason=self.auth_reason,
                method=self.method,
                auth=self._auth,
            )
            if verdict.fate is Fate.RETRY:
                unsent = [i for later in requests[number:] for i in later.indexes]
                outcome.retry(unsent, verdict.reason, verdict.retry_after_secs)
                break
            self.settle(outcome, request, verdict)
            if verdict.fate is Fate.OK:
                accepted.append((request, verdict))
        await self.finish(client, outcome, accepted)
        return outcome.result()

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
