"""Client TLS contexts for sinks: CA verification, client certificates (PEM or PKCS#12)."""

from __future__ import annotations

import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from o365collector.errors import SinkError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """What a sink needs from TLS; paths are read when the context is built."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    pkcs12_file: Path | None = None
    private_key_password: str | None = None
    verify: bool = True
    security_level: int | None = None
    require_ca: bool = False


def client_context(sink: str, options: TlsOptions) -> ssl.SSLContext:
    """Build a TLS 1.2+ client context.

    With ``verify`` the server's certificate chain and host name are checked against
    ``ca_file`` (or, for PKCS#12 without ``ca_file``, the CA certificates inside the
    bundle; or the system store unless ``require_ca``). Without ``verify`` nothing about
    the server is checked and a warning is logged once.

    Raises:
        SinkError: a file is missing or unreadable, the key does not match the
            certificate, the password is wrong, or a required CA is absent. The message
            names the file but never the password.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.security_level is not None:
        context.set_ciphers(f"DEFAULT@SECLEVEL={options.security_level}")
    bundle_cas = ""
    try:
        if options.pkcs12_file is not None:
            bundle_cas = _load_pkcs12(context, sink, options.pkcs12_file, options)
        elif options.cert_file is not None:
            context.load_cert_chain(
                str(options.cert_file),
                str(options.key_file) if options.key_file else None,
                options.private_key_password,
            )
        if not options.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            log.warning(
                "TLS server verification is disabled; the receiver is not authenticated.",
                sink=sink,
            )
            return context
        if options.ca_file is not None:
            context.load_verify_locations(cafile=str(options.ca_file))
        elif bundle_cas:
            context.load_verify_locations(cadata=bundle_cas)
        elif options.require_ca:
            msg = (
                f"sink {sink}: no CA chain to verify the server: set ca_file (the chain "
                "file), or use a PKCS#12 bundle that contains the CA certificates"
            )
            raise SinkError(msg)
        else:
            context.load_default_certs()
    except FileNotFoundError as exc:
        msg = f"sink {sink}: TLS file {exc.filename} does not exist"
        raise SinkError(msg) from None
    except ssl.SSLError as exc:
        msg = (
            f"sink {sink}: cannot load the TLS certificate, key or CA ({exc.reason or exc}); check "
            "that the key matches the certificate, that files are PEM, and the key password"
        )
        raise SinkError(msg) from None
    except OSError as exc:
        msg = f"sink {sink}: cannot read TLS file {exc.filename} ({exc.strerror})"
        raise SinkError(msg) from None
    return context


def _load_pkcs12(context: ssl.SSLContext, sink: str, path: Path, options: TlsOptions) -> str:
    """Load the bundle's key and certificate into ``context``; return its CAs as PEM text."""
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415
    except ImportError:
        msg = f"sink {sink}: pkcs12_file needs the cryptography package (pip install cryptography)"
        raise SinkError(msg) from None
    password = options.private_key_password
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            path.read_bytes(), password.encode() if password else None
        )
    except ValueError:
        msg = f"sink {sink}: cannot open {path}: not PKCS#12, or wrong private_key_password"
        raise SinkError(msg) from None
    if key is None or cert is None:
        msg = f"sink {sink}: {path} holds no private key and certificate for the client"
        raise SinkError(msg)
    # ssl loads keys from files only: write the key encrypted with a one-time password.
    one_time = secrets.token_hex(32)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time.encode()),
    )
    with tempfile.TemporaryDirectory(prefix="o365collector-tls-") as folder:
        cert_path = Path(folder) / "client.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = Path(folder) / "client.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(str(cert_path), str(key_path), one_time)
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in extra)
