"""Helpers shared by the unit tests (imported by name; the fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

EPOCH = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
AUTHORITY = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
CLIENT_SECRET = "unit-test-client-secret-Q7x~9zK"
TOKEN_URL = f"{AUTHORITY}/{TENANT_ID}/oauth2/v2.0/token"
SCOPE = f"{GRAPH}/.default"


def token_response(token: str = "tok-1", expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"token_type": "Bearer", "expires_in": expires_in, "access_token": token}
    )
