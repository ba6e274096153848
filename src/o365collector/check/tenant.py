"""Tenant probes: sign in for each API, read the token's permissions, read each stream."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from o365collector.app import default_http_client
from o365collector.check.model import Finding, Report
from o365collector.check.streams import StreamContext, api_of, probe_stream
from o365collector.check.translate import (
    DELEGATED_FIX,
    GRAPH_PERMISSION,
    PERMISSION_FIX,
    RWS_DELEGATED_PERMISSION,
    RWS_PERMISSION,
    Api,
    diagnose,
)
from o365collector.clock import Clock
from o365collector.config.model import RetrySettings, Settings, TenantSettings
from o365collector.errors import ConfigError, SourceError
from o365collector.http.auth import TokenProvider, token_provider_for
from o365collector.http.budget import RequestBudget
from o365collector.http.client import ApiClient
from o365collector.observability.redact import redact, shorten

_APP_PERMISSION: dict[Api, str] = {"graph": GRAPH_PERMISSION, "reporting": RWS_PERMISSION}
_USER_PERMISSION: dict[Api, str] = {
    "graph": GRAPH_PERMISSION,
    "reporting": RWS_DELEGATED_PERMISSION,
}


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT access token, without checking its signature.

    This is the caller's own token, read only to report what it grants. Returns an empty
    mapping when the token is not a readable JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def tenant_target(tenant: TenantSettings) -> str:
    """How check names a tenant: its name, or its id shortened."""
    return f"tenant {tenant.name or shorten(tenant.tenant_id)}"


async def check_tenant(
    tenant: TenantSettings, settings: Settings, report: Report, clock: Clock, max_wait_secs: float
) -> None:
    """Probe one tenant; every outcome is added to ``report`` and nothing raises."""
    target = tenant_target(tenant)
    if not tenant.enabled:
        detail = "enabled: false: nothing is collected from this tenant, so it is not probed"
        report.add(Finding(target, "tenant", "skip", detail=detail))
        return
    apis: dict[Api, list[str]] = {}
    for stream in tenant.streams:
        api_name = api_of(stream)
        if api_name is None:
            report.add(Finding(target, f"stream {stream}", "skip", detail="unknown stream"))
            continue
        apis.setdefault(api_name, []).append(stream)
    http = default_http_client(tenant, settings)
    try:
        try:
            tokens = token_provider_for(tenant, http, clock)
        except ConfigError as exc:
            report.add(Finding(target, "credential", "fail", "config", redact(str(exc))))
            return
        retry = RetrySettings(
            initial_interval_secs=min(0.5, max_wait_secs),
            max_interval_secs=max(0.5, min(5.0, max_wait_secs)),
            max_elapsed_secs=max_wait_secs,
            request_timeout_secs=settings.collection.retry.request_timeout_secs,
        )
        budget = RequestBudget(
            tenant.budget.requests,
            tenant.budget.window_secs,
            clock,
            reserve_share=tenant.budget.reserve_share,
            per_second=tenant.budget.requests_per_second,
        )
        api = ApiClient(http, tokens, budget, retry, clock, tenant.label)
        ctx = StreamContext(tenant, api, settings.collection, clock)
        for api_name, names in apis.items():
            signed_in = await _sign_in(tenant, tokens, api_name, report)
            for name in names:
                await _probe_stream(ctx, api_name, name, signed_in, report)
    finally:
        await http.aclose()


def _scope(tenant: TenantSettings, api: Api) -> str:
    if api == "graph":
        return tenant.endpoints.scope_for_graph()
    return tenant.endpoints.scope_for_reporting()


def _host(tenant: TenantSettings, api: Api) -> str:
    endpoints = tenant.endpoints
    return endpoints.graph_base() if api == "graph" else endpoints.reporting_base()


async def _sign_in(tenant: TenantSettings, tokens: TokenProvider, api: Api, report: Report) -> bool:
    """Token and permission findings for ``api``; True when its streams can be probed."""
    target = tenant_target(tenant)
    kind = tokens.credential.kind
    try:
        token = await tokens.token(_scope(tenant, api))
    except SourceError as exc:
        found = diagnose(exc, api=api, host=tenant.endpoints.authority_base())
        report.add(Finding(target, f"token {api}", "fail", found.problem, found.detail, found.fix))
        return False
    claims = unverified_claims(token)
    report.add(
        Finding(
            target,
            f"token {api}",
            "pass",
            detail=f"signed in with {kind}; token for {claims.get('aud', '?')}",
        )
    )
    delegated = "roles" not in claims and "scp" in claims
    granted = str(claims.get("scp", "")).split() if delegated else claims.get("roles") or []
    needed = (_USER_PERMISSION if delegated else _APP_PERMISSION)[api]
    what = "delegated permissions (scp)" if delegated else "application roles"
    if needed in granted:
        report.add(Finding(target, f"permissions {api}", "pass", detail=f"{what} include {needed}"))
        return True
    shown = ", ".join(str(r) for r in granted) or "none"
    report.add(
        Finding(
            target,
            f"permissions {api}",
            "fail",
            "consent_missing",
            f"the token lacks {needed}; its {what}: {shown}",
            DELEGATED_FIX if delegated else PERMISSION_FIX[api],
        )
    )
    return False


async def _probe_stream(
    ctx: StreamContext, api: Api, stream: str, signed_in: bool, report: Report
) -> None:
    target = tenant_target(ctx.tenant)
    probe = f"stream {stream}"
    if not signed_in:
        report.add(Finding(target, probe, "skip", detail=f"not read: fix the {api} sign-in first"))
        return
    try:
        detail = await probe_stream(ctx, stream)
    except SourceError as exc:
        found = diagnose(exc, api=api, host=_host(ctx.tenant, api))
        report.add(Finding(target, probe, "fail", found.problem, found.detail, found.fix))
        return
    report.add(Finding(target, probe, "pass", detail=redact(detail)))
