"""Tenants' Microsoft clients over real TLS: ``ca_bundle`` is trusted, one context per bundle.

The server is pytest-httpserver over HTTPS with a certificate from a private trustme CA.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trustme

from o365collector.app import default_http_client
from o365collector.config.model import Settings
from support.https import https_server

TENANT = {"client_id": "5f6a7b8c-0000-4000-8000-0000000000cc", "client_secret": "s"}


def _settings(tmp_path: Path, bundles: list[str | None]) -> Settings:
    tenants = []
    for index, bundle in enumerate(bundles):
        tenant = {**TENANT, "name": f"t{index}", "tenant_id": f"tenant-{index}.onmicrosoft.com"}
        if bundle is not None:
            tenant["ca_bundle"] = bundle
        tenants.append(tenant)
    return Settings.model_validate(
        {
            "state_dir": str(tmp_path),
            "tenants": tenants,
            "sinks": [{"type": "stdout", "name": "out"}],
        }
    )


async def test_ca_bundle_tenants_connect_others_are_refused_one_context_per_bundle(
    tmp_path: Path,
) -> None:
    """Tenants with the private CA's bundle reach the server and share one TLS context;
    tenants without it verify against the system store and are refused in the handshake."""
    ca = trustme.CA()
    bundle = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    settings = _settings(tmp_path, [None, str(bundle), None, str(bundle), None])
    shared: dict[Path | None, object] = {}
    clients = [default_http_client(tenant, settings, shared) for tenant in settings.tenants]
    try:
        with https_server(ca) as server:
            server.expect_request("/ping").respond_with_data("pong")
            url = server.url_for("/ping")
            for client in (clients[1], clients[3]):
                assert (await client.get(url)).text == "pong"
            for client in (clients[0], clients[2], clients[4]):
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.get(url)
            assert len(server.log) == 2
    finally:
        for client in clients:
            await client.aclose()
    assert set(shared) == {None, bundle}
    used = [client._transport._pool._ssl_context for client in clients]  # type: ignore[attr-defined]
    assert [u is shared[None] for u in used] == [True, False, True, False, True]
    assert [u is shared[bundle] for u in used] == [False, True, False, True, False]
