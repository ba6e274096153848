"""Sink settings: validators with clear messages, the factory, secrets kept out of text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from sinks_support import Certs, make_event, make_events, sink_clock

from o365collector.config.loader import parse_settings
from o365collector.config.sinks import SinkSettings, sink_types
from o365collector.errors import ConfigError
from o365collector.observability.redact import redact
from o365collector.sinks.base import DeliveryStatus
from o365collector.sinks.factory import build_sink
from o365collector.sinks.jsonl import JsonlSink

ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSettings)
TENANT = {
    "tenant_id": "11111111-2222-3333-4444-555555555555",
    "client_id": "66666666-7777-8888-9999-000000000000",
    "client_secret": "tenant-secret-value-1",
}


def test_every_type_is_accepted_and_buildable(certs: Certs, tmp_path: Path) -> None:
    tls = {"ca_file": certs.ca_file, "cert_file": certs.client_cert, "key_file": certs.client_key}
    configs = [
        {"type": "jsonl", "path": tmp_path / "x.jsonl"},
        {"type": "stdout"},
        {"type": "devo", "region": "us", **tls},
        {"type": "syslog", "host": "h", "transport": "tls", **tls},
        {"type": "sekoia", "intake_key": "k-000001"},
        {"type": "splunk_hec", "url": "https://splunk:8088", "token": "t-000001"},
        {"type": "elasticsearch", "url": "https://es:9200"},
        {"type": "http", "url": "https://collector.example/in"},
    ]
    assert sorted(sink_types()) == sorted(c["type"] for c in configs)
    for config in configs:
        sink = build_sink(ADAPTER.validate_python(config), sink_clock())
        assert sink.name == config["type"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "devo"}, "either region"),
        ({"type": "devo", "region": "eu", "host": "x", "tls_verify": False}, "either region"),
        ({"type": "devo", "region": "eu", "transport": "tcp"}, "in-house relay"),
        ({"type": "devo", "host": "relay", "transport": "tcp", "tls_verify": False},
         "transport tcp is plain TCP"),
        ({"type": "devo", "region": "eu", "tag": "not a table", "tls_verify": False}, "tag"),
        ({"type": "devo", "region": "eu", "tables": {"message_trace": "bad table"},
          "tls_verify": False}, "not Devo table names"),
        ({"type": "devo", "region": "mars", "tls_verify": False}, "region"),
        ({"type": "splunk_hec", "url": "https://s:8088", "token": "t", "ack": True,
          "channel": "nope"}, "GUID"),
        ({"type": "splunk_hec", "url": "https://s:8088", "token": "t",
          "channel": "0e8a0f5e-3b6b-4c37-a3c0-5b7f0a4a1c11"}, "only with ack: true"),
        ({"type": "http", "url": "https://x", "headers": {"Content-Length": "1"}},
         "set by the sink"),
        ({"type": "http", "url": "https://x", "headers": {"Authorization": "x"}, "token": "t"},
         "conflicts"),
        ({"type": "http", "url": "https://x", "headers": {"bad name": "x"}}, "HTTP token"),
        ({"type": "http", "url": "https://x", "token": "t", "username": "u", "password": "p"},
         "either token"),
        ({"type": "sekoia", "intake_key": "k", "max_event_bytes": 300_000}, "max_event_bytes"),
        ({"type": "sekoia", "intake_key": "k", "base_url": "not a url"}, "base_url"),
        ({"type": "stdout", "payload": "cef"}, "payload"),
        ({"type": "syslog", "host": "h", "transport": "tls", "cert_file": "/nonexistent.pem",
          "key_file": "/nonexistent.key"}, "does not exist"),
    ],
)  # fmt: skip
def test_invalid_settings_say_what_to_fix(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python(config)
    assert message in str(caught.value)


def test_tls_file_combinations(certs: Certs) -> None:
    base = {"type": "syslog", "host": "h", "transport": "tls"}
    cases = [
        ({"cert_file": certs.client_cert}, "together"),
        ({"pkcs12_file": certs.ca_file, "cert_file": certs.client_cert,
          "key_file": certs.client_key}, "either pkcs12_file"),
        ({"private_key_password": "x"}, "needs key_file"),
    ]  # fmt: skip
    for extra, message in cases:
        with pytest.raises(ValidationError) as caught:
            ADAPTER.validate_python({**base, **extra})
        assert message in str(caught.value)


def test_loader_reads_secret_files_and_never_prints_them(tmp_path: Path) -> None:
    key_file = tmp_path / "intake.key"
    key_file.write_text("sekoia-key-from-file-77\n")
    settings = parse_settings(
        {"tenants": [TENANT], "sinks": [{"type": "sekoia", "intake_key_file": str(key_file)}]}
    )
    sink_settings = settings.sinks[0]
    assert "sekoia-key-from-file-77" not in repr(sink_settings)
    build_sink(sink_settings, sink_clock())
    assert redact("sent sekoia-key-from-file-77 to intake") == "sent *** to intake"
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {"tenants": [TENANT],
             "sinks": [{"type": "splunk_hec", "url": "nope", "token": "hec-visible-token-9"}]}
        )  # fmt: skip
    assert "hec-visible-token-9" not in str(caught.value)
    assert "sinks[0].url" in str(caught.value)


def test_sink_names_must_be_unique_across_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sink names must be unique"):
        parse_settings(
            {"tenants": [TENANT],
             "sinks": [{"type": "stdout", "name": "siem"},
                       {"type": "http", "name": "siem", "url": "https://x/in"}]}
        )  # fmt: skip


async def test_jsonl_payload_raw_and_envelope(tmp_path: Path) -> None:
    raw = build_sink(
        ADAPTER.validate_python({"type": "jsonl", "path": tmp_path / "r.jsonl", "payload": "raw"})
    )
    wrapped = build_sink(ADAPTER.validate_python({"type": "jsonl", "path": tmp_path / "e.jsonl"}))
    assert isinstance(raw, JsonlSink)
    events = [*make_events(2), make_event(2, huge=2**70)]  # orjson refuses; stdlib writes it
    for sink in (raw, wrapped):
        await sink.start()
        assert (await sink.send(events)).status is DeliveryStatus.DELIVERED
        await sink.close()
    raw_lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    env_lines = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert raw_lines == [e.record for e in events]
    assert [x["record"] for x in env_lines] == [e.record for e in events]
    assert {x["stream"] for x in env_lines} == {"message_trace"}
