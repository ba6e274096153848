"""Authenticated GETs with the request budget, one classification table and one retry loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

import httpx
import structlog

from o365collector.clock import Clock
from o365collector.config.model import RetrySettings
from o365collector.errors import (
    AuthError,
    BadRequestError,
    PermissionDeniedError,
    SetupError,
    UnavailableError,
)
from o365collector.http.auth import TokenProvider
from o365collector.http.backoff import Backoff
from o365collector.http.budget import RequestBudget
from o365collector.http.classify import Action, Verdict, classify_transport_error
from o365collector.observability import metrics
from o365collector.page_gate import PageGate, Permit

log = structlog.get_logger(__name__)


@dataclass
class ApiClient:
    """Sends GETs for one tenant: spends budget, adds the bearer token, classifies, retries."""

    http: httpx.AsyncClient
    tokens: TokenProvider
    budget: RequestBudget
    retry: RetrySettings
    clock: Clock
    tenant: str
    gate: PageGate | None = None  # the process-wide limit on pages in memory
    flights: PageGate | None = None  # the process-wide limit on page requests in flight

    async def get_json(
        self,
        url: str,
        *,
        scope: str,
        classify: Callable[[httpx.Response], Verdict],
        api: str,
        priority: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Return the decoded JSON body of a successful GET of ``url``.

        Transient failures (network, 5xx, 429, a 200 that is not JSON, an unreachable token
        endpoint) are retried with :class:`Backoff`, obeying ``Retry-After``; a 401 renews
        the token once. Everything else raises at once.

        Raises:
            AuthError, PermissionDeniedError, SetupError, BadRequestError: permanent refusals.
            UnavailableError: transient failures outlasted ``retry.max_elapsed_secs``.
        """
        body, _ = await self._get(url, scope, classify, api, priority, None, headers)
        return body

    async def get_page(
        self,
        url: str,
        *,
        scope: str,
        classify: Callable[[httpx.Response], Verdict],
        api: str,
        priority: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, Permit]:
        """Like :meth:`get_json`, for a page of records for the sinks: ``(body, permit)``.

        An attempt is sent only while the process-wide :class:`PageGate` has room (after
        the budget slot, and within ``flights``, the limit on page requests in flight); it
        takes its place in the gate once the answer's headers say a page is coming, before
        its body is read. A failed attempt gives its place back at once. The permit of the
        attempt that brought the page is returned with the body and belongs to the caller,
        who releases it (see :mod:`o365collector.page_gate`). If this raises, no place is
        held.
        """
        return await self._get(url, scope, classify, api, priority, self.gate, headers)

    async def _get(
        self,
        url: str,
        scope: str,
        classify: Callable[[httpx.Response], Verdict],
        api: str,
        priority: int,
        gate: PageGate | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[Any, Permit]:
        """The retry loop of :meth:`get_json` and :meth:`get_page`."""
        backoff = self._new_backoff()
        renewed = False
        while True:
            verdict, permit = await self._attempt_once(
                url, scope, classify, api, priority, gate, headers
            )
            step = _next_step(verdict, renewed=renewed)
            if step is _Step.DONE:
                return verdict.body, permit
            if step is _Step.RENEW_TOKEN:
                renewed = True
                self.tokens.invalidate(scope)
                continue
            await self._wait_before_retry(verdict, backoff, api)

    def _new_backoff(self) -> Backoff:
        """The retry schedule of one call, from the configured retry settings."""
        return Backoff(
            self.retry.initial_interval_secs,
            self.retry.multiplier,
            self.retry.max_interval_secs,
            self.retry.max_elapsed_secs,
        )

    async def _attempt_once(
        self,
        url: str,
        scope: str,
        classify: Callable[[httpx.Response], Verdict],
        api: str,
        priority: int,
        gate: PageGate | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[Verdict, Permit]:
        """One GET, its verdict and its page-gate place, kept only when the page came.

        A failed attempt gives its place back at once, so other readers go on while this
        one renews its token or backs off.
        """
        verdict, permit = await self._send(url, scope, classify, api, priority, gate, headers)
        if verdict.action is not Action.OK:
            permit.release()
            return verdict, Permit()
        return verdict, permit

    async def _wait_before_retry(self, verdict: Verdict, backoff: Backoff, api: str) -> None:
        """Sleep until the next attempt: ``Retry-After`` if given, else the backoff's draw.

        A 429 also pauses the tenant's whole request budget for that long.

        Raises:
            UnavailableError: the next wait would pass ``retry.max_elapsed_secs``.
        """
        if verdict.action is Action.RATE_LIMITED:
            self._pause_budget(verdict, backoff, api)
        delay = backoff.next_delay(verdict.retry_after_secs)
        if delay is None:
            msg = (
                f"{verdict.reason}; gave up after {backoff.attempts + 1} attempts over "
                f"{backoff.waited_secs:.0f} s (retry.max_elapsed_secs)"
            )
            raise UnavailableError(msg)
        log.warning(
            "Request failed; retrying.",
            tenant=self.tenant,
            api=api,
            reason=verdict.reason,
            retry_in_secs=round(delay, 2),
            attempt=backoff.attempts,
        )
        await self.clock.sleep(delay)

    def _pause_budget(self, verdict: Verdict, backoff: Backoff, api: str) -> None:
        """Throttled: no request of this tenant goes out for ``Retry-After`` (or the next step)."""
        pause = verdict.retry_after_secs
        if pause is None:
            pause = backoff.initial_interval_secs * backoff.multiplier**backoff.attempts
        self.budget.throttled_for(pause)
        metrics.THROTTLED.labels(api=api).inc()

    def _gauge_budget(self) -> None:
        metrics.BUDGET_IN_WINDOW.labels(tenant=self.tenant).set(self.budget.in_window())
        metrics.BUDGET_LIMIT.labels(tenant=self.tenant).set(self.budget.limit)

    async def _send(
        self,
        url: str,
        scope: str,
        classify: Callable[[httpx.Response], Verdict],
        api: str,
        priority: int,
        gate: PageGate | None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Verdict, Permit]:
        """Send one authenticated GET within the budget (and the gate) and classify it.

        The gate's permit comes back with the verdict; if this raises, it was released.
        """
        try:
            token = await self.tokens.token(scope)
        except UnavailableError as exc:
            return Verdict(Action.RETRY, str(exc)), Permit()
        permit = Permit()
        try:
            try:
                response, permit = await self._exchange(url, priority, gate, headers, token)
            except httpx.TransportError as exc:
                self._gauge_budget()
                metrics.HTTP_REQUESTS.labels(api=api, status_class="error").inc()
                return classify_transport_error(exc), permit
            status_class = f"{response.status_code // 100}xx"
            metrics.HTTP_REQUESTS.labels(api=api, status_class=status_class).inc()
            self._gauge_budget()
            verdict = classify(response)
            release_body(response)
        except BaseException:
            permit.release()
            raise
        return verdict, permit

    async def _exchange(
        self,
        url: str,
        priority: int,
        gate: PageGate | None,
        headers: Mapping[str, str] | None,
        token: str,
    ) -> tuple[httpx.Response, Permit]:
        """GET ``url`` and read its body; for a page (``gate``), with its place in the gate.

        The place is taken between the answer's headers and its body, so the gate bounds
        the pages in memory, not the requests waiting for Microsoft: those are bounded by
        ``flights`` (each holds one from before it is sent until its body is read). A page
        request is not sent while the gate is full (the sinks are behind), so no answer
        waits, unread, for a place that may take long to come.

        Raises:
            httpx.TransportError: the request or the reading of its body failed; nothing
                is held then.
        """
        flight = Permit()
        permit = Permit()
        request = self.http.build_request(
            "GET", url, headers={**(headers or {}), "Authorization": f"Bearer {token}"}
        )
        try:
            async with self.budget.spend(priority):
                if gate is not None:
                    await gate.wait_for_room(priority)
                    if self.flights is not None:
                        flight = await self.flights.acquire(priority)
                response = await self.http.send(request, stream=True)
            try:
                if gate is not None and response.is_success:
                    permit = await gate.acquire(priority)
                await response.aread()
            finally:
                await response.aclose()
        except BaseException:
            permit.release()
            raise
        finally:
            flight.release()
        return response, permit


def release_body(response: httpx.Response) -> None:
    """Let the response (and its body) go as soon as the caller drops it.

    httpx binds a response's stream to the response (``BoundAsyncStream``): a reference
    cycle that only the cyclic garbage collector frees, and late, once the response has
    been promoted to its oldest generation. Measured on a backlog, the bodies of past pages
    (~1.8 MiB each for 5,000 rows) kept 20–50 MiB alive. The body was read already.
    """
    response.stream = httpx.ByteStream(b"")


class _Step(Enum):
    """What :meth:`ApiClient.get_json` does after an attempt."""

    DONE = auto()  # the body came
    RENEW_TOKEN = auto()  # a first 401: renew the token, try again at once
    WAIT = auto()  # transient: wait, then try again


def _next_step(verdict: Verdict, *, renewed: bool) -> _Step:
    """The retry decision for ``verdict``; ``renewed``: the token was renewed already.

    Raises:
        AuthError, PermissionDeniedError, SetupError, BadRequestError: a permanent refusal.
    """
    if verdict.action is Action.OK:
        return _Step.DONE
    if verdict.action is Action.REFRESH_AUTH and not renewed:
        return _Step.RENEW_TOKEN
    _raise_if_permanent(verdict)
    return _Step.WAIT


def _raise_if_permanent(verdict: Verdict) -> None:
    errors: dict[Action, type[Exception]] = {
        Action.REFRESH_AUTH: AuthError,
        Action.FAIL_AUTH: AuthError,
        Action.FAIL_PERMISSION: PermissionDeniedError,
        Action.FAIL_SETUP: SetupError,
        Action.FAIL_REQUEST: BadRequestError,
    }
    error = errors.get(verdict.action)
    if error is not None:
        reason = verdict.reason
        if verdict.action is Action.REFRESH_AUTH:
            reason += " (still refused after renewing the token: check the app's permissions)"
        raise error(reason)
