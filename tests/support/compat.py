"""Helpers of the compatibility tests: the seed's config.yaml, folders, certificates, receivers."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import trustme
import yaml

from o365emulator import Emulator, EmulatorSettings, TenantSpec
from support.clock import FakeClock
from support.rws import RWS_PATH

USERNAME = "reporter@contoso.onmicrosoft.com"
PASSWORD = "Pa55-Wörd~never-echoed-42"
DOMAIN = "contoso.onmicrosoft.com"
APP_TENANT = "7d1b2c3e-0000-4000-8000-00000000c0a7"
CLIENT_ID = "5f6a7b8c-0000-4000-8000-00000000c0a7"
CLIENT_SECRET = "S3cr3t~Compat-Value.0123456789"
DEVO_HOST = "collector-eu.devo.io"

# Seed 004, "Editing the config.yaml file", verbatim (services sit under `inputs` there).
SEED_CONFIG_YAML = """\
globals:
  debug: true
  id: <collector_id>
  name: <collector_name>
  persistence:
    type: filesystem
    config:
      directory_name: state
  multiprocessing: <multiprocessing_mode>

outputs:
  devo_1:
    type: devo_platform
    config:
      address: <devo_address>
      port: 443
      type: SSL
      chain: <chain_filename>
      cert: <cert_filename>
      key: <key_filename>
inputs:
  office365_reporting_message:
    id: <input_id>
    enabled: <input_status>
    requests_per_second: <request_per_seconds>
    credentials:
      username: <creds_username>
      password: <creds_password>
  services:
    office365_reporting_MailTraffic_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
    office365_reporting_DlpDetail_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
    office365_reporting_SpoofMail_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
    office365_reporting_AdvancedThreatProtectionTraffic_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
    office365_reporting_MessageTrace_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
    office365_reporting_Dlp_service:
      request_period_in_seconds: <period_in_seconds>
      reset_persistence_auth: <reset_persistence_auth>
      override_time_delay_in_seconds: <delay_in_seconds>
"""

SEED_VALUES = {
    "collector_id": "123",
    "collector_name": "o365rep",
    "multiprocessing_mode": "false",
    "devo_address": DEVO_HOST,
    "chain_filename": "chain.crt",
    "cert_filename": "contoso.crt",
    "key_filename": "contoso.key",
    "input_id": "45678",
    "input_status": "true",
    "request_per_seconds": "10",
    "creds_username": USERNAME,
    "creds_password": PASSWORD,
    "period_in_seconds": "60",
    "reset_persistence_auth": "2024-05-01",
    "delay_in_seconds": "60",
}

# The cloud collector's JSON parameters (seed 004, "Cloud collector"), filled.
SEED_CLOUD_JSON: dict[str, Any] = {
    "office365_reporting_message": {
        "id": "45678",
        "enabled": True,
        "requests_per_second": 10,
        "credentials": {"username": USERNAME, "password": PASSWORD},
        "services": {
            "office365_reporting_MessageTrace_service": {
                "request_period_in_seconds": 60,
                "reset_persistence_auth": "2024-05-01",
            },
        },
    }
}


def seed_yaml(**values: str) -> str:
    """The seed's config.yaml with every placeholder replaced (``values`` override)."""
    text = SEED_CONFIG_YAML
    for name, value in {**SEED_VALUES, **values}.items():
        text = text.replace(f"<{name}>", value)
    assert "<" not in text, text
    return text


@dataclass
class Layout:
    """The seed's folders: ``<root>/{certs,config,state}``, and the CA behind the certs."""

    root: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        for name in ("certs", "config", "state"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        client = self.ca.issue_cert("collector.contoso.test")
        self.ca.cert_pem.write_to_path(str(self.root / "certs" / "chain.crt"))
        client.cert_chain_pems[0].write_to_path(str(self.root / "certs" / "contoso.crt"))
        client.private_key_pem.write_to_path(str(self.root / "certs" / "contoso.key"))

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.yaml"

    def write(self, text: str, native: dict[str, Any] | None = None) -> Path:
        """Write config.yaml: ``text`` and, if given, an ``o365collector:`` block."""
        block = yaml.safe_dump({"o365collector": native}) if native else ""
        self.config.write_text(text + block, encoding="utf-8")
        return self.config


def emulator_for(
    rows: int,
    *,
    anchor_age: timedelta = timedelta(hours=1),
    clock: FakeClock | None = None,
    **overrides: Any,
) -> Emulator:
    """An emulator whose tenant signs in with the seed's user or an app secret; no late rows.

    ``clock``: the emulator runs on it (its anchor is ``anchor_age`` before its now);
    ``overrides``: other :class:`EmulatorSettings` (``history_secs``, ``rws_…``).
    """
    spec = TenantSpec(
        tenant_id=APP_TENANT,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        domain=DOMAIN,
        rows=rows,
        username=USERNAME,
        password=PASSWORD,
    )
    now = clock.now() if clock is not None else datetime.now(UTC)
    values: dict[str, Any] = {
        "seed": 11,
        "tenants": [spec],
        "history_secs": 6 * 3600,
        "late_fraction": 0.0,
        "status_change_fraction": 0.0,
        "anchor": now - anchor_age,
        **overrides,
    }
    emulator = Emulator(EmulatorSettings(**values), clock=clock.now if clock else None)
    emulator.start()
    return emulator


def native_block(url: str, **extra: Any) -> dict[str, Any]:
    """The ``o365collector:`` block pointing the tenant at the emulator, fast retries."""
    endpoints = {"authority": url, "graph": url, "reporting": url + RWS_PATH}
    block: dict[str, Any] = {
        "tenant": {"endpoints": endpoints},
        "collection": {
            "retry": {
                "initial_interval_secs": 0.05,
                "max_interval_secs": 0.2,
                "max_elapsed_secs": 2,
            }
        },
    }
    for key, value in extra.items():
        block[key] = {**block.get(key, {}), **value} if isinstance(value, dict) else value
    return block


def keys_of(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["id"], r["recipientAddress"]) for r in records]


class DevoReceiver:
    """A mutual-TLS server standing in for ``collector-eu.devo.io``: keeps every line."""

    def __init__(self, layout: Layout) -> None:
        server = layout.ca.issue_cert(DEVO_HOST)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.configure_cert(ctx)
        layout.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.context = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.buffer = bytearray()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.connections = 0  # accepted so far
        self.open = 0  # not yet closed by the collector
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            sock = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        with self.changed:
            self.connections += 1
            self.open += 1
        try:
            with contextlib.suppress(OSError, ssl.SSLError), sock:
                while chunk := sock.recv(65536):
                    with self.lock:
                        self.buffer.extend(chunk)
        finally:
            with self.changed:
                self.open -= 1
                self.changed.notify_all()

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until the collector has closed every connection: all it sent is here."""
        with self.changed:
            done = self.changed.wait_for(lambda: self.connections and not self.open, timeout)
        assert done, f"the collector left {self.open} of {self.connections} connections open"

    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        """Every received event as (table, record)."""
        with self.lock:
            data = bytes(self.buffer)
        out = []
        for line in data.decode().splitlines():
            head, _, payload = line.partition(": ")
            out.append((head.rsplit(" ", 1)[-1], orjson.loads(payload)))
        return out

    def close(self) -> None:
        self.listener.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
