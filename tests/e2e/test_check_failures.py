"""One test per setup mistake: ``check`` names the problem and the fix (emulator on loopback)."""

from __future__ import annotations

import httpx
import pytest
import trustme

from o365collector.check.translate import diagnose
from o365collector.config.loader import parse_settings
from o365collector.errors import ConfigError, PermissionDeniedError, SetupError
from support.auth import (
    CLIENT_ID,
    SECRET,
    WRONG_SECRET,
    TlsListener,
    check,
    config,
    free_port,
    only,
    tenant_config,
    tenant_id,
)
from support.https import https_server

SP_COMMAND = "New-MgServicePrincipal -AppId 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373"


def test_everything_set_up_passes(emulator, tmp_path) -> None:
    em = emulator()
    report = check(config(tmp_path, tenant_config(em.base_url)))
    assert report.ok and report.exit_code == 0
    assert [f.probe for f in report.findings] == [
        "token graph",
        "permissions graph",
        "stream message_trace",
        "sink",
    ]
    assert em.stats(tenant_id(0))["accepted"] == 1  # the stream was really read, once


def test_wrong_secret(emulator, tmp_path) -> None:
    em = emulator()
    report = check(config(tmp_path, tenant_config(em.base_url, client_secret=WRONG_SECRET)))
    finding = only(report, "token graph")
    assert (finding.status, finding.problem) == ("fail", "invalid_credentials")
    assert "AADSTS7000215" in finding.detail
    assert "Value (not its Secret ID)" in finding.fix
    assert only(report, "stream message_trace").status == "skip"
    assert report.exit_code == 1


def test_expired_secret(emulator, tmp_path) -> None:
    em = emulator(secret_expired=True)
    finding = only(check(config(tmp_path, tenant_config(em.base_url))), "token graph")
    assert (finding.status, finding.problem) == ("fail", "expired_credentials")
    assert "create a new secret" in finding.fix


def test_unknown_client_id(emulator, tmp_path) -> None:
    em = emulator()
    tenant = tenant_config(em.base_url, client_id="00000000-dead-beef-0000-000000000000")
    finding = only(check(config(tmp_path, tenant)), "token graph")
    assert finding.problem == "invalid_credentials"
    assert "AADSTS700016" in finding.detail and "check client_id" in finding.fix
    assert "00000000-dead-beef-0000-000000000000" not in finding.detail  # shortened


def test_consent_missing(emulator, tmp_path) -> None:
    em = emulator(roles=[])
    report = check(config(tmp_path, tenant_config(em.base_url)))
    finding = only(report, "permissions graph")
    assert (finding.status, finding.problem) == ("fail", "consent_missing")
    assert "ExchangeMessageTrace.Read.All" in finding.detail
    assert "Grant admin consent" in finding.fix and "Microsoft Graph" in finding.fix
    assert only(report, "stream message_trace").status == "skip"


def test_service_principal_missing(emulator, tmp_path) -> None:
    em = emulator(service_principal=False)
    finding = only(check(config(tmp_path, tenant_config(em.base_url))), "stream message_trace")
    assert (finding.status, finding.problem) == ("fail", "service_principal_missing")
    assert SP_COMMAND in finding.fix
    assert "hours" in finding.fix


