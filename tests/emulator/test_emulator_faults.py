"""Injected faults: the next requests fail the chosen way, then service resumes."""

from __future__ import annotations

import httpx
import pytest

from o365emulator import Emulator, EmulatorSettings, TenantSpec

TENANT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def emulator():
    spec = TenantSpec(tenant_id=TENANT, client_id="c-1", client_secret="s3cret-value", rows=50)
    emu = Emulator(EmulatorSettings(seed=3, tenants=[spec]))
    emu.start()
    yield emu
    emu.stop()


def _token(base: str) -> httpx.Response:
    return httpx.post(
        f"{base}/{TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "c-1",
            "client_secret": "s3cret-value",
            "scope": "https://graph.microsoft.com/.default",
        },
    )


def test_status_faults_are_consumed_then_service_resumes(emulator):
    base = emulator.base_url
    rules = {"rules": [{"target": "token", "status": 503, "count": 2, "retry_after_secs": 7}]}
    assert httpx.post(f"{base}/_emulator/faults", json=rules).json()["pending"] == 2
    first = _token(base)
    assert first.status_code == 503
    assert first.headers["retry-after"] == "7"
    assert _token(base).status_code == 503
    assert _token(base).status_code == 200
    assert httpx.get(f"{base}/_emulator/faults").json() == {"pending": 0, "injected": 2}


def test_html_and_drop_faults(emulator):
    base = emulator.base_url
    token = _token(base).json()["access_token"]
    rules = {"rules": [{"kind": "html"}, {"kind": "drop"}]}
    httpx.post(f"{base}/_emulator/faults", json=rules)
    url = f"{base}/v1.0/admin/exchange/tracing/messageTraces"
    headers = {"Authorization": f"Bearer {token}"}
    html = httpx.get(url, headers=headers)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    with pytest.raises(httpx.TransportError):
        httpx.get(url, headers=headers)
    assert httpx.get(url, headers=headers).status_code == 200


def test_bad_fault_rules_are_refused_and_delete_clears(emulator):
    base = emulator.base_url
    bad = httpx.post(f"{base}/_emulator/faults", json={"rules": [{"targett": "graph"}]})
    assert bad.status_code == 400
    assert "targett" in bad.json()["error"]["message"]
    httpx.post(f"{base}/_emulator/faults", json={"rules": [{"count": 5}]})
    assert httpx.delete(f"{base}/_emulator/faults").json()["pending"] == 0
