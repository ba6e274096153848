"""Every command, every failure mode at once: no configured secret reaches any output or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from support.auth import (
    CLIENT_ID,
    KEY_PASSWORD,
    SECRET,
    USER_PASSWORD,
    USERNAME,
    WRONG_SECRET,
    CertFiles,
    TlsListener,
    cli,
    free_port,
    start_emulator,
    tenant_config,
    tenant_id,
)

pytestmark = pytest.mark.integration

# name -> (emulator tenant overrides, how the collector signs in)
MODES: dict[str, tuple[dict[str, Any], str]] = {
    "cert_ok": ({}, "certificate"),
    "pkcs12_ok": ({}, "pkcs12"),
    "password_ok": ({}, "password"),
    "secret_ok": ({}, "secret_env"),
    "wrong_secret": ({}, "wrong_secret"),
    "expired_secret": ({"secret_expired": True}, "secret_env"),
    "consent_missing": ({"roles": []}, "secret_env"),
    "sp_missing": ({"service_principal": False}, "secret_env"),
    "quota_in_use": ({"quota_requests": 1}, "secret_env"),
    "mfa": ({"sign_in_refusal": 50076}, "password"),
    "unreachable": ({}, "secret_env"),
    "tls": ({}, "secret_env"),
}
EXPECTED = {
    "cert_ok": "",
    "pkcs12_ok": "",
    "password_ok": "",
    "secret_ok": "",
    "wrong_secret": "invalid_credentials",
    "expired_secret": "expired_credentials",
    "consent_missing": "consent_missing",
    "sp_missing": "service_principal_missing",
    "quota_in_use": "quota_in_use",
    "mfa": "mfa_required",
    "unreachable": "unreachable",
    "tls": "tls_failure",
}


def _credential(how: str, cert: CertFiles, inputs: Path) -> dict[str, Any]:
    if how == "certificate":
        return {
            "client_id": CLIENT_ID,
            "credential": {
                "type": "certificate",
                "certificate_file": str(cert.cert_pem),
                "key_file": str(cert.key_pem),
                "private_key_password_file": str(inputs / "key-password"),
            },
        }
    if how == "pkcs12":
        return {
            "client_id": CLIENT_ID,
            "credential": {"pkcs12_file": str(cert.pkcs12), "private_key_password": KEY_PASSWORD},
        }
    if how == "password":
        return {
            "credential": {
                "type": "password",
                "username": USERNAME,
                "password_file": str(inputs / "user-password"),
            }
        }
    if how == "wrong_secret":
        return {"client_id": CLIENT_ID, "client_secret_file": str(inputs / "wrong-secret")}
    return {"client_id": CLIENT_ID, "client_secret": "${AUTH_TEST_SECRET}"}


def _burn_quota(url: str, index: int) -> None:
    token = httpx.post(
        f"{url}/{tenant_id(index)}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    httpx.get(
        f"{url}/v1.0/admin/exchange/tracing/messageTraces",
        headers={"Authorization": f"Bearer {token}"},
    )


def _write_config(workdir: Path, cert: CertFiles, url: str, tls_url: str) -> Path:
    inputs = workdir / "inputs"
    inputs.mkdir()
    (inputs / "key-password").write_text(KEY_PASSWORD)
    (inputs / "user-password").write_text(USER_PASSWORD)
    (inputs / "wrong-secret").write_text(WRONG_SECRET)
    dead = f"http://127.0.0.1:{free_port()}"
    tenants = []
    for index, (name, (_, how)) in enumerate(MODES.items()):
        base = {"unreachable": dead, "tls": tls_url}.get(name, url)
        tenant = tenant_config(base, index, name=name, **_credential(how, cert, inputs))
        tenant.pop("client_secret") if "credential" in tenant or how == "wrong_secret" else None
        if "client_id" not in _credential(how, cert, inputs):
            tenant.pop("client_id")
        tenants.append(tenant)
    data = {
        "state_dir": str(workdir / "state"),
        "tenants": tenants,
        "collection": {
            "initial_lookback_secs": 1800,
            "poll_interval_secs": 1,
            "retry": {
                "initial_interval_secs": 0.05,
                "max_interval_secs": 0.2,
                "max_elapsed_secs": 1,
            },
        },
        "sinks": [{"type": "jsonl", "name": "file", "path": str(workdir / "out" / "e.jsonl")}],
    }
    path = inputs / "config.yaml"  # an input: the pkcs12 tenant writes its password inline
    path.write_text(yaml.safe_dump(data))
    return path


def test_no_secret_in_any_output_or_file(tmp_path, cert) -> None:
    emulator = start_emulator(cert, [spec for spec, _ in MODES.values()])
    listener = TlsListener(tmp_path)
    try:
        _burn_quota(emulator.base_url, list(MODES).index("quota_in_use"))
        config = _write_config(tmp_path, cert, emulator.base_url, listener.url)
        env = {"AUTH_TEST_SECRET": SECRET}
        at = ("--config", str(config))
        runs = {
            "run": cli("run", *at, "--once", "--log-format", "json", env=env),
            "check": cli("check", *at, "--max-wait-secs", "1", env=env),
            "check_json": cli("check", *at, "--json", "--max-wait-secs", "1", env=env),
            "state": cli("state", "show", *at, env=env),
            "state_json": cli("state", "show", *at, "--json", env=env),
        }
    finally:
        listener.close()
        emulator.stop()

    report = orjson.loads(runs["check_json"].stdout)
    assert runs["check"].returncode == runs["check_json"].returncode == 1
    assert runs["run"].returncode == 1
    for name, problem in EXPECTED.items():
        findings = [f for f in report["findings"] if f["target"] == f"tenant {name}"]
        problems = {f["problem"] for f in findings if f["status"] == "fail"}
        assert problems == ({problem} if problem else set()), (name, findings)
        if not problem:
            assert all(f["status"] == "pass" for f in findings), findings
    assert "service_principal_missing" in runs["check"].stdout  # the table names it too
    assert list((tmp_path / "out").glob("e.jsonl*")), "the healthy tenants delivered"

    secrets = [SECRET, WRONG_SECRET, KEY_PASSWORD, USER_PASSWORD, *cert.key_body_lines]
    texts = {
        f"{cmd}.{stream}": getattr(result, stream)
        for cmd, result in runs.items()
        for stream in ("stdout", "stderr")
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and "inputs" not in path.parts:
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any(name.endswith("state.db") for name in texts)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
    assert USERNAME not in runs["check_json"].stdout  # identifiers are shortened
