"""Translate what Entra ID, Graph and RWS answered into a named problem and its fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from o365collector.errors import (
    AuthError,
    BadRequestError,
    ConfigError,
    PermissionDeniedError,
    SetupError,
    UnavailableError,
)
from o365collector.http.auth import REFUSALS, aadsts_code
from o365collector.http.classify import GRAPH_SP_APP_ID
from o365collector.observability.redact import redact

Api = Literal["graph", "reporting"]
GRAPH_PERMISSION = "ExchangeMessageTrace.Read.All"
RWS_PERMISSION = "ReportingWebService.Read.All"
RWS_DELEGATED_PERMISSION = "ReportingWebService.Read"

_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|\[SSL|SSLError|TLS", re.I)
_CONSENT = (
    "then press 'Grant admin consent for <tenant>' (a Global or Privileged Role "
    "Administrator); tokens issued afterwards carry the permission"
)
PERMISSION_FIX: dict[Api, str] = {
    "graph": "grant it: Entra admin center > App registrations > the app > API permissions > "
    f"Add a permission > Microsoft Graph > Application permissions > {GRAPH_PERMISSION}, "
    + _CONSENT,
    "reporting": "grant it: Entra admin center > App registrations > the app > API permissions "
    "> Add a permission > APIs my organization uses > Office 365 Exchange Online > "
    f"Application permissions > {RWS_PERMISSION}, " + _CONSENT,
}
DELEGATED_FIX = (
    "an administrator must consent to this delegated permission for the public client, and "
    "the user needs an Exchange admin role; better: register an app and sign in with a "
    "certificate (docs/authentication.md)"
)
ROLE_FIX = (
    "assign a directory role to the app: Entra admin center > Roles and administrators > "
    "Global Reader (or Security Reader) > Add assignments > select the app (search by its "
    "client id); the role reaches new tokens within minutes"
)
SERVICE_PRINCIPAL_FIX = (
    f"create the service principal of Microsoft's app {GRAPH_SP_APP_ID} in the tenant, as an "
    f"administrator in Microsoft Graph PowerShell: `New-MgServicePrincipal -AppId "
    f"{GRAPH_SP_APP_ID}` (or POST /v1.0/servicePrincipals with that appId). Provisioning can "
    "take hours (up to 24): Graph answers 401 until it is done"
)
REPORT_FIX = (
    "this tenant's Reporting Web Service does not offer the report (its plan lacks it): remove "
    "the stream from tenants[].streams, or add the licence that provides it"
)
QUOTA_FIX = (
    "the tenant's quota (Graph message trace: 100 requests per 5 minutes, shared by every tool "
    "of the tenant) is used up by other tools: find them (other SIEM connectors, scripts, "
    "admins running Get-MessageTraceV2) and slow them down; the collector waits its turn"
)
TLS_FIX = (
    "the endpoint's certificate is not trusted: set tenants[].ca_bundle to the PEM CA that "
    "signed it (for example a TLS-inspecting proxy's CA), or fix the endpoint URL"
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A failure as an operator should read it: problem name, what was seen, the fix."""

    problem: str
    detail: str
    fix: str


def diagnose(exc: Exception, *, api: Api, host: str) -> Diagnosis:  # noqa: PLR0911 - one return per row
    """Name the problem behind ``exc`` (raised while calling ``api`` at ``host``) and its fix.

    The detail is redacted; identifiers in it were shortened where the error was raised.
    """
    detail = redact(str(exc))
    if isinstance(exc, AuthError):
        refusal = REFUSALS.get(aadsts_code(detail) or "")
        if refusal is not None:  # the message repeats the fix: show it once, in its column
            return Diagnosis(refusal.problem, detail.replace(f": {refusal.fix}.", "."), refusal.fix)
        if "sign-in refused" in detail:
            return Diagnosis("invalid_credentials", detail, "check tenant_id and the credential")
        return Diagnosis(
            "token_refused",
            detail,
            "the API refused a fresh token: check that the endpoints.*_scope match the "
            f"{api} host of this cloud, and the app's permissions",
        )
    if isinstance(exc, PermissionDeniedError):
        if api == "reporting":
            return Diagnosis("role_missing", detail, ROLE_FIX)
        return Diagnosis("permission_missing", detail, PERMISSION_FIX[api])
    if isinstance(exc, SetupError):
        if GRAPH_SP_APP_ID in detail:
            return Diagnosis("service_principal_missing", detail, SERVICE_PRINCIPAL_FIX)
        return Diagnosis("report_not_offered", detail, REPORT_FIX)
    if isinstance(exc, UnavailableError):
        return _unavailable(detail, host)
    if isinstance(exc, BadRequestError):
        return Diagnosis(
            "bad_request", detail, "the API refused the collector's query: please report this"
        )
    if isinstance(exc, ConfigError):
        return Diagnosis("config", detail, "fix the configuration as the message says")
    return Diagnosis("source_error", detail, "see the detail")


def _unavailable(detail: str, host: str) -> Diagnosis:
    if "HTTP 429" in detail:
        return Diagnosis("quota_in_use", detail, QUOTA_FIX)
    if _TLS.search(detail):
        return Diagnosis("tls_failure", detail, TLS_FIX)
    if "unreachable" in detail or "connection" in detail:
        return Diagnosis(
            "unreachable",
            detail,
            f"cannot connect to {host}: check DNS, firewall and proxy rules, and the "
            "endpoints.* URLs of this tenant's cloud",
        )
    return Diagnosis(
        "api_unavailable", detail, "Microsoft kept answering with errors: try again later"
    )
