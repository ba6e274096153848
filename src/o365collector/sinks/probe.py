"""What ``check`` asks of a sink: ``probe()`` reaches its receiver without delivering anything.

Every sink has ``async def probe(self) -> str``: it does the harmless part of a delivery
(open the file, connect and shake hands, authenticate) and returns what it verified, in
one sentence. A probe that fails raises :class:`ProbeError` with what was seen, a stable
problem name and the fix. Probes never write an event and leave nothing behind.
"""

from __future__ import annotations

import socket
import ssl

from o365collector.errors import SinkError
from o365collector.sinks.transport import TransportError

CERT_FILES = "cert_file and key_file (or pkcs12_file)"


class ProbeError(SinkError):
    """A sink probe failed: ``str(exc)`` is what was seen; ``fix`` what to do about it."""

    def __init__(self, detail: str, fix: str, problem: str = "sink_unreachable") -> None:
        """Keep the detail (the message), the fix and the problem's stable name."""
        super().__init__(detail)
        self.fix = fix
        self.problem = problem


def socket_failure(
    exc: TransportError, *, tls: bool, host_key: str = "host and port"
) -> ProbeError:
    """Turn a failed TCP/TLS connection of a socket sink into a probe failure with its fix."""
    detail = str(exc)
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return ProbeError(
            detail,
            "set ca_file to the CA chain that signed the receiver's certificate; the name "
            f"connected to ({host_key}, or tls_server_name) must be in that certificate",
            "sink_tls",
        )
    if "client certificate" in detail:
        return ProbeError(
            detail,
            f"check {CERT_FILES}: the receiver must trust the CA that issued the client "
            "certificate, and the certificate must not be expired or revoked",
            "sink_client_cert_refused",
        )
    if isinstance(cause, ssl.SSLError):
        return ProbeError(
            detail,
            "check that the receiver speaks TLS on this port (TLS 1.2 or later), or lower "
            "tls_security_level for an old CA signature",
            "sink_tls",
        )
    if isinstance(cause, socket.gaierror):
        return ProbeError(detail, f"check the host name ({host_key}) and DNS")
    if isinstance(cause, TimeoutError):
        return ProbeError(
            detail, f"check {host_key} and that firewalls let this machine reach the receiver"
        )
    what = "TLS " if tls else ""
    return ProbeError(
        detail,
        f"check {host_key}, and that the receiver listens for {what}connections there",
    )
