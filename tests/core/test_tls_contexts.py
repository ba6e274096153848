"""Tenants share TLS contexts: one per CA bundle, not one per tenant."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi

from o365collector.app import default_http_client
from o365collector.config.model import Settings

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


def test_one_context_per_ca_bundle(tmp_path: Path, monkeypatch) -> None:
    made: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counting(*args, **kwargs):  # httpx and the CA-bundle path both build through it
        context = create(*args, **kwargs)
        made.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    bundle = str(tmp_path / "ca.pem")
    Path(bundle).write_bytes(Path(certifi.where()).read_bytes())
    settings = _settings(tmp_path, [None, None, bundle, None, bundle])
    shared: dict[Path | None, ssl.SSLContext] = {}
    for tenant in settings.tenants:
        default_http_client(tenant, settings, shared)
    assert set(shared) == {None, Path(bundle)}
    assert all(isinstance(context, ssl.SSLContext) for context in shared.values())
    assert shared[None] is not shared[Path(bundle)]
    assert len(made) == 2  # five tenants, two bundles: two contexts built
