"""Long-lived TCP/TLS and UDP connections for socket sinks, reconnecting when stale."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from dataclasses import dataclass

import structlog

from o365collector.clock import Clock

log = structlog.get_logger(__name__)

_CLOSE_TIMEOUT_SECS = 5.0


class TransportError(Exception):
    """Sending failed; the connection was dropped and the next write reconnects.

    ``sent`` counts the leading datagrams the kernel took before the failure (UDP only;
    a stream write is all or nothing from the caller's point of view).
    """

    def __init__(self, message: str, sent: int = 0) -> None:
        """Keep the message and the count of datagrams already sent."""
        super().__init__(message)
        self.sent = sent


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    connect_timeout_secs: float = 10.0
    write_timeout_secs: float = 30.0
    idle_reconnect_secs: float | None = None
    max_age_secs: float | None = None
    tls13_settle_secs: float = 1.0

    def describe(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"


class StreamConnection:
    """One TCP or TLS connection, opened on first write and replaced when stale.

    A connection is stale when the peer closed it, when nothing was written for
    ``idle_reconnect_secs`` (load balancers drop idle connections silently), or when
    it is older than ``max_age_secs``. ``write`` returns only after the bytes were handed
    to the kernel (``drain``); any failure drops the connection and raises
    :class:`TransportError`, so the caller retries on a fresh one.
    """

    def __init__(self, endpoint: Endpoint, clock: Clock) -> None:
        """Nothing is opened until the first write."""
        self.endpoint = endpoint
        self.clock = clock
        self.connections = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._peer_closed = False
        self._opened_at = 0.0
        self._last_write = 0.0

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until it is flushed to the kernel.

        Raises:
            TransportError: connecting or writing failed, or timed out.
        """
        await self._ensure_open()
        writer = self._writer
        assert writer is not None
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.endpoint.write_timeout_secs)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            await self._drop()
            msg = f"write to {self.endpoint.describe()} failed: {_describe(exc)}"
            raise TransportError(msg) from exc
        self._last_write = self.clock.monotonic()

    async def close(self) -> None:
        """Close politely: TLS close_notify, or a TCP half-close waiting for the peer's EOF."""
        writer = self._writer
        if writer is None:
            return
        try:
            if writer.can_write_eof():
                writer.write_eof()
                if self._watcher is not None:
                    await asyncio.wait_for(asyncio.shield(self._watcher), _CLOSE_TIMEOUT_SECS)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), _CLOSE_TIMEOUT_SECS)
        except (OSError, ssl.SSLError, TimeoutError):
            pass
        finally:
            await self._drop()

    async def probe(self) -> str:
        """Open a fresh connection (TCP, TLS handshake and TLS 1.3 verdict), then close it.

        Nothing is written. Returns what was verified, for ``check``.

        Raises:
            TransportError: connecting, the handshake, or the client certificate failed.
        """
        if self._writer is not None:
            await self.close()
        await self._ensure_open()
        writer = self._writer
        assert writer is not None
        ssl_object = writer.get_extra_info("ssl_object")
        peer = self.endpoint.describe()
        if ssl_object is None:
            text = f"TCP connection to {peer} opened and closed (plain TCP: nothing to verify)"
        else:
            context = self.endpoint.ssl_context
            verified = context is not None and context.verify_mode != ssl.CERT_NONE
            version = ssl_object.version() or "TLS"
            text = f"{version} handshake with {peer} done; " + (
                "the receiver's certificate was verified"
                if verified
                else "the receiver's certificate was NOT verified (tls_verify: false)"
            )
            if version == "TLSv1.3":
                session = ssl_object.session
                if session is not None and session.has_ticket:
                    text += "; the receiver accepted the connection (session ticket received)"
                else:
                    settle = self.endpoint.tls13_settle_secs
                    text += f"; the receiver did not refuse the connection within {settle:g} s"
        await self.close()
        return text

    def _stale(self) -> str | None:
        now = self.clock.monotonic()
        endpoint = self.endpoint
        if self._peer_closed or (self._writer is not None and self._writer.is_closing()):
            return "closed by peer"
        if endpoint.idle_reconnect_secs and now - self._last_write >= endpoint.idle_reconnect_secs:
            return "idle"
        if endpoint.max_age_secs and now - self._opened_at >= endpoint.max_age_secs:
            return "max age"
        return None

    async def _notice_peer_close(self) -> None:
        """Let the watcher consume what the peer sent, so a close just received is seen.

        The peer (Devo's balancer, a relay) sends nothing but its close; when the socket
        is readable, a few loop turns let the watcher reach EOF before we write into a
        connection that is already gone (the bytes would be lost without an error).
        """
        writer = self._writer
        sock = writer.get_extra_info("socket") if writer is not None else None
        if sock is None:
            return
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
        for _ in range(8 if readable else 0):
            if self._peer_closed:
                return
            await asyncio.sleep(0)

    async def _ensure_open(self) -> None:
        if self._writer is not None:
            await self._notice_peer_close()
            reason = self._stale()
            if reason is None:
                return
            log.info("Reconnecting sink connection.", peer=self.endpoint.describe(), reason=reason)
            await self.close()
        endpoint = self.endpoint
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    endpoint.host,
                    endpoint.port,
                    ssl=endpoint.ssl_context,
                    server_hostname=(
                        (endpoint.server_hostname or endpoint.host)
                        if endpoint.ssl_context
                        else None
                    ),
                ),
                endpoint.connect_timeout_secs,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            msg = f"cannot connect to {endpoint.describe()}: {_describe(exc)}"
            raise TransportError(msg) from exc
        self._reader, self._writer = reader, writer
        self.connections += 1
        self._peer_closed = False
        self._opened_at = self._last_write = self.clock.monotonic()
        self._watcher = asyncio.create_task(self._watch(reader))
        await self._await_tls13_verdict(writer)

    async def _await_tls13_verdict(self, writer: asyncio.StreamWriter) -> None:
        """Give a TLS 1.3 server the chance to refuse our certificate before we write.

        In TLS 1.3 the client's handshake ends before the server has checked the client
        certificate; a refusal arrives one round trip later, and bytes written meanwhile
        are lost without an error. We wait until the server's session ticket (sent
        after it accepted us) or its refusal arrives, at most ``tls13_settle_secs``.

        Raises:
            TransportError: the server closed the connection right after the handshake.
        """
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.version() not in ("TLSv1.3", None):
            return  # TLS 1.2 checks the client certificate inside the handshake
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.endpoint.tls13_settle_secs):
                while not self._peer_closed:
                    session = ssl_object.session
                    if session is not None and session.has_ticket:
                        return
                    await asyncio.sleep(0.01)
        if self._peer_closed:
            await self._drop()
            msg = (
                f"{self.endpoint.describe()} closed the TLS connection right after the "
                "handshake: it probably refused the client certificate (check cert_file, "
                "key_file or pkcs12_file, and that the receiver trusts its CA)"
            )
            raise TransportError(msg)

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """Read and discard what the peer sends, to notice when it closes the connection."""
        with contextlib.suppress(OSError, ssl.SSLError):
            while await reader.read(4096):
                pass
        self._peer_closed = True

    async def _drop(self) -> None:
        writer, watcher = self._writer, self._watcher
        self._reader = self._writer = None
        self._watcher = None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if writer is not None and not writer.is_closing():
            writer.transport.abort()