def test_quota_in_use_by_other_tools(emulator, tmp_path) -> None:
    em = emulator(quota_requests=2)
    token = httpx.post(
        f"{em.base_url}/{tenant_id(0)}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    ).json()["access_token"]
    for _ in range(2):  # another tool spends the tenant's quota
        other = httpx.get(
            f"{em.base_url}/v1.0/admin/exchange/tracing/messageTraces",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert other.status_code == 200
    finding = only(check(config(tmp_path, tenant_config(em.base_url))), "stream message_trace")
    assert (finding.status, finding.problem) == ("fail", "quota_in_use")
    assert "429" in finding.detail and "other tools" in finding.fix


def test_token_host_unreachable(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    finding = only(check(config(tmp_path, tenant_config(dead))), "token graph")
    assert (finding.status, finding.problem) == ("fail", "unreachable")
    assert "127.0.0.1" in finding.fix


def test_graph_host_unreachable(emulator, tmp_path) -> None:
    em = emulator()
    tenant = tenant_config(em.base_url)
    tenant["endpoints"]["graph"] = f"http://127.0.0.1:{free_port()}"
    report = check(config(tmp_path, tenant), max_wait_secs=0.5)
    assert only(report, "token graph").status == "pass"
    finding = only(report, "stream message_trace")
    assert (finding.status, finding.problem) == ("fail", "unreachable")


def test_tls_failure_names_ca_bundle(tmp_path) -> None:
    listener = TlsListener(tmp_path)
    try:
        report = check(config(tmp_path, tenant_config(listener.url)))
    finally:
        listener.close()
    finding = only(report, "token graph")
    assert (finding.status, finding.problem) == ("fail", "tls_failure")
    assert "CERTIFICATE_VERIFY_FAILED" in finding.detail
    assert "ca_bundle" in finding.fix


def test_tls_trusted_with_ca_bundle_reads_the_sign_in_answer(tmp_path) -> None:
    """With ``ca_bundle`` naming the private CA, the handshake passes and Entra's answer is
    read: a refused secret is reported as such, not as a TLS or network failure."""
    ca = trustme.CA()
    bundle = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with https_server(ca) as server:
        server.expect_request(
            f"/{tenant_id(0)}/oauth2/v2.0/token", method="POST"
        ).respond_with_json(
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            },
            status=401,
        )
        url = server.url_for("").rstrip("/")
        report = check(config(tmp_path, tenant_config(url, ca_bundle=str(bundle))))
        assert len(server.log) == 1  # the token request arrived over TLS
    finding = only(report, "token graph")
    assert (finding.status, finding.problem) == ("fail", "invalid_credentials")
    assert "AADSTS7000215" in finding.detail


def test_sink_not_writable(emulator, tmp_path) -> None:
    em = emulator()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    sinks = [
        {"type": "jsonl", "name": "bad", "path": str(blocker / "e.jsonl")},
        {"type": "stdout"},
    ]
    report = check(config(tmp_path, tenant_config(em.base_url), sinks=sinks))
    bad = only(report, "sink", "sink bad")
    assert (bad.status, bad.problem) == ("fail", "sink_unwritable")
    assert only(report, "sink", "sink stdout").status == "pass"
    assert report.exit_code == 1


def test_rws_answers_are_translated() -> None:
    """RWS 403 means a missing directory role; 404 a report the tenant is not offered."""
    role = diagnose(
        PermissionDeniedError("HTTP 403: No permission to access the report"),
        api="reporting",
        host="https://reports.office365.com",
    )
    assert role.problem == "role_missing"
    assert "Global Reader" in role.fix and "Security Reader" in role.fix
    report = diagnose(SetupError("HTTP 404"), api="reporting", host="h")
    assert report.problem == "report_not_offered"


@pytest.mark.parametrize("cloud", ["gcc_high", "dod", "china"])
def test_graph_message_trace_outside_the_global_cloud_is_a_config_error(tmp_path, cloud) -> None:
    tenant = tenant_config("http://127.0.0.1:9", cloud=cloud, streams=["message_trace"])
    with pytest.raises(ConfigError) as info:
        parse_settings(config(tmp_path, tenant))
    message = str(info.value)
    assert "tenants[0]" in message and "streams" in message
    assert "rws.MessageTrace" in message and cloud in message


def test_cloud_fills_endpoints_and_overrides_win(tmp_path) -> None:
    tenant = tenant_config("http://127.0.0.1:9", cloud="gcc")
    tenant["endpoints"] = {"graph": "https://graph.example.test"}
    gcc = parse_settings(config(tmp_path, tenant)).tenants[0].endpoints
    assert gcc.authority_base() == "https://login.microsoftonline.com"
    assert gcc.graph_base() == "https://graph.example.test"
    assert gcc.scope_for_reporting() == "https://outlook.office365.com/.default"
    from o365collector.clouds import CLOUDS

    high = CLOUDS["gcc_high"]
    assert high.authority == "https://login.microsoftonline.us"
    assert high.graph == "https://graph.microsoft.us"
    assert not high.graph_message_trace


def test_check_cli_reports_a_config_error_as_json_with_exit_2(tmp_path) -> None:
    import yaml

    from support.auth import check_json

    tenant = tenant_config("http://127.0.0.1:9", cloud="gcc_high")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, tenant)))
    code, report = check_json(path)
    assert code == 2
    assert report["ok"] is False
    assert "rws.MessageTrace" in report["findings"][0]["detail"]
    assert SECRET not in str(report)
