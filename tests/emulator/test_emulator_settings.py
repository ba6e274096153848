"""settings_from_mapping, validation and the demo defaults."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from o365emulator import (
    Emulator,
    EmulatorSettings,
    TenantSpec,
    default_settings,
    settings_from_mapping,
)
from o365emulator.settings import EmulatorSettingsError

TENANT = {"tenant_id": "t-1", "client_id": "c-1", "client_secret": "s-1"}


def test_mapping_with_every_field() -> None:
    settings = settings_from_mapping(
        {
            "seed": 9,
            "tenants": [
                {
                    **TENANT,
                    "domain": "fabrikam.com",
                    "rows": 10,
                    "quota_requests": 5,
                    "quota_window_secs": 60,
                    "roles": [],
                    "service_principal": False,
                }
            ],
            "history_secs": 3600,
            "live_rows_per_sec": 0.5,
            "live_secs": 60,
            "multi_recipient_fraction": 0.1,
            "visible_delay_secs": [1, 2],
            "late_fraction": 0.0,
            "late_delay_secs": [10, 20],
            "status_change_fraction": 0.5,
            "status_change_delay_secs": [3, 4],
            "token_lifetime_secs": 60,
            "anchor": "2026-01-20T12:00:00Z",
            "max_top": 100,
            "default_top": 10,
        }
    )
    assert settings.seed == 9
    assert settings.tenants == [
        TenantSpec(
            tenant_id="t-1",
            client_id="c-1",
            client_secret="s-1",
            domain="fabrikam.com",
            rows=10,
            quota_requests=5,
            quota_window_secs=60.0,
            roles=[],
            service_principal=False,
        )
    ]
    assert settings.visible_delay_secs == (1.0, 2.0)
    assert settings.anchor == datetime(2026, 1, 20, 12, tzinfo=UTC)
    assert settings.default_top == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenants": [{**TENANT, "rowz": 1}]}, "tenants[0]: unknown key(s) rowz"),
        ({"tenants": [{**TENANT, "rows": "many"}]}, "tenants[0].rows: expected a number"),
        ({"tenants": [{**TENANT, "rows": -1}]}, "tenants[0].rows"),
        (
            {"tenants": [{"client_id": "c", "client_secret": "s"}]},
            "missing required key(s) tenant_id",
        ),
        ({"tenants": [TENANT, TENANT]}, "unique"),
        ({"tenants": {}}, "tenants: expected a list"),
        ({"late_fraction": 1.5}, "late_fraction"),
        ({"late_delay_secs": [10]}, "late_delay_secs: expected [low, high]"),
        ({"visible_delay_secs": [9, 1]}, "visible_delay_secs"),
        ({"anchor": "2026-01-20T12:00:00"}, "anchor: must carry a timezone"),
        ({"seed": 1.5}, "seed: expected an integer"),
        ({"default_top": 6000}, "default_top"),
        ({"surprise": 1}, "unknown key(s) surprise"),
    ],
)
def test_invalid_mappings_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(EmulatorSettingsError) as info:
        settings_from_mapping(data)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("command", [["o365emulator"], ["o365collector", "emulator"]])
def test_bad_settings_file_exits_2_naming_the_key(tmp_path: Path, command: list[str]) -> None:
    bad = tmp_path / "emulator.yaml"
    bad.write_text("late_fraction: 1.5\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", *command, "--config", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "late_fraction" in done.stderr and "Traceback" not in done.stderr


def test_default_settings_are_the_demo() -> None:
    settings = default_settings()
    assert len(settings.tenants) == 1
    tenant = settings.tenants[0]
    assert tenant.tenant_id == "00000000-0000-0000-0000-0000000000d1"
    assert tenant.client_secret == "demo-secret-not-for-production"
    assert tenant.rows == 20_000
    assert settings.history_secs == 3 * 86400
    assert settings.live_rows_per_sec == 2.0


def test_emulator_needs_a_tenant() -> None:
    with pytest.raises(ValueError, match="at least one tenant"):
        Emulator(EmulatorSettings())
