"""Sekoia's trigger parameters and seed 000's tenant_id/client_id/client_secret load natively."""

from __future__ import annotations

import pytest

from o365collector.config.compat import CompatSettings
from o365collector.config.credentials import PasswordCredentialSettings
from o365collector.config.loader import parse_settings
from o365collector.config.sinks import SekoiaSinkSettings, StdoutSinkSettings
from o365collector.errors import ConfigError
from support.compat import APP_TENANT, CLIENT_ID, CLIENT_SECRET, DOMAIN, PASSWORD, USERNAME

INTAKE_KEY = "Ik-0123456789abcdef0123456789abcdef"


def test_sekoia_trigger_parameters(tmp_path) -> None:
    data = {
        "account_name": USERNAME,
        "account_password": PASSWORD,
        "intake_key": INTAKE_KEY,
        "intake_server": "https://intake.fra2.sekoia.io",
        "frequency": 120,
        "timedelta": 5,
        "start_time": 2,
        "chunk_size": 500,
    }
    settings = parse_settings(data, base_dir=tmp_path)
    assert isinstance(settings, CompatSettings)
    assert settings.compat_layout == "sekoia"
    (tenant,) = settings.tenants
    assert tenant.tenant_id == DOMAIN
    assert isinstance(tenant.credential, PasswordCredentialSettings)
    assert tenant.credential.username == USERNAME
    assert [str(s) for s in tenant.streams] == ["message_trace"]
    (sink,) = settings.sinks
    assert isinstance(sink, SekoiaSinkSettings)
    assert sink.intake_key.get_secret_value() == INTAKE_KEY
    assert str(sink.base_url).rstrip("/") == "https://intake.fra2.sekoia.io"
    assert sink.batch_max_events == 500
    collection = settings.collection
    assert collection.mode == "fresh"  # Sekoia's timedelta is the settle delay, re-sweeps kept
    assert collection.poll_interval_secs == 120
    assert collection.settle_delay_secs == 300
    assert collection.initial_lookback_secs == 7200
    assert settings.state_dir == tmp_path / "state"
    assert settings.reset_markers() == []


def test_sekoia_oauth_trigger_and_default_intake(tmp_path) -> None:
    data = {
        "tenant_id": APP_TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "intake_key": INTAKE_KEY,
    }
    settings = parse_settings(data, base_dir=tmp_path)
    (sink,) = settings.sinks
    assert isinstance(sink, SekoiaSinkSettings)
    assert str(sink.base_url).rstrip("/") == "https://intake.sekoia.io"
    assert settings.tenants[0].effective_credential().type == "client_secret"


def test_seed_000_client_secret_keys(tmp_path) -> None:
    data = {"tenant_id": APP_TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    settings = parse_settings(data, base_dir=tmp_path / "config")
    assert isinstance(settings, CompatSettings)
    assert settings.compat_layout == "tenant_id/client_id/client_secret"
    (tenant,) = settings.tenants
    assert (tenant.tenant_id, tenant.client_id) == (APP_TENANT, CLIENT_ID)
    assert tenant.client_secret is not None
    assert tenant.client_secret.get_secret_value() == CLIENT_SECRET
    assert [type(s) for s in settings.sinks] == [StdoutSinkSettings]
    assert settings.state_dir == tmp_path / "state"  # beside config/, as in the seed's layout
    assert settings.collection.mode == "fresh"


def test_seed_000_with_native_sinks(tmp_path) -> None:
    data = {
        "tenant_id": APP_TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "o365collector": {
            "state_dir": str(tmp_path / "st"),
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "out.jsonl")}],
        },
    }
    settings = parse_settings(data, base_dir=tmp_path)
    assert [s.type for s in settings.sinks] == ["jsonl"]
    assert settings.state_dir == tmp_path / "st"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"account_name": "bob", "account_password": PASSWORD}, "account_name: must be an email"),
        ({"account_name": USERNAME}, "account_password: required"),
        ({"tenant_id": APP_TENANT, "client_id": CLIENT_ID}, "client_secret: required"),
        (
            {"account_name": USERNAME, "account_password": PASSWORD, "client_secret": "s" * 9},
            "give account_name/account_password or client_id/client_secret, not both",
        ),
        (
            {"account_name": USERNAME, "account_password": PASSWORD, "frequency": 0},
            "frequency: must be between 1 and 864000 (got 0)",
        ),
        (
            {"account_name": USERNAME, "account_password": PASSWORD, "intake_server": "x"},
            "intake_server: goes with intake_key",
        ),
        (
            {"account_name": USERNAME, "account_password": PASSWORD, "intake_key": INTAKE_KEY,
             "intake_server": "not a url"},
            "intake_server: ",
        ),
        (
            {"tenant_id": APP_TENANT, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
             "o365collector": {"collection": {"page_size": 0}}},
            "o365collector.collection.page_size: ",
        ),
    ],
)  # fmt: skip
def test_flat_layout_errors_quote_the_parameter(tmp_path, data, expected) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=tmp_path)
    message = str(info.value)
    assert expected in message
    for secret in (PASSWORD, CLIENT_SECRET, INTAKE_KEY):
        assert secret not in message