class DatagramConnection:
    """A connected UDP socket: ``send`` returns once the kernel took each datagram.

    UDP has no acknowledgement; the only failures seen are local ones and an ICMP
    "port unreachable" from a previous datagram, reported on a later send.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        """Nothing is opened until the first send."""
        self.endpoint = endpoint
        self._sock: socket.socket | None = None

    async def send(self, datagrams: list[bytes]) -> None:
        """Send each datagram in order.

        Raises:
            TransportError: resolving, connecting or sending failed.
        """
        loop = asyncio.get_running_loop()
        sent = 0
        try:
            if self._sock is None:
                infos = await loop.getaddrinfo(
                    self.endpoint.host, self.endpoint.port, type=socket.SOCK_DGRAM
                )
                family, kind, proto, _, address = infos[0]
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, address)
                except OSError:
                    sock.close()
                    raise
                self._sock = sock
            for datagram in datagrams:
                await loop.sock_sendall(self._sock, datagram)
                sent += 1
        except OSError as exc:
            self.close()
            msg = f"send to {self.endpoint.describe()} (udp) failed: {_describe(exc)}"
            raise TransportError(msg, sent) from exc

    async def probe(self) -> str:
        """Resolve the receiver and create a connected UDP socket, then close it; send nothing.

        Raises:
            TransportError: the name does not resolve or no socket can be made for it.
        """
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                self.endpoint.host, self.endpoint.port, type=socket.SOCK_DGRAM
            )
            family, kind, proto, _, address = infos[0]
            with socket.socket(family, kind, proto) as sock:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
        except OSError as exc:
            msg = f"cannot open a UDP socket to {self.endpoint.describe()}: {_describe(exc)}"
            raise TransportError(msg) from exc
        return (
            f"{self.endpoint.describe()} resolved to {address[0]} and a UDP socket was "
            "created; nothing was sent: UDP has no handshake, so whether a receiver listens "
            "is not verified"
        )

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _describe(exc: BaseException) -> str:
    """A short cause for messages; TLS failures say which side refused what."""
    text = type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = "timed out"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"the receiver's TLS certificate was not accepted ({exc.verify_message})"
    elif isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc)
        text = f"TLS error ({reason})"
        if "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
            text += ": the receiver refused our client certificate"
    elif isinstance(exc, socket.gaierror):
        text = f"name resolution failed ({exc.strerror})"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text
