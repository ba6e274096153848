"""HTTP plumbing shared by the HTTP sinks: the client, gzip, and status code → fate."""

from __future__ import annotations

import enum
import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from o365collector import __version__
from o365collector.http.backoff import parse_retry_after
from o365collector.observability.redact import redact
from o365collector.sinks.base import Outcome
from o365collector.sinks.tls import TlsOptions, client_context

_RETRIED = frozenset({408, 425, 429})


class Fate(enum.Enum):
    """What a response means for the events it carried."""

    OK = "ok"
    RETRY = "retry"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classified response (or network failure)."""

    fate: Fate
    reason: str = ""
    retry_after_secs: float | None = None
    response: httpx.Response | None = None


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


def classify(response: httpx.Response, *, auth_reason: str) -> Verdict:
    """Map a status code to a fate.

    2xx: OK. 408, 425, 429, 5xx and redirects: RETRY (Retry-After honoured; a redirect
    means a wrong URL, and holding the pipeline loses nothing while it is fixed). 401 and
    403: REJECT with ``auth_reason``. Other 4xx: REJECT with the status and body start.
    """
    status = response.status_code
    if 200 <= status < 300:
        return Verdict(Fate.OK, response=response)
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
    return Verdict(fate, reason, retry_after, response)


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth_reason: str,
    method: str = "POST",
    auth: httpx.Auth | None = None,
) -> Verdict:
    """Send one request and classify the answer; network failures mean RETRY."""
    try:
        response = await client.request(
            method, url, content=body, headers=dict(headers), auth=auth or httpx.USE_CLIENT_DEFAULT
        )
    except httpx.HTTPError as exc:
        return Verdict(Fate.RETRY, f"{type(exc).__name__}: {redact(str(exc)) or 'no detail'}")
    return classify(response, auth_reason=auth_reason)


def apply_verdict(
    outcome: Outcome,
    verdict: Verdict,
    groups: Sequence[Sequence[int]],
    number: int,
    index: Callable[[int], int],
) -> bool:
    """Record group ``number``'s verdict in ``outcome``; True when the rest must wait.

    RETRY marks this group and every later one as pending (nothing after it was sent);
    REJECT refuses this group's events. ``index`` maps a group member to its batch index.
    """
    if verdict.fate is Fate.RETRY:
        pending = [index(i) for group in groups[number:] for i in group]
        outcome.retry(pending, verdict.reason, verdict.retry_after_secs)
        return True
    if verdict.fate is Fate.REJECT:
        for i in groups[number]:
            outcome.reject(index(i), verdict.reason)
    return False
