"""Credential settings of a tenant: client secret, certificate or user password, by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, model_validator

from o365collector.certificates import CredentialFileError, load_certificate
from o365collector.config.base import Strict
from o365collector.observability.redact import register_secret

# The "Microsoft Office" first-party public client; any public client the tenant allows works.
OFFICE_PUBLIC_CLIENT_ID = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
CREDENTIAL_TYPES = ("client_secret", "certificate", "password")


class ClientSecretCredentialSettings(Strict):
    """An app registration's client secret (with ``tenants[].client_id``)."""

    type: Literal["client_secret"]
    client_secret: SecretStr = Field(min_length=1)

    @model_validator(mode="after")
    def _register(self) -> ClientSecretCredentialSettings:
        register_secret(self.client_secret.get_secret_value())
        return self


class CertificateCredentialSettings(Strict):
    """A certificate uploaded to the app registration, with its private key.

    Either ``certificate_file`` (PEM; it may hold the key too) with ``key_file``, or
    ``pkcs12_file`` (.pfx). The files are loaded at start so a wrong password or a key that
    does not match the certificate stops the collector with the file's name.
    """

    type: Literal["certificate"]
    certificate_file: Path | None = None
    key_file: Path | None = None
    pkcs12_file: Path | None = None
    private_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _loadable(self) -> CertificateCredentialSettings:
        if self.private_key_password is not None:
            register_secret(self.private_key_password.get_secret_value())
        if (self.pkcs12_file is None) == (self.certificate_file is None):
            raise ValueError("give either certificate_file (PEM, with key_file) or pkcs12_file")
        if self.pkcs12_file is not None and self.key_file is not None:
            raise ValueError("key_file goes with certificate_file; a PKCS#12 file holds the key")
        try:
            load_certificate(
                certificate_file=self.certificate_file,
                key_file=self.key_file,
                pkcs12_file=self.pkcs12_file,
                password=self.password(),
            )
        except CredentialFileError as exc:
            raise ValueError(str(exc)) from None
        return self

    def password(self) -> str | None:
        """The key or PKCS#12 password, if any."""
        pw = self.private_key_password
        return pw.get_secret_value() if pw is not None else None


class PasswordCredentialSettings(Strict):
    """A user account signing in with the resource-owner password flow (discouraged).

    ``tenants[].client_id`` is then the public client signed in through; it defaults to
    :data:`OFFICE_PUBLIC_CLIENT_ID`.
    """

    type: Literal["password"]
    username: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)

    @model_validator(mode="after")
    def _register(self) -> PasswordCredentialSettings:
        register_secret(self.password.get_secret_value())
        return self


CredentialSettings = Annotated[
    ClientSecretCredentialSettings | CertificateCredentialSettings | PasswordCredentialSettings,
    Field(discriminator="type"),
]


def normalise_credentials(data: dict[str, Any]) -> dict[str, Any]:
    """Map the seeds' user/password keys onto ``credential`` and infer a missing ``type``.

    Sekoia's ``account_name``/``account_password`` and Devo's ``credentials: {username,
    password}`` become ``credential: {type: password, …}``.

    Raises:
        ValueError: an unknown ``credential.type``, or two ways of giving the password.
    """
    out = dict(data)
    seeds: dict[str, Any] = {}
    if "account_name" in out or "account_password" in out:
        seeds = {"username": out.pop("account_name", None)}
        seeds["password"] = out.pop("account_password", None)
    if isinstance(out.get("credentials"), dict):
        if seeds:
            raise ValueError("give account_name/account_password or credentials, not both")
        seeds = dict(out.pop("credentials"))
    if seeds:
        if "credential" in out:
            raise ValueError("give credential or the user name and password, not both")
        out["credential"] = {"type": "password", **{k: v for k, v in seeds.items() if v}}
    credential = out.get("credential")
    if isinstance(credential, dict):
        kind = credential.get("type")
        if kind is None:
            credential = {"type": _infer_type(credential), **credential}
        elif kind not in CREDENTIAL_TYPES:
            msg = (
                f"credential.type: unknown type {kind!r}; use one of {', '.join(CREDENTIAL_TYPES)}"
            )
            raise ValueError(msg)
        out["credential"] = credential
    return out


def _infer_type(credential: dict[str, Any]) -> str:
    if "username" in credential or "password" in credential:
        return "password"
    if {"certificate_file", "pkcs12_file", "key_file"} & set(credential):
        return "certificate"
    if "client_secret" in credential:
        return "client_secret"
    msg = f"credential: add `type:` (one of {', '.join(CREDENTIAL_TYPES)})"
    raise ValueError(msg)
