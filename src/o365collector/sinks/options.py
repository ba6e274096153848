"""Settings → runtime options shared by the sink builders: TLS, socket endpoints, secrets."""

from __future__ import annotations

from pydantic import SecretStr

from o365collector.config.sinks import ClientTls, SocketOptions
from o365collector.sinks.tls import TlsOptions, client_context
from o365collector.sinks.transport import Endpoint


def tls_options(settings: ClientTls, *, require_ca: bool = False) -> TlsOptions:
    """What the TLS context is built from (``require_ca``: no fallback to the system store)."""
    return TlsOptions(
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        pkcs12_file=settings.pkcs12_file,
        private_key_password=plain(settings.private_key_password),
        verify=settings.tls_verify,
        security_level=settings.tls_security_level,
        require_ca=require_ca,
    )


def socket_endpoint(
    sink: str,
    settings: SocketOptions,
    host: str,
    port: int,
    *,
    tls: bool,
    idle_reconnect_secs: float | None,
    max_age_secs: float | None,
    require_ca: bool = False,
) -> Endpoint:
    """Where a socket sink connects; with ``tls`` the context is built now.

    Raises:
        SinkError: the TLS files cannot be loaded.
    """
    context = None
    if tls:
        context = client_context(sink, tls_options(settings, require_ca=require_ca))
    return Endpoint(
        host=host,
        port=port,
        ssl_context=context,
        server_hostname=settings.tls_server_name,
        connect_timeout_secs=settings.connect_timeout_secs,
        write_timeout_secs=settings.write_timeout_secs,
        idle_reconnect_secs=idle_reconnect_secs,
        max_age_secs=max_age_secs,
    )


def plain(secret: SecretStr | None) -> str | None:
    """The value of an optional secret."""
    return secret.get_secret_value() if secret is not None else None
