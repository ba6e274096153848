"""``tenants[].local_domains``: the tenant's mail domains, for the direction of ECS/OCSF output."""

from __future__ import annotations

from typing import Any

import pytest

from o365collector.config.loader import parse_settings
from o365collector.errors import ConfigError


def _settings(local_domains: Any = None, **sink: Any) -> Any:
    tenant: dict[str, Any] = {
        "name": "contoso",
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "c0ffee00-0000-0000-0000-000000000001",
        "client_secret": "unit-secret-local-domains",
    }
    if local_domains is not None:
        tenant["local_domains"] = local_domains
    return parse_settings({"tenants": [tenant], "sinks": [{"type": "stdout", **sink}]})


def _error(local_domains: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _settings(local_domains)
    return str(info.value)


def test_default_is_empty_no_guess_from_the_tenant_domain() -> None:
    assert _settings().tenants[0].local_domains == []


def test_domains_are_lower_cased_stripped_and_deduplicated() -> None:
    tenant = _settings([" Contoso.COM ", "contoso.com", "mail.contoso.com.", "bücher.example",
                        "xn--bcher-kva.example", "contoso.onmicrosoft.com"]).tenants[0]  # fmt: skip
    assert tenant.local_domains == [
        "contoso.com",
        "mail.contoso.com",
        "bücher.example",
        "xn--bcher-kva.example",
        "contoso.onmicrosoft.com",
    ]


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        (["alice@contoso.com"], "is an address; list its domain only (contoso.com)"),
        (["contoso"], "is not a mail domain; list domains like contoso.com"),
        (["contoso..com"], "is not a mail domain"),
        (["-contoso.com"], "is not a mail domain"),
        (["contoso_mail.com"], "is not a mail domain"),
        ([""], "is not a mail domain"),
        ([42], "is not a domain"),
        ("contoso.com", "give a list of the tenant's mail domains, e.g. local_domains: [contoso"),
    ],
)  # fmt: skip
def test_bad_values_fail_naming_the_key_and_the_fix(value: Any, fix: str) -> None:
    message = _error(value)
    assert "tenants[0].local_domains" in message
    assert fix in message


def test_payload_values_and_include_original_load() -> None:
    for payload in ("raw", "envelope", "ecs", "ocsf"):
        assert _settings(payload=payload).sinks[0].payload == payload
    assert _settings(payload="ecs", include_original=True).sinks[0].include_original
    with pytest.raises(ConfigError) as info:
        _settings(payload="envelope", include_original=True)
    assert "sinks[0]" in str(info.value)
    assert "set payload: ecs or payload: ocsf, or remove include_original" in str(info.value)
