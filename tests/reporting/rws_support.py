"""Shared helpers of the RWS tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from o365emulator import EmulatorSettings, TenantSpec

ANCHOR = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
TENANT_ID = "3c9a1e2f-0000-4000-8000-00000000a0a1"
CLIENT_ID = "9b8c7d6e-0000-4000-8000-00000000c0c1"
SECRET = "rws-test-secret~0123456789"
RWS_PATH = "/ecp/reportingwebservice/reporting.svc"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "reference" / "samples"
FIXTURES = SHARED / "fixtures"


def shared_or_skip(path: Path) -> Path:
    """``path`` under ../shared, or skip: the peer samples are not shipped with the repo."""
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared reference samples are not checked out")
    return path


def emulator_settings(
    rows: int = 2000, *, tenant: dict[str, Any] | None = None, **overrides: Any
) -> EmulatorSettings:
    spec = TenantSpec(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        rows=rows,
        **{"quota_requests": 100_000, **(tenant or {})},
    )
    values: dict[str, Any] = {
        "seed": 11,
        "tenants": [spec],
        "anchor": ANCHOR,
        "rws_aggregate_delay_secs": 600.0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


def token_response(token: str = "tok-rws") -> httpx.Response:
    return httpx.Response(
        200, json={"token_type": "Bearer", "expires_in": 3600, "access_token": token}
    )


def bearer(client: httpx.Client, scope: str = EXCHANGE_SCOPE) -> dict[str, str]:
    """A token for ``scope`` from the emulator the client talks to."""
    response = client.post(
        f"/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
