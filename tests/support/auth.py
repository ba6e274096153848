"""Sign-in and ``check`` helpers: certificates, emulator tenants, configs, CLI runs, fixtures.

The fixtures ``cert``, ``other_cert`` and ``emulator`` are registered by the conftest of each
folder that uses them (``http``, ``check``, ``e2e``); the rest is imported by name.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from o365collector.check import Report, run_check
from o365collector.config.loader import parse_settings
from o365emulator import Emulator, EmulatorSettings, TenantSpec

TENANT_ID = "3c5e7a90-1111-4222-8333-44445555a0a1"
CLIENT_ID = "9b8a7c6d-1111-4222-8333-44445555c0c1"
SECRET = "Cl1ent~Secret-Value.AuthTests.0042"
WRONG_SECRET = "Wr0ng~Secret-Value.AuthTests.9911"
KEY_PASSWORD = "K3y~Password-AuthTests.5150"
USERNAME = "svc-trace@contoso.com"
USER_PASSWORD = "Us3r~Password-AuthTests.2718"
PUBLIC_CLIENT = "d3590ed6-52b3-4102-aeff-aad2292ab01c"


@dataclass(frozen=True)
class CertFiles:
    """A self-signed RSA certificate in every shape the collector reads."""

    cert_pem: Path  # certificate only
    key_pem: Path  # key, encrypted with KEY_PASSWORD
    combined_pem: Path  # certificate and unencrypted key in one file
    pkcs12: Path  # .pfx with KEY_PASSWORD
    cert_text: str
    key_body_lines: list[str]  # base64 lines of the unencrypted PKCS#8 key


def make_cert_files(folder: Path) -> CertFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365collector-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_text = cert.public_bytes(serialization.Encoding.PEM).decode()
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    files = CertFiles(
        cert_pem=folder / "cert.pem",
        key_pem=folder / "key.pem",
        combined_pem=folder / "combined.pem",
        pkcs12=folder / "cert.pfx",
        cert_text=cert_text,
        key_body_lines=[
            line for line in plain.decode().splitlines() if line and not line.startswith("-----")
        ],
    )
    files.cert_pem.write_text(cert_text)
    files.key_pem.write_bytes(encrypted)
    files.combined_pem.write_text(cert_text + plain.decode())
    files.pkcs12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"o365collector",
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return files


def tenant_spec(cert: CertFiles, index: int = 0, **overrides: Any) -> TenantSpec:
    values: dict[str, Any] = {
        "tenant_id": tenant_id(index),
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "rows": 20,
        "certificate": cert.cert_text,
        "username": USERNAME,
        "password": USER_PASSWORD,
    }
    values.update(overrides)
    return TenantSpec(**values)


def tenant_id(index: int) -> str:
    return TENANT_ID[:-2] + f"{index:02d}"


def start_emulator(cert: CertFiles, tenants: list[dict[str, Any]]) -> Emulator:
    specs = [tenant_spec(cert, i, **t) for i, t in enumerate(tenants)]
    emulator = Emulator(EmulatorSettings(seed=3, tenants=specs, history_secs=3600))
    emulator.start()
    return emulator


def tenant_config(url: str, index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A tenant block signing in with the client secret against the emulator at ``url``."""
    tenant: dict[str, Any] = {
        "name": f"t{index}",
        "tenant_id": tenant_id(index),
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "endpoints": {"authority": url, "graph": url},
    }
    tenant.update(overrides)
    return tenant


def config(
    workdir: Path, *tenants: dict[str, Any], sinks: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "state_dir": str(workdir / "state"),
        "tenants": list(tenants),
        "collection": {
            "initial_lookback_secs": 1800,
            "settle_delay_secs": 60,
            "poll_interval_secs": 1,
            "retry": {
                "initial_interval_secs": 0.05,
                "max_interval_secs": 0.2,
                "max_elapsed_secs": 1,
            },
        },
        "sinks": sinks
        or [{"type": "jsonl", "name": "file", "path": str(workdir / "out" / "e.jsonl")}],
    }


def check(data: dict[str, Any], max_wait_secs: float = 1.0) -> Report:
    return run_check(parse_settings(data), max_wait_secs=max_wait_secs)


def only(report: Report, probe_prefix: str, target: str | None = None) -> Any:
    found = [
        f
        for f in report.findings
        if f.probe.startswith(probe_prefix) and (target is None or f.target == target)
    ]
    assert len(found) == 1, report.findings
    return found[0]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o365collector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def check_json(path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("check", "--config", str(path), "--json", "--max-wait-secs", "1", *extra)
    return result.returncode, orjson.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TlsListener:
    """A TLS server on loopback whose certificate comes from a private CA (handshake only)."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._sock.getsockname()[1]}"
        self._context = context
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            try:
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self._sock.close()


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert_files(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="session")
def other_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert_files(tmp_path_factory.mktemp("other-cert"))


@pytest.fixture
def emulator(cert: CertFiles) -> Iterator[Callable[..., Emulator]]:
    """Factory: ``emulator(**tenant_overrides)`` -> a started emulator (one or more tenants)."""
    started: list[Emulator] = []

    def factory(*tenants: dict[str, Any], **overrides: Any) -> Emulator:
        emulator = start_emulator(cert, list(tenants) or [overrides])
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()
