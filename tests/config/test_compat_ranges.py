"""Every Devo parameter is checked with the seed's type and range; errors quote its name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from o365collector.config.loader import parse_settings
from o365collector.errors import ConfigError
from support.compat import PASSWORD, Layout, seed_yaml

INPUT = "inputs.office365_reporting_message"
TRAFFIC = "inputs.services.office365_reporting_MailTraffic_service"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%f")


CASES = [
    ("globals.id", 123456, "globals.id: must be a number of 1 to 5 digits (got 123456)"),
    ("globals.name", "o365-report", "globals.name: must be 1 to 10 characters long"),
    ("globals.name", None, "globals.name: required"),
    ("globals.debug", "verbose", "globals.debug: must be true or false (got 'verbose')"),
    ("globals.persistence.type", "redis", "globals.persistence.type: must be filesystem"),
    (
        "outputs.devo_1.config.address",
        "collector.example.com",
        "outputs.devo_1.config.address: must be a Devo collector address: "
        "collector-us.devo.io or collector-eu.devo.io",
    ),
    ("outputs.devo_1.config.port", 0, "outputs.devo_1.config.port: must be between 1 and 65535"),
    ("outputs.devo_1.config.type", "UDP", "outputs.devo_1.config.type: must be SSL"),
    ("outputs.devo_1.config.chain", "c.c", "config.chain: must be 4 to 20 characters long"),
    ("outputs.devo_1.config.cert", "c" * 21, "config.cert: must be 4 to 20 characters long"),
    ("outputs.devo_1.config.key", "k.k", "config.key: must be 4 to 20 characters long"),
    ("outputs.devo_1.type", "console", "outputs.devo_1.type: must be devo_platform"),
    (f"{INPUT}.id", "123456", f"{INPUT}.id: must be a number of 1 to 5 digits"),
    (f"{INPUT}.id", None, f"{INPUT}.id: required"),
    (f"{INPUT}.enabled", "yes", f"{INPUT}.enabled: must be true or false (got 'yes')"),
    (f"{INPUT}.requests_per_second", 0, f"{INPUT}.requests_per_second: must be at least 1 (got 0)"),
    (f"{INPUT}.credentials.username", "reporter", "username: must be an email address"),
    (f"{INPUT}.credentials.password", None, f"{INPUT}.credentials.password: required"),
    (
        f"{TRAFFIC}.request_period_in_seconds",
        0,
        f"{TRAFFIC}.request_period_in_seconds: must be between 1 and 864000 (got 0)",
    ),
    (
        f"{TRAFFIC}.override_time_delay_in_seconds",
        0,
        f"{TRAFFIC}.override_time_delay_in_seconds: must be between 1 and 90000 (got 0)",
    ),
    (
        f"{TRAFFIC}.override_time_delay_in_seconds",
        90001,
        f"{TRAFFIC}.override_time_delay_in_seconds: must be between 1 and 90000 (got 90001)",
    ),
    (
        f"{TRAFFIC}.reset_persistence_auth",
        "01/05/2024",
        f"{TRAFFIC}.reset_persistence_auth: must be a date YYYY-MM-DD (got '01/05/2024')",
    ),
    (f"{TRAFFIC}.start_time", _ago(days=12), f"{TRAFFIC}.start_time: must not be older than 11"),
    (f"{TRAFFIC}.start_time", _ago(days=-1), f"{TRAFFIC}.start_time: must not be in the future"),
    (f"{TRAFFIC}.start_time", "yesterday", f"{TRAFFIC}.start_time: must be an RFC 3339 time"),
    (f"{TRAFFIC}.perod", 5, f"{TRAFFIC}.perod: unknown parameter"),
    ("inputs.services.office365_reporting_Mail_service", {}, "unknown service (expected one of"),
    ("globals.extra", 1, "globals.extra: unknown parameter"),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_out_of_range_parameter_is_named_with_its_range(tmp_path, path, value, expected) -> None:
    layout = Layout(tmp_path)
    data = yaml.safe_load(seed_yaml())
    _set(path, value)(data)
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=layout.root / "config")
    message = str(info.value)
    assert expected in message
    assert message.count("\n  - ") == 1, message  # exactly this one problem
    assert PASSWORD not in message


def test_nested_services_path_is_quoted_as_written(tmp_path) -> None:
    data = yaml.safe_load(seed_yaml())
    services = data["inputs"].pop("services")
    services["office365_reporting_MailTraffic_service"]["override_time_delay_in_seconds"] = 0
    data["inputs"]["office365_reporting_message"]["services"] = services
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=Layout(tmp_path).root / "config")
    assert (
        "inputs.office365_reporting_message.services.office365_reporting_MailTraffic_service"
        ".override_time_delay_in_seconds: must be between 1 and 90000 (got 0)"
    ) in str(info.value)


def test_a_password_of_the_wrong_type_is_never_echoed(tmp_path) -> None:
    data = yaml.safe_load(seed_yaml())
    data["inputs"]["office365_reporting_message"]["credentials"]["password"] = 98765432
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=Layout(tmp_path).root / "config")
    assert "credentials.password" in str(info.value)
    assert "98765432" not in str(info.value)


def test_cli_exits_2_and_keeps_the_password_out(tmp_path) -> None:
    layout = Layout(tmp_path)
    path = layout.write(seed_yaml(delay_in_seconds="0"))
    result = subprocess.run(
        [sys.executable, "-m", "o365collector", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "override_time_delay_in_seconds: must be between 1 and 90000 (got 0)" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
