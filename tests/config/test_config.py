"""Configuration loading: defaults, ${ENV}, *_file secrets, and errors that name the key."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365collector.config import JsonlSinkSettings, StdoutSinkSettings
from o365collector.config.loader import load_settings, parse_settings
from o365collector.errors import ConfigError
from o365collector.observability.redact import redact

SECRET = "Zq9~unit.config.secret-7741"


def _config(**tenant_overrides: Any) -> dict[str, Any]:
    tenant: dict[str, Any] = {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "c0ffee00-0000-0000-0000-000000000001",
        "client_secret": SECRET,
    }
    tenant.update(tenant_overrides)
    return {"tenants": [tenant], "sinks": [{"type": "stdout"}]}


def _write(folder: Path, data: Any, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def _assert_clean(message: str, *secrets: str) -> None:
    for secret in (SECRET, *secrets):
        assert secret not in message


# --- valid ----------------------------------------------------------------------------------


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, _config()))
    tenant = settings.tenants[0]
    assert tenant.label == "contoso.onmicrosoft.com"
    assert tenant.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(tenant)
    assert tenant.streams == ["message_trace"]
    assert tenant.budget.requests == 80
    assert tenant.budget.window_secs == 300.0
    assert tenant.endpoints.graph_base() == "https://graph.microsoft.com"
    assert tenant.endpoints.scope_for_graph() == "https://graph.microsoft.com/.default"
    assert settings.collection.page_size == 5000
    assert settings.collection.settle_delay_secs == 30.0
    assert settings.collection.mode == "fresh"
    assert settings.collection.horizon_secs == 90000.0
    assert settings.collection.retry.max_elapsed_secs == 900.0
    assert settings.state_dir == tmp_path / "xdg-state" / "o365collector"  # conftest
    assert isinstance(settings.sinks[0], StdoutSinkSettings)


def test_jsonl_sink_defaults(tmp_path: Path) -> None:
    data = _config()
    data["sinks"] = [{"type": "jsonl", "path": str(tmp_path / "out.jsonl")}]
    sink = load_settings(_write(tmp_path, data)).sinks[0]
    assert isinstance(sink, JsonlSinkSettings)
    assert sink.max_bytes == 100 * 1024 * 1024
    assert sink.keep_files == 10


def test_loaded_secret_is_registered_for_redaction(tmp_path: Path) -> None:
    secret = f"fresh-{uuid.uuid4().hex}"
    assert secret in redact(f"before {secret} after")  # not registered yet
    load_settings(_write(tmp_path, _config(client_secret=secret)))
    masked = redact(f"before {secret} after")
    assert secret not in masked
    assert masked == "before *** after"


# --- ${ENV} ---------------------------------------------------------------------------------


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O365C_UNIT_SECRET", SECRET)
    monkeypatch.setenv("O365C_UNIT_TENANT", "fabrikam")
    data = _config(client_secret="${O365C_UNIT_SECRET}", tenant_id="${O365C_UNIT_TENANT}.com")
    settings = load_settings(_write(tmp_path, data))
    assert settings.tenants[0].client_secret.get_secret_value() == SECRET
    assert settings.tenants[0].tenant_id == "fabrikam.com"


def test_env_unset_names_key_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O365C_UNIT_MISSING", raising=False)
    message = _error(_write(tmp_path, _config(client_secret="${O365C_UNIT_MISSING}")))
    assert "tenants[0].client_secret" in message
    assert "O365C_UNIT_MISSING" in message
    assert "not set" in message
    _assert_clean(message)


def test_env_set_secret_never_in_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O365C_UNIT_SECRET", SECRET)
    data = _config(client_secret="${O365C_UNIT_SECRET}")
    data["collection"] = {"page_size": 0}
    message = _error(_write(tmp_path, data))
    assert "collection.page_size" in message
    _assert_clean(message)


# --- *_file secrets -------------------------------------------------------------------------


def test_client_secret_file_relative_to_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    (folder / "secrets").mkdir(parents=True)
    (folder / "secrets" / "contoso").write_text(SECRET + "\n", encoding="utf-8")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = _config()
    del data["tenants"][0]["client_secret"]
    data["tenants"][0]["client_secret_file"] = "secrets/contoso"
    settings = load_settings(_write(folder, data))
    assert settings.tenants[0].client_secret.get_secret_value() == SECRET


def test_client_secret_file_missing(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_secret"]
    data["tenants"][0]["client_secret_file"] = "nope.txt"
    message = _error(_write(tmp_path, data))
    assert "tenants[0].client_secret_file" in message
    assert str(tmp_path / "nope.txt") in message


def test_client_secret_and_file_both_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("other-secret-value-123", encoding="utf-8")
    data = _config(client_secret_file="secret.txt")
    message = _error(_write(tmp_path, data))
    assert "tenants[0].client_secret_file" in message
    assert "not both" in message
    _assert_clean(message, "other-secret-value-123")


# --- errors ---------------------------------------------------------------------------------


def test_unknown_key_lists_expected_keys(tmp_path: Path) -> None:
    data = _config()
    data["collection"] = {"page_sise": 10}
    message = _error(_write(tmp_path, data))
    assert "collection.page_sise" in message
    assert "unknown key" in message
    assert "page_size" in message
    assert "settle_delay_secs" in message
    _assert_clean(message)


def test_unknown_tenant_key_lists_tenant_keys(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, _config(tenantid="x")))
    assert "tenants[0].tenantid" in message
    assert "tenant_id" in message
    assert "client_secret" in message
    _assert_clean(message)


def test_unknown_key_in_stdout_sink_lists_stdout_keys(tmp_path: Path) -> None:
    data = _config()
    data["sinks"] = [{"type": "stdout", "pth": "x"}]
    message = _error(_write(tmp_path, data))
    assert "sinks[0].pth" in message
    assert "batch_max_events" in message
    # A stdout sink has no path, max_bytes or keep_files: do not suggest them.
    for jsonl_only in ("path", "max_bytes", "keep_files"):
        assert jsonl_only not in message.split("expected one of:")[1]


def test_misspelled_secret_key_does_not_echo_its_value(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_secret"]
    data["tenants"][0]["client_secrets"] = SECRET
    message = _error(_write(tmp_path, data))
    assert "tenants[0].client_secrets" in message
    _assert_clean(message)


def test_missing_required_key(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_id"]
    message = _error(_write(tmp_path, data))
    assert "tenants[0].client_id" in message
    assert "required" in message
    _assert_clean(message)


def test_missing_secret_key(tmp_path: Path) -> None:
    data = _config()
    del data["tenants"][0]["client_secret"]
    message = _error(_write(tmp_path, data))
    assert "tenants[0].client_secret" in message
    assert "required" in message


@pytest.mark.parametrize("bad", [12345678, ["Zq9~unit.config.secret-7741"]])
def test_secret_of_wrong_type_is_not_shown(tmp_path: Path, bad: Any) -> None:
    message = _error(_write(tmp_path, _config(client_secret=bad)))
    assert "tenants[0].client_secret" in message
    _assert_clean(message, "12345678")


def test_empty_secret_is_refused(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, _config(client_secret="")))
    assert "tenants[0].client_secret" in message


def test_missing_tenants_and_sinks(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, {"state_dir": "x"}))
    assert "tenants: required" in message
    assert "sinks: required" in message
    assert "2 problem(s)" in message


def test_empty_tenant_list(tmp_path: Path) -> None:
    data = _config()
    data["tenants"] = []
    message = _error(_write(tmp_path, data))
    assert "tenants" in message


def test_wrong_sink_type(tmp_path: Path) -> None:
    data = _config()
    data["sinks"] = [{"type": "kafka"}]
    message = _error(_write(tmp_path, data))
    assert "sinks[0]" in message
    assert "kafka" in message
    assert "jsonl" in message
    assert "stdout" in message
    _assert_clean(message)


def test_sink_without_type(tmp_path: Path) -> None:
    data = _config()
    data["sinks"] = [{"path": "x.jsonl"}]
    message = _error(_write(tmp_path, data))
    assert "sinks[0]" in message
    assert "type" in message


@pytest.mark.parametrize("page_size", [0, 6000])
def test_page_size_out_of_range(tmp_path: Path, page_size: int) -> None:
    data = _config()
    data["collection"] = {"page_size": page_size}
    message = _error(_write(tmp_path, data))
    assert "collection.page_size" in message
    assert str(page_size) in message
    _assert_clean(message)


def test_budget_requests_zero(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, _config(budget={"requests": 0})))
    assert "tenants[0].budget.requests" in message
    _assert_clean(message)


def test_poll_interval_above_max_window(tmp_path: Path) -> None:
    data = _config()
    data["collection"] = {"poll_interval_secs": 7200, "max_window_secs": 3600}
    message = _error(_write(tmp_path, data))
    assert "collection" in message
    assert "poll_interval_secs" in message


def test_fixed_delay_range_is_the_seeds(tmp_path: Path) -> None:
    data = _config()
    data["collection"] = {"mode": "fixed_delay", "fixed_delay_secs": 90001}
    message = _error(_write(tmp_path, data))
    assert "collection.fixed_delay_secs" in message
    assert "90000" in message


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    data = _config(budget={"requests": 0})
    data["collection"] = {"page_size": 6000}
    message = _error(_write(tmp_path, data))
    assert "2 problem(s)" in message
    assert "tenants[0].budget.requests" in message
    assert "collection.page_size" in message
    _assert_clean(message)


def test_duplicate_tenant_names(tmp_path: Path) -> None:
    data = _config(name="contoso")
    data["tenants"].append(dict(data["tenants"][0], client_secret="second-secret-value-99"))
    message = _error(_write(tmp_path, data))
    assert "unique" in message
    assert "contoso" in message
    # The problem is reported under the key path of the offending setting, not "(top level)".
    assert re.search(r"^  - tenants\b", message, re.MULTILINE), message
    _assert_clean(message, "second-secret-value-99")


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "tenants:\n"
        "  - tenant_id: contoso\n"
        f"    client_secret: {SECRET}: oops\n"
        "sinks: [{type: stdout}\n",
        encoding="utf-8",
    )
    message = _error(path)
    assert str(path) in message
    assert "not valid YAML" in message
    _assert_clean(message)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    message = _error(path)
    assert str(path) in message
    assert "top level" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    message = _error(path)
    assert str(path) in message
    assert "cannot read" in message


def test_parse_settings_uses_source_name() -> None:
    with pytest.raises(ConfigError, match=r"(?s)^inline: .*tenants\[0\]\.client_id"):
        parse_settings(
            {
                "tenants": [{"tenant_id": "t", "client_secret": SECRET}],
                "sinks": [{"type": "stdout"}],
            },
            source="inline",
        )
