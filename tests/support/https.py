"""pytest-httpserver over TLS, its certificate issued by a private (trustme) CA.

A client trusts it only with that CA's certificate (``ca.cert_pem``); with any other CA,
or with the system store, the handshake is refused.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import trustme
from pytest_httpserver import HTTPServer


@contextmanager
def https_server(
    ca: trustme.CA, names: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> Iterator[HTTPServer]:
    """A started HTTPS server on 127.0.0.1 with a certificate ``ca`` issued for ``names``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()
