"""Issue 17 (1–3): every problem at once, identifiers checked by name, state in XDG's folder."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365collector.config.credentials import OFFICE_PUBLIC_CLIENT_ID
from o365collector.config.loader import load_settings, parse_settings
from o365collector.config.model import default_state_dir
from o365collector.errors import ConfigError
from o365collector.observability.redact import redact, register_secret
from support.compat import SEED_CLOUD_JSON

TENANT = "3f2a1b0c-1111-4222-8333-444455556666"
CLIENT = "9e8d7c6b-1111-4222-8333-444455557777"
SECRET = "Zq9~first-hour.secret-5521"


def _config(**tenant: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    base.update(tenant)
    return {"tenants": [base], "sinks": [{"type": "stdout"}]}


def _error(data: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, **kwargs)
    return str(info.value)


def _problems(message: str) -> dict[str, str]:
    """``{key path: problem}`` of a ConfigError's ``  - path: problem`` lines."""
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(lines) == len(message.splitlines()) - 1, message  # one head line, then problems
    return dict(line[4:].split(": ", 1) for line in lines)  # type: ignore[misc]


# --- 1. every problem at once -----------------------------------------------------------------


def _broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two unset variables, a bad value and a missing file."""
    monkeypatch.delenv("O365_T17_SECRET", raising=False)
    monkeypatch.delenv("O365_T17_SPLUNK", raising=False)
    data = _config(
        client_id="my-app",
        client_secret="${O365_T17_SECRET}",
        ca_bundle=str(tmp_path / "missing-ca.pem"),
    )
    data["sinks"] = [
        {"type": "splunk_hec", "url": "https://splunk.example:8088", "token": "${O365_T17_SPLUNK}"}
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_unset_variables_bad_value_and_missing_file_in_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_broken(tmp_path, monkeypatch))
    message = str(info.value)
    problems = _problems(message)
    assert set(problems) == {
        "tenants[0].client_secret",
        "tenants[0].client_id",
        "tenants[0].ca_bundle",
        "sinks[0].token",
    }, message
    assert "(4 problem(s))" in message
    assert (
        "O365_T17_SECRET is not set; export O365_T17_SECRET="
        in problems["tenants[0].client_secret"]
    )
    assert "O365_T17_SPLUNK is not set" in problems["sinks[0].token"]
    assert problems["tenants[0].client_id"].startswith("not a client ID; give the Application")
    assert problems["tenants[0].ca_bundle"] == (
        f"no such file; give the path of a PEM CA bundle (got '{tmp_path / 'missing-ca.pem'}')"
    )
    for problem in problems.values():
        assert "; " in problem, problem  # what is wrong; how to fix it
    assert "Value error" not in message
    assert "error," not in message


def test_masking_leaves_the_problems_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_secret(SECRET)
    with pytest.raises(ConfigError) as info:
        load_settings(_broken(tmp_path, monkeypatch))
    message = str(info.value)
    assert redact(message) == message
    assert "***" not in redact(message)


def test_unset_variable_is_one_problem_not_also_required() -> None:
    data = _config(client_secret="${O365_T17_NEVER_SET}", tenant_id="${O365_T17_NEVER_SET_2}")
    problems = _problems(_error(data))
    assert set(problems) == {"tenants[0].client_secret", "tenants[0].tenant_id"}
    assert all("is not set" in p for p in problems.values()), problems


def test_unreadable_secret_file_is_one_problem(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_secret"]
    data["tenants"][0]["client_secret_file"] = "nowhere/secret.txt"
    data["tenants"][0]["client_id"] = "app"
    problems = _problems(_error(data, base_dir=tmp_path))
    assert set(problems) == {"tenants[0].client_secret_file", "tenants[0].client_id"}, problems
    assert "cannot read" in problems["tenants[0].client_secret_file"]


def test_unset_variable_in_a_secret_file_path_is_named_once(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_secret"]
    data["tenants"][0]["client_secret_file"] = "${O365_T17_SECRETS_DIR}/contoso"
    problems = _problems(_error(data, base_dir=tmp_path))
    assert list(problems) == ["tenants[0].client_secret_file"]
    assert "O365_T17_SECRETS_DIR is not set" in problems["tenants[0].client_secret_file"]


def test_flat_layout_lists_unset_variable_and_bad_value_unmasked() -> None:
    message = _error(
        {"tenant_id": "contoso", "client_id": CLIENT, "client_secret": "${O365_T17_FLAT}"}
    )
    problems = _problems(message)
    assert set(problems) == {"client_secret", "tenant_id"}, message
    assert "O365_T17_FLAT is not set" in problems["client_secret"]
    assert problems["tenant_id"].startswith("not a tenant ID;")
    assert redact(message) == message


@pytest.mark.parametrize(
    "line",
    [
        "tenants[0].client_secret: required; add this key",
        "  - client_secret: environment variable X is not set; export X=...",
        "  - account_password: required",
        "inputs.o365.credentials.password: must not be empty",
        "sinks[1].intake_key: unknown key",
        "tenants[0].client_secret: export CONTOSO_CLIENT_SECRET=... before starting",
        "  - password: export DEVO_PASSWORD=… before starting",
    ],
)
def test_key_paths_are_not_taken_for_credentials(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("client_secret: abc123", "client_secret: ***"),
        ("sent password: hunter2 twice", "sent password: *** twice"),
        ("cfg.password=hunter2", "cfg.password=***"),
        ("headers.authorization: Bearer eyJ.x.y", "headers.authorization: ***"),
        ('tenants[0].client_secret: "abc"', 'tenants[0].client_secret: "***"'),
        ("password=...x", "password=***"),
        ("password=....", "password=...."),
    ],
)
def test_keyed_values_are_still_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


# --- 2. identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant_id", [TENANT, TENANT.upper(), "contoso.onmicrosoft.com", "contoso.com"]
)
def test_tenant_id_guid_or_verified_domain(tenant_id: str) -> None:
    assert parse_settings(_config(tenant_id=tenant_id)).tenants[0].tenant_id == tenant_id


@pytest.mark.parametrize(
    "tenant_id", ["contoso", "t", "my tenant", TENANT[:-1], f"{{{TENANT}}}", "https://contoso.com"]
)
def test_tenant_id_refused_by_name_with_an_example(tenant_id: str) -> None:
    problems = _problems(_error(_config(tenant_id=tenant_id)))
    assert list(problems) == ["tenants[0].tenant_id"]
    problem = problems["tenants[0].tenant_id"]
    assert problem.startswith("not a tenant ID;"), problem
    assert re.search(r"e\.g\. tenant_id: [0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", problem)
    assert "contoso.onmicrosoft.com" in problem


@pytest.mark.parametrize("client_id", ["c", "my-app", "contoso.onmicrosoft.com", CLIENT + "0"])
def test_client_id_must_be_a_guid(client_id: str) -> None:
    problems = _problems(_error(_config(client_id=client_id)))
    assert list(problems) == ["tenants[0].client_id"]
    problem = problems["tenants[0].client_id"]
    assert problem.startswith("not a client ID;"), problem
    assert re.search(r"e\.g\. client_id: [0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", problem)


def test_password_credential_keeps_the_public_client_default() -> None:
    data = _config(credential={"type": "password", "username": "a@contoso.com", "password": "pw"})
    del data["tenants"][0]["client_id"], data["tenants"][0]["client_secret"]
    data["tenants"][0]["tenant_id"] = "contoso.com"
    assert parse_settings(data).tenants[0].client_id == OFFICE_PUBLIC_CLIENT_ID


# --- 3. where state lives --------------------------------------------------------------------


def test_state_dir_defaults_to_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert parse_settings(_config()).state_dir == tmp_path / "xdg" / "o365collector"


@pytest.mark.parametrize("xdg", [None, "", "relative/state"])
def test_state_dir_falls_back_to_local_state(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME")
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    expected = tmp_path / "home" / ".local" / "state" / "o365collector"
    assert default_state_dir() == expected
    assert parse_settings(_config()).state_dir == expected


def test_state_dir_environment_variable_wins_over_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O365COLLECTOR_STATE_DIR", "/var/lib/o365collector")
    assert parse_settings(_config()).state_dir == Path("/var/lib/o365collector")


def test_state_dir_in_the_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O365COLLECTOR_STATE_DIR", "/var/lib/o365collector")
    data = {**_config(), "state_dir": str(tmp_path / "mine")}
    assert parse_settings(data).state_dir == tmp_path / "mine"


def test_devo_layout_lists_unset_variables_with_its_own_problems() -> None:
    data = copy.deepcopy(SEED_CLOUD_JSON)
    message_input = data["office365_reporting_message"]
    message_input["credentials"] = {
        "username": "${O365_T17_DEVO_USER}",
        "password": "${O365_T17_DEVO_PASSWORD}",
    }
    message_input["requests_per_second"] = -1
    message = _error(data)
    problems = _problems(message)
    base = "office365_reporting_message"
    assert set(problems) == {
        f"{base}.credentials.username",
        f"{base}.credentials.password",
        f"{base}.requests_per_second",
    }, message
    assert "O365_T17_DEVO_USER is not set" in problems[f"{base}.credentials.username"]
    assert "O365_T17_DEVO_PASSWORD is not set" in problems[f"{base}.credentials.password"]
    assert redact(message) == message
