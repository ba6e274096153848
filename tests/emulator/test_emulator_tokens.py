"""Token endpoint (v1/v2) and Graph bearer checks."""

from __future__ import annotations

import base64
import json

import pytest
from emulator_support import CLIENT_ID, DOMAIN, SECRET, TENANT_ID, TRACES, Graph

from o365emulator.settings import MESSAGE_TRACE_ROLE
from support import FakeClock


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_v2_token_success_carries_the_documented_claims(graph: Graph, clock: FakeClock) -> None:
    response = graph.token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    header, claims = body["access_token"].split(".")[0], claims_of(body["access_token"])
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT"
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == TENANT_ID
    assert claims["appid"] == CLIENT_ID
    assert claims["roles"] == [MESSAGE_TRACE_ROLE]
    assert claims["iat"] == int(clock.now().timestamp())
    assert claims["exp"] == claims["iat"] + 3599
    assert SECRET not in response.text


def test_v1_token_uses_resource_and_string_numbers(graph: Graph) -> None:
    response = graph.client.post(
        f"/{TENANT_ID}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "resource": "https://graph.microsoft.com",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == "https://graph.microsoft.com"
    assert body["expires_in"] == "3599"
    assert int(body["expires_on"]) - int(body["not_before"]) == 3599
    assert claims_of(body["access_token"])["aud"] == "https://graph.microsoft.com"


def test_tenant_may_be_addressed_by_domain(graph: Graph) -> None:
    response = graph.client.post(
        f"/{DOMAIN}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["tid"] == TENANT_ID


def _entra_error(response, status: int, error: str, code: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    for part in ("Trace ID: ", "Correlation ID: ", "Timestamp: "):
        assert part in body["error_description"]
    assert body["correlation_id"] and body["timestamp"]
    assert SECRET not in response.text
    return body


def test_unknown_tenant(graph: Graph) -> None:
    response = graph.client.post(
        "/99999999-0000-4000-8000-000000000000/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    _entra_error(response, 400, "invalid_request", 90002)


def test_unknown_client_id(graph: Graph) -> None:
    body = _entra_error(
        graph.token(client_id="00000000-1111-4111-8111-000000000000"),
        400,
        "unauthorized_client",
        700016,
    )
    assert "00000000-1111-4111-8111-000000000000" in body["error_description"]


def test_wrong_secret_is_refused_without_echo(graph: Graph) -> None:
    response = graph.token(client_secret="not-the-secret-value-42")
    body = _entra_error(response, 401, "invalid_client", 7000215)
    assert "Invalid client secret provided" in body["error_description"]
    assert "not-the-secret-value-42" not in response.text


def test_missing_secret(graph: Graph) -> None:
    _entra_error(graph.token(client_secret=""), 401, "invalid_client", 7000216)


def test_wrong_grant_type(graph: Graph) -> None:
    _entra_error(
        graph.token(grant_type="urn:example:unsupported"), 400, "unsupported_grant_type", 70003
    )


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("", "invalid_scope", 70011),
        ("https://graph.microsoft.com/ExchangeMessageTrace.Read.All", "invalid_scope", 1002012),
        ("https://unknown.example.com/.default", "invalid_resource", 500011),
    ],
)
def test_scope_errors(graph: Graph, scope: str, error: str, code: int) -> None:
    _entra_error(graph.token(scope=scope), 400, error, code)


def test_token_endpoint_only_accepts_post(graph: Graph) -> None:
    _entra_error(
        graph.client.get(f"/{TENANT_ID}/oauth2/v2.0/token"), 400, "invalid_request", 900561
    )


def _graph_401(response, message_part: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert message_part in error["message"]


def test_missing_bearer_token(graph: Graph) -> None:
    _graph_401(graph.client.get(TRACES), "Access token is empty.")


def test_malformed_and_tampered_tokens(graph: Graph) -> None:
    _graph_401(graph.get(TRACES, headers={"Authorization": "Bearer garbage"}), "validation fail")
    token = graph.token().json()["access_token"]
    header, _payload, signature = token.split(".")
    claims = claims_of(token)
    claims["roles"] = ["Everything.All"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _graph_401(
        graph.get(TRACES, headers={"Authorization": f"Bearer {header}.{forged}.{signature}"}),
        "validation fail",
    )


def test_token_for_another_audience_is_refused(graph: Graph) -> None:
    token = graph.token(scope="https://outlook.office365.com/.default").json()["access_token"]
    _graph_401(graph.get(TRACES, headers={"Authorization": f"Bearer {token}"}), "audience")


def test_expired_token_with_injected_clock(graph: Graph, clock: FakeClock) -> None:
    headers = graph.bearer()
    clock.advance(seconds=3599)
    assert graph.get(TRACES, headers=headers).status_code == 200  # exp == now is still valid
    clock.advance(seconds=1)
    _graph_401(
        graph.get(TRACES, headers=headers), "Lifetime validation failed, the token is expired."
    )
    stats = graph.emulator.stats(TENANT_ID)
    assert stats["by_status"] == {"200": 1, "401": 1}
    assert stats["accepted"] == 1, "a 401 must not take a quota slot"


def test_missing_service_principal_and_missing_role(serve) -> None:
    no_sp = serve(tenant={"service_principal": False})
    response = no_sp.list()
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"
    assert "8bd644d1-64a1-4d4b-ae52-2e0cbf64e373" in response.json()["error"]["message"]
    no_role = serve(tenant={"roles": ["Mail.Read"]})
    response = no_role.list()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_token_lifetime_setting(serve, clock: FakeClock) -> None:
    graph = serve(token_lifetime_secs=60)
    headers = graph.bearer()
    clock.advance(seconds=61)
    _graph_401(graph.get(TRACES, headers=headers), "expired")
