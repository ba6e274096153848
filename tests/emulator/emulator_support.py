"""Shared helpers of the emulator tests: a settable clock, settings, and a small Graph client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from o365emulator import Emulator, EmulatorSettings, TenantSpec
from o365emulator.ticks import parse_odata_datetime

ANCHOR = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
TENANT_ID = "11111111-2222-4333-8444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
SECRET = "emulator-test-secret~0123456789"
DOMAIN = "contoso.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TRACES = "/v1.0/admin/exchange/tracing/messageTraces"


def make_settings(
    rows: int = 3000, *, tenant: dict[str, Any] | None = None, **overrides: Any
) -> EmulatorSettings:
    spec = TenantSpec(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        domain=DOMAIN,
        rows=rows,
        **(tenant or {}),
    )
    values: dict[str, Any] = {"seed": 42, "tenants": [spec], "anchor": ANCHOR}
    values.update(overrides)
    return EmulatorSettings(**values)


def iso(dt: datetime) -> str:
    """Whole-second OData literal."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticks_of(text: str) -> int:
    return parse_odata_datetime(text)


def ticks_text(ticks: int) -> str:
    """OData literal with all 7 fractional digits for a tick value."""
    sec, frac = divmod(ticks, 10_000_000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"


def window_filter(start: datetime | str, end: datetime | str) -> str:
    start_text = start if isinstance(start, str) else iso(start)
    end_text = end if isinstance(end, str) else iso(end)
    return f"receivedDateTime ge {start_text} and receivedDateTime le {end_text}"


def status_at(row: dict[str, Any], moment: datetime) -> str | None:
    """A ground-truth row's status at ``moment`` (None while not yet visible)."""
    status = None
    for step in row["history"]:
        if datetime.fromisoformat(step["visible_at"].replace("Z", "+00:00")) <= moment:
            status = step["status"]
    return status


def sort_key(row: dict[str, Any]) -> tuple[int, str, str]:
    return (ticks_of(row["receivedDateTime"]), row["id"], row["recipientAddress"])


@dataclass
class Graph:
    """Talks to a running emulator like a collector would."""

    emulator: Emulator
    client: httpx.Client

    def token(self, **form: str) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": GRAPH_SCOPE,
        }
        data.update(form)
        return self.client.post(f"/{TENANT_ID}/oauth2/v2.0/token", data=data)

    def bearer(self) -> dict[str, str]:
        response = self.token()
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def get(self, url: str, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
        return self.client.get(url, headers=headers or self.bearer(), params=params or None)

    def list(self, **params: str) -> httpx.Response:
        return self.get(TRACES, **params)

    def all_pages(self, **params: str) -> list[list[dict[str, Any]]]:
        """Follow every @odata.nextLink verbatim; return the pages."""
        headers = self.bearer()
        response = self.client.get(TRACES, headers=headers, params=params)
        pages = []
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            pages.append(body["value"])
            link = body.get("@odata.nextLink")
            if link is None:
                return pages
            response = self.client.get(link, headers=headers)
