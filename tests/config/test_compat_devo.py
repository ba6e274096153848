"""The seed's Devo config.yaml and cloud-collector JSON load and map onto the native model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from o365collector.config.compat import CompatSettings, collector_root, detect_layout
from o365collector.config.credentials import OFFICE_PUBLIC_CLIENT_ID, PasswordCredentialSettings
from o365collector.config.loader import load_settings, parse_settings
from o365collector.config.sinks import DevoSinkSettings, StdoutSinkSettings
from o365collector.errors import ConfigError
from support.compat import (
    DEVO_HOST,
    DOMAIN,
    PASSWORD,
    SEED_CLOUD_JSON,
    USERNAME,
    Layout,
    seed_yaml,
)

SEED_STREAMS = [
    "rws.MailTraffic",
    "rws.DlpDetailReport",
    "rws.SpoofMailReport",
    "rws.MailTrafficATP",
    "message_trace",
    "rws.DlpDetectionsReport",
]


def test_seed_config_yaml_maps_to_native_settings(tmp_path) -> None:
    layout = Layout(tmp_path / "office365")
    settings = load_settings(layout.write(seed_yaml()))
    assert isinstance(settings, CompatSettings)
    assert settings.compat_layout == "devo config.yaml"
    assert settings.state_dir == layout.root / "state"
    (tenant,) = settings.tenants
    assert tenant.tenant_id == DOMAIN
    credential = tenant.credential
    assert isinstance(credential, PasswordCredentialSettings)
    assert credential.username == USERNAME
    assert credential.password.get_secret_value() == PASSWORD
    assert tenant.client_id == OFFICE_PUBLIC_CLIENT_ID
    assert [str(s) for s in tenant.streams] == SEED_STREAMS
    collection = settings.collection
    assert collection.mode == "fixed_delay"
    for stream in tenant.streams:  # each service's own values, as stream options
        assert stream.options.poll_interval_secs == 60
        assert stream.options.settle_delay_secs == 60
    (sink,) = settings.sinks
    assert isinstance(sink, DevoSinkSettings)
    assert (sink.name, sink.host, sink.port, sink.transport) == ("devo_1", DEVO_HOST, 443, "tls")
    assert sink.ca_file == layout.root / "certs" / "chain.crt"
    assert sink.cert_file == layout.root / "certs" / "contoso.crt"
    assert sink.key_file == layout.root / "certs" / "contoso.key"
    assert sink.tables["message_trace"] == "cloud.office365.reporting.messagetrace"
    assert sink.tables["rws.MailTrafficATP"] == "cloud.office365.reporting.atptraffic"
    assert sink.tables["rws.DlpDetectionsReport"] == "cloud.office365.reporting.dlp"
    markers = {(m.tenant, m.stream, m.marker) for m in settings.reset_markers()}
    assert markers == {(DOMAIN, s, "2024-05-01") for s in SEED_STREAMS}


def test_aggregated_reports_keep_their_own_delay(tmp_path) -> None:
    layout = Layout(tmp_path)
    text = seed_yaml(delay_in_seconds="7200")
    text = text.replace(
        "office365_reporting_MessageTrace_service:\n"
        "      request_period_in_seconds: 60\n"
        "      reset_persistence_auth: 2024-05-01\n"
        "      override_time_delay_in_seconds: 7200",
        "office365_reporting_MessageTrace_service:\n"
        "      request_period_in_seconds: 30\n"
        "      override_time_delay_in_seconds: 3600",
    )
    settings = load_settings(layout.write(text))
    streams = {str(s): s.options for s in settings.tenants[0].streams}
    assert streams["rws.MailTraffic"].settle_delay_secs == 7200
    assert streams["rws.DlpDetailReport"].settle_delay_secs == 7200  # not folded
    assert streams["message_trace"].settle_delay_secs == 3600
    assert streams["message_trace"].poll_interval_secs == 30
    assert streams["rws.DlpDetailReport"].poll_interval_secs == 60


def test_services_nested_in_the_input_and_defaults(tmp_path) -> None:
    layout = Layout(tmp_path)
    data = yaml.safe_load(seed_yaml())
    data["inputs"]["office365_reporting_message"]["services"] = {
        "office365_reporting_MessageTrace_service": None  # blank: every default
    }
    del data["inputs"]["services"]
    del data["inputs"]["office365_reporting_message"]["requests_per_second"]
    settings = parse_settings(data, base_dir=layout.root / "config")
    (stream,) = settings.tenants[0].streams
    assert stream == "message_trace"
    assert (stream.options.poll_interval_secs, stream.options.settle_delay_secs) == (60, 90000)
    assert settings.collection.fixed_delay_secs == 90000
    assert settings.collection.poll_interval_secs == 60
    assert settings.tenants[0].budget.requests == 80  # Microsoft's quota share
    assert settings.tenants[0].budget.requests_per_second is None  # no cap of its own


def test_start_time_sets_the_initial_lookback(tmp_path) -> None:
    layout = Layout(tmp_path)
    data = yaml.safe_load(seed_yaml())
    start = datetime.now(UTC) - timedelta(days=3)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S.%f")
    data["inputs"]["services"]["office365_reporting_MailTraffic_service"]["start_time"] = stamp
    before = datetime.now(UTC)
    settings = parse_settings(data, base_dir=layout.root / "config")
    after = datetime.now(UTC)
    # The lookback is "now - start_time" at some instant during the parse: ordering, not
    # a tolerance on how long the parse took. It is that service's only.
    streams = {str(s): s.options for s in settings.tenants[0].streams}
    lookback = streams["rws.MailTraffic"].initial_lookback_secs
    assert lookback is not None
    assert (before - start).total_seconds() <= lookback <= (after - start).total_seconds()
    assert streams["message_trace"].initial_lookback_secs is None
    assert settings.collection.initial_lookback_secs == 86400


def test_unquoted_yaml_start_time_is_read_as_utc(tmp_path) -> None:
    layout = Layout(tmp_path)
    start = datetime.now(UTC) - timedelta(hours=5)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = seed_yaml().replace(
        "    requests_per_second: 10\n", f"    requests_per_second: 10\n    start_time: {stamp}\n"
    )
    assert f"start_time: {stamp}" in text
    path = layout.write(text)
    before = datetime.now(UTC)
    settings = load_settings(path)
    after = datetime.now(UTC)
    # read as UTC: on a host not at UTC, a local-time reading would fall outside the bracket
    lookback = settings.collection.initial_lookback_secs
    assert (before - start).total_seconds() <= lookback <= (after - start).total_seconds()


def test_cloud_collector_json_loads(tmp_path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(SEED_CLOUD_JSON), encoding="utf-8")
    settings = load_settings(path)
    assert isinstance(settings, CompatSettings)
    assert settings.compat_layout == "devo cloud collector"
    assert settings.tenants[0].tenant_id == DOMAIN
    assert [str(s) for s in settings.tenants[0].streams] == ["message_trace"]
    assert [type(s) for s in settings.sinks] == [StdoutSinkSettings]
    assert settings.state_dir == tmp_path / "state"


def test_devo_sink_added_to_cloud_parameters_gets_the_seed_tables(tmp_path) -> None:
    layout = Layout(tmp_path)
    certs = layout.root / "certs"
    data = {
        **SEED_CLOUD_JSON,
        "o365collector": {
            "tenant": {"streams": ["message_trace", "rws.MailTrafficATP"]},
            "sinks": [
                {
                    "type": "devo",
                    "region": "us",
                    "cert_file": str(certs / "contoso.crt"),
                    "key_file": str(certs / "contoso.key"),
                    "ca_file": str(certs / "chain.crt"),
                    "tables": {"message_trace": "my.app.trace"},
                }
            ],
        },
    }
    settings = parse_settings(data, base_dir=layout.root / "config")
    (sink,) = settings.sinks
    assert isinstance(sink, DevoSinkSettings)
    assert sink.tables == {
        "message_trace": "my.app.trace",
        "rws.MailTrafficATP": "cloud.office365.reporting.atptraffic",
    }


def test_override_block_adds_native_keys(tmp_path) -> None:
    layout = Layout(tmp_path)
    native = {
        "tenant": {"cloud": "gcc_high", "name": "contoso"},
        "collection": {"mode": "fresh"},
        "outputs": {"devo_1": {"host": "127.0.0.1", "tls_server_name": DEVO_HOST}},
        "sinks": [{"type": "jsonl", "path": str(tmp_path / "e.jsonl")}],
    }
    settings = load_settings(layout.write(seed_yaml(), native))
    tenant = settings.tenants[0]
    assert tenant.label == "contoso"
    assert "rws.MessageTrace" in tenant.streams  # no Graph message trace in GCC High
    assert "message_trace" not in tenant.streams
    assert settings.collection.mode == "fresh"
    devo, jsonl = settings.sinks
    assert isinstance(devo, DevoSinkSettings)
    assert (devo.host, devo.tls_server_name) == ("127.0.0.1", DEVO_HOST)
    assert devo.tables["rws.MessageTrace"] == "cloud.office365.reporting.messagetrace"
    assert jsonl.type == "jsonl"


def test_native_files_are_not_touched() -> None:
    native = {"tenants": [], "sinks": [], "tenant_id": "x"}
    assert detect_layout(native) is None
    with pytest.raises(ConfigError) as info:
        parse_settings(native)
    assert "tenants: " in str(info.value)  # native messages, native paths
    assert "tenant_id: unknown key" in str(info.value)


def test_collector_root_is_the_parent_of_a_config_folder(tmp_path) -> None:
    assert collector_root(tmp_path / "p" / "config") == tmp_path / "p"
    assert collector_root(tmp_path / "p") == tmp_path / "p"


def test_placeholders_left_in_are_named(tmp_path) -> None:
    layout = Layout(tmp_path)
    text = seed_yaml().replace("id: 45678", "id: <input_id>")
    with pytest.raises(ConfigError) as info:
        load_settings(layout.write(text))
    assert "inputs.office365_reporting_message.id: still the placeholder <input_id>" in str(
        info.value
    )


def test_native_validation_errors_quote_the_seed_parameter(tmp_path) -> None:
    layout = Layout(tmp_path)
    (layout.root / "certs" / "chain.crt").unlink()
    with pytest.raises(ConfigError) as info:
        load_settings(layout.write(seed_yaml()))
    assert "outputs.devo_1.config" in str(info.value)
    assert "chain.crt does not exist" in str(info.value)
    assert "sinks[0]" not in str(info.value)


def test_mixed_layouts_are_refused(tmp_path) -> None:
    data = {**yaml.safe_load(seed_yaml()), "intake_key": "k" * 32}
    with pytest.raises(ConfigError, match="mixes Devo keys"):
        parse_settings(data, base_dir=tmp_path)
