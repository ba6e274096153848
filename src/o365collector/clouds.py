"""Microsoft clouds: sign-in, Graph and Reporting Web Service hosts and scopes for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudName = Literal["commercial", "gcc", "gcc_high", "dod", "china"]


@dataclass(frozen=True, slots=True)
class Cloud:
    """The endpoints of one Microsoft cloud (api-facts §2.4).

    Attributes:
        name: The value of ``tenants[].cloud``.
        authority: Entra ID sign-in host; token URLs are ``{authority}/{tenant}/oauth2/...``.
        graph: Microsoft Graph root.
        graph_scope: The v2 scope of Graph tokens (the v1 resource is this without
            ``/.default``).
        reporting: Reporting Web Service root (``…/reporting.svc``).
        reporting_scope: The v2 scope of RWS tokens.
        graph_message_trace: Whether Graph message trace is offered in this cloud
            (Microsoft lists it for the global service only).
        unverified: Endpoints that no public Microsoft source confirms; docs mark them.
    """

    name: CloudName
    authority: str
    graph: str
    graph_scope: str
    reporting: str
    reporting_scope: str
    graph_message_trace: bool
    unverified: tuple[str, ...] = ()


def _global(name: CloudName, unverified: tuple[str, ...] = ()) -> Cloud:
    return Cloud(
        name,
        authority="https://login.microsoftonline.com",
        graph="https://graph.microsoft.com",
        graph_scope="https://graph.microsoft.com/.default",
        reporting="https://reports.office365.com/ecp/reportingwebservice/reporting.svc",
        reporting_scope="https://outlook.office365.com/.default",
        graph_message_trace=True,
        unverified=unverified,
    )


CLOUDS: dict[CloudName, Cloud] = {
    "commercial": _global("commercial"),
    # GCC (moderate) runs on the global Entra ID, Graph and RWS endpoints.
    "gcc": _global("gcc", unverified=("graph_message_trace",)),
    "gcc_high": Cloud(
        "gcc_high",
        authority="https://login.microsoftonline.us",
        graph="https://graph.microsoft.us",
        graph_scope="https://graph.microsoft.us/.default",
        reporting="https://outlook.office365.us/ecp/reportingwebservice/reporting.svc",
        reporting_scope="https://outlook.office365.us/.default",
        graph_message_trace=False,
        unverified=("reporting", "reporting_scope"),
    ),
    "dod": Cloud(
        "dod",
        authority="https://login.microsoftonline.us",
        graph="https://dod-graph.microsoft.us",
        graph_scope="https://dod-graph.microsoft.us/.default",
        reporting="https://webmail.apps.mil/ecp/reportingwebservice/reporting.svc",
        reporting_scope="https://webmail.apps.mil/.default",
        graph_message_trace=False,
        unverified=("reporting", "reporting_scope"),
    ),
    "china": Cloud(
        "china",
        authority="https://login.chinacloudapi.cn",
        graph="https://microsoftgraph.chinacloudapi.cn",
        graph_scope="https://microsoftgraph.chinacloudapi.cn/.default",
        reporting="https://partner.outlook.cn/ecp/reportingwebservice/reporting.svc",
        reporting_scope="https://partner.outlook.cn/.default",
        graph_message_trace=False,
        unverified=("authority", "reporting", "reporting_scope"),
    ),
}

GLOBAL_CLOUDS: tuple[CloudName, ...] = tuple(n for n, c in CLOUDS.items() if c.graph_message_trace)


def endpoint_defaults(name: CloudName) -> dict[str, str]:
    """The ``endpoints`` keys of cloud ``name``, as a mapping a user's overrides go over."""
    cloud = CLOUDS[name]
    return {
        "authority": cloud.authority,
        "graph": cloud.graph,
        "graph_scope": cloud.graph_scope,
        "reporting": cloud.reporting,
        "reporting_scope": cloud.reporting_scope,
    }
