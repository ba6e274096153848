"""Sign-in checks of the emulated token endpoint: refusals, certificates, user passwords."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime

from .assertions import ASSERTION_TYPE, AssertionRefused, verify_assertion
from .settings import TenantSpec

POLICY_TEXT = {
    50076: "Due to a configuration change made by your administrator, or because you moved to "
    "a new location, you must use multi-factor authentication to access the resource.",
    50079: "Due to a configuration change made by your administrator, or because you moved to "
    "a new location, you must enroll in multi-factor authentication to access the resource.",
    50158: "External security challenge not satisfied. User will be redirected to another page "
    "or authentication provider to satisfy additional authentication challenges.",
    53003: "Access has been blocked by Conditional Access policies. The access policy does not "
    "allow token issuance.",
}


class EntraError(Exception):
    """A token endpoint refusal: HTTP status, OAuth error, AADSTS code and text."""

    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        """Keep what the error body will say."""
        super().__init__(text)
        self.status, self.error, self.code, self.text = status, error, code, text


def missing(name: str) -> EntraError:
    """Entra's refusal of a request that lacks the form field ``name``."""
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def check_assertion(
    spec: TenantSpec, tenant: str, form: Mapping[str, str], assertion: str, now: datetime
) -> None:
    """A certificate credential: the assertion must be signed by the uploaded certificate."""
    if form.get("client_assertion_type", "") != ASSERTION_TYPE:
        raise EntraError(
            400,
            "invalid_request",
            50027,
            f"client_assertion_type must be '{ASSERTION_TYPE}'.",
        )
    try:
        verify_assertion(
            assertion,
            certificate_pem=spec.certificate,
            client_id=spec.client_id,
            tenant=tenant,
            now=now,
        )
    except AssertionRefused as exc:
        raise EntraError(401, "invalid_client", exc.code, exc.text) from None


def check_public_client(spec: TenantSpec, form: Mapping[str, str]) -> None:
    """The password grant's client must be the tenant's public client, not the app."""
    client_id = form.get("client_id", "")
    if not client_id:
        raise missing("client_id")
    if client_id.lower() == spec.client_id.lower():
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    if client_id.lower() != spec.public_client_id.lower():
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{spec.domain}'.",
        )


def check_user(spec: TenantSpec, form: Mapping[str, str]) -> None:
    """The password grant's user and password, then the tenant's MFA / access policies."""
    username, password = form.get("username", ""), form.get("password", "")
    if not username:
        raise missing("username")
    if not password:
        raise missing("password")
    if spec.username is None or username.lower() != spec.username.lower():
        raise EntraError(
            400,
            "invalid_grant",
            50034,
            f"The user account {{EUII Hidden}} does not exist in the {spec.domain} "
            "directory. To sign into this application, the account must be added to the "
            "directory.",
        )
    if spec.password is None or not hmac.compare_digest(password.encode(), spec.password.encode()):
        raise EntraError(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        )
    if spec.sign_in_refusal is not None:
        raise EntraError(
            400, "invalid_grant", spec.sign_in_refusal, POLICY_TEXT[spec.sign_in_refusal]
        )
