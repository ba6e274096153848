"""Certificate and password sign-in end to end against the emulator, and the assertion's shape."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from o365collector.certificates import load_certificate
from o365collector.clock import SystemClock
from o365collector.config.loader import parse_settings
from o365collector.errors import AuthError
from o365collector.http import credentials
from o365collector.http.auth import credential_for, token_provider_for
from o365collector.http.credentials import client_assertion
from support.auth import (
    CLIENT_ID,
    KEY_PASSWORD,
    USER_PASSWORD,
    USERNAME,
    CertFiles,
    check,
    config,
    only,
    tenant_config,
    tenant_id,
)


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cert_credential(cert: CertFiles, shape: str) -> dict[str, object]:
    if shape == "pem_pair":
        return {
            "type": "certificate",
            "certificate_file": str(cert.cert_pem),
            "key_file": str(cert.key_pem),
            "private_key_password": KEY_PASSWORD,
        }
    if shape == "pkcs12":
        return {"pkcs12_file": str(cert.pkcs12), "private_key_password": KEY_PASSWORD}
    return {"type": "certificate", "certificate_file": str(cert.combined_pem)}


@pytest.mark.parametrize("shape", ["pem_pair", "pkcs12", "combined_pem"])
def test_certificate_sign_in_reads_graph(emulator, cert, tmp_path, shape) -> None:
    em = emulator(client_secret="unused-secret-of-the-app")
    tenant = tenant_config(em.base_url, credential=_cert_credential(cert, shape))
    del tenant["client_secret"]
    report = check(config(tmp_path, tenant))
    assert report.ok, report.findings
    assert "certificate" in only(report, "token graph").detail
    assert only(report, "stream message_trace").status == "pass"


def test_client_assertion_has_microsofts_shape(cert) -> None:
    key = load_certificate(
        certificate_file=cert.cert_pem, key_file=cert.key_pem, password=KEY_PASSWORD
    )
    url = f"https://login.microsoftonline.com/{tenant_id(0)}/oauth2/v2.0/token"
    now = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    token = client_assertion(key, CLIENT_ID, url, now)
    head, body, signature = token.split(".")
    header, claims = orjson.loads(_b64(head)), orjson.loads(_b64(body))
    x509_cert = x509.load_pem_x509_certificate(cert.cert_text.encode())
    assert header["alg"] == "RS256"
    assert _b64(header["x5t"]) == x509_cert.fingerprint(hashes.SHA1())
    assert _b64(header["x5t#S256"]) == x509_cert.fingerprint(hashes.SHA256())
    assert claims["aud"] == url
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["nbf"] == now and claims["exp"] > now and claims["jti"]
    public = x509_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(_b64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert client_assertion(key, CLIENT_ID, url, now).split(".")[1] != body  # fresh jti


def test_certificate_not_uploaded_names_the_fix(emulator, other_cert, tmp_path) -> None:
    em = emulator()
    tenant = tenant_config(em.base_url, credential=_cert_credential(other_cert, "pkcs12"))
    del tenant["client_secret"]
    finding = only(check(config(tmp_path, tenant)), "token graph")
    assert finding.status == "fail"
    assert finding.problem == "invalid_credentials"
    assert "AADSTS700027" in finding.detail
    assert "upload the certificate" in finding.fix


def test_wrong_key_password_is_a_config_error_naming_the_file(cert, tmp_path) -> None:
    tenant = tenant_config("http://127.0.0.1:9", credential=_cert_credential(cert, "pem_pair"))
    del tenant["client_secret"]
    tenant["credential"]["private_key_password"] = "not-the-password"
    with pytest.raises(Exception, match="private_key_password") as info:
        parse_settings(config(tmp_path, tenant))
    assert str(cert.key_pem) in str(info.value)
    assert "not-the-password" not in str(info.value)


def _password_tenant(url: str, **credential: object) -> dict[str, object]:
    tenant = tenant_config(url, credential={"type": "password", **credential})
    del tenant["client_secret"], tenant["client_id"]
    return tenant


@pytest.mark.parametrize("login_version", ["v2", "v1"])
def test_password_sign_in_reads_graph(emulator, tmp_path, login_version) -> None:
    em = emulator()
    tenant = _password_tenant(em.base_url, username=USERNAME, password=USER_PASSWORD)
    tenant["endpoints"]["login_version"] = login_version  # type: ignore[index]
    report = check(config(tmp_path, tenant))
    assert report.ok, report.findings
    assert "delegated permissions (scp) include" in only(report, "permissions graph").detail


@pytest.mark.parametrize("code", [50076, 50079, 53003])
def test_mfa_or_conditional_access_says_an_app_registration_is_needed(
    emulator, tmp_path, code
) -> None:
    em = emulator(sign_in_refusal=code)
    tenant = _password_tenant(em.base_url, username=USERNAME, password=USER_PASSWORD)
    finding = only(check(config(tmp_path, tenant)), "token graph")
    assert finding.status == "fail"
    assert f"AADSTS{code}" in finding.detail
    assert "an app registration is needed" in finding.fix
    assert finding.problem in ("mfa_required", "conditional_access")


def test_seed_keys_map_to_a_password_credential(tmp_path) -> None:
    sekoia = _password_tenant("http://127.0.0.1:9")
    del sekoia["credential"]
    sekoia.update(account_name=USERNAME, account_password=USER_PASSWORD)
    devo = _password_tenant("http://127.0.0.1:9")
    del devo["credential"]
    devo.update(name="devo", credentials={"username": USERNAME, "password": USER_PASSWORD})
    settings = parse_settings(config(tmp_path, sekoia, devo))
    for tenant in settings.tenants:
        cred = credential_for(tenant)
        assert isinstance(cred, credentials.Password)
        assert cred.username == USERNAME
        assert cred.client_id == "d3590ed6-52b3-4102-aeff-aad2292ab01c"


async def test_password_flow_warns_once_and_caches_per_audience(emulator, tmp_path) -> None:
    em = emulator()
    tenant = _password_tenant(em.base_url, username=USERNAME, password=USER_PASSWORD)
    tenant["name"] = "warn-once"
    settings = parse_settings(config(tmp_path, tenant))
    with structlog.testing.capture_logs() as logs:
        credential_for(settings.tenants[0])
        async with httpx.AsyncClient() as http:
            provider = token_provider_for(settings.tenants[0], http, SystemClock())
            graph = await provider.token("https://graph.microsoft.com/.default")
            exchange = await provider.token("https://outlook.office365.com/.default")
            assert await provider.token("https://graph.microsoft.com/.default") == graph
    assert graph != exchange
    assert provider.acquired == 2
    warnings = [e for e in logs if "discouraged" in e["event"]]
    assert len(warnings) == 1
    assert USERNAME not in str(warnings[0])


async def test_wrong_user_password_is_refused_without_echo(emulator, tmp_path) -> None:
    em = emulator()
    tenant = _password_tenant(em.base_url, username=USERNAME, password="Not~The.Password.123")
    settings = parse_settings(config(tmp_path, tenant))
    async with httpx.AsyncClient() as http:
        provider = token_provider_for(settings.tenants[0], http, SystemClock())
        with pytest.raises(AuthError) as info:
            await provider.token("https://graph.microsoft.com/.default")
    message = str(info.value)
    assert "AADSTS50126" in message and "credential.password" in message
    assert USERNAME not in message and "Not~The.Password.123" not in message
