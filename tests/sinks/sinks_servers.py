"""Real loopback receivers for the socket sinks: a threaded TCP/mTLS capture server, rsyslogd."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinks_support import Certs, free_port, wait_for

RSYSLOGD = shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
)
RSYSLOG_SKIP = "rsyslogd not installed: .ci/run installs rsyslog rsyslog-gnutls"


class CaptureServer:
    """Accepts TCP (optionally TLS with a required client certificate) and keeps the bytes.

    Every connection's bytes are kept separately in :attr:`connections`; a connection is
    closed by the server when the client closes its side (as Devo's balancer does).
    ``stop`` closes the listener and every connection; ``start`` listens again on the
    same port.
    """

    def __init__(self, certs: Certs | None = None, *, require_client_cert: bool = True) -> None:
        self.port = free_port()
        self.context: ssl.SSLContext | None = None
        if certs is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(certs.server_cert), str(certs.server_key))
            ctx.load_verify_locations(cafile=str(certs.ca_file))
            ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
            self.context = ctx
        self.connections: list[bytearray] = []
        self.peer_certs: list[dict[str, object] | None] = []
        self.handshake_failures = 0
        self.closed_connections = 0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> CaptureServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)
        self._threads = []

    @property
    def data(self) -> bytes:
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        if self.context is not None:
            try:
                sock = self.context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                with self._lock:
                    self.handshake_failures += 1
                raw.close()
                return
        buffer = bytearray()
        with self._lock:
            self._socks.append(sock)
            self.connections.append(buffer)
            if isinstance(sock, ssl.SSLSocket):
                self.peer_certs.append(sock.getpeercert())
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    buffer.extend(chunk)
        except (OSError, ssl.SSLError):
            pass
        finally:
            if isinstance(sock, ssl.SSLSocket):
                with contextlib.suppress(OSError, ssl.SSLError, ValueError):
                    sock.unwrap()
            sock.close()
            with self._lock:
                self.closed_connections += 1


@dataclass
class Entry:
    """One message as rsyslog parsed it."""

    hostname: str
    programname: str
    msgid: str
    msg: str


class Rsyslog:
    """A private rsyslogd: UDP, TCP and TLS (mutual, x509/certvalid) inputs, one file each.

    Runs in the foreground of its own process with a pid file and work directory in
    ``folder``, so it never touches a system rsyslog. Each output line is
    ``hostname|programname|msgid|msg-as-JSON-string``.
    """

    def __init__(self, folder: Path, certs: Certs) -> None:
        assert RSYSLOGD is not None
        self.folder = folder
        self.certs = certs
        self.ports = {
            "udp": free_port(socket.SOCK_DGRAM),
            "tcp": free_port(),
            "tls": free_port(),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        (folder / "work").mkdir(parents=True, exist_ok=True)
        self.conf = folder / "rsyslog.conf"
        self.conf.write_text(self._config(), encoding="utf-8")

    def out(self, transport: str) -> Path:
        return self.folder / f"{transport}.log"

    def _config(self) -> str:
        c = self.certs
        rules = "\n".join(
            f'ruleset(name="{t}") {{ action(type="omfile" file="{self.out(t)}" template="line") }}'
            for t in self.ports
        )
        return f"""
global(workDirectory="{self.folder / "work"}" maxMessageSize="1m" net.enableDNS="off"
       parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="{c.ca_file}"
       defaultNetstreamDriverCertFile="{c.server_cert}"
       defaultNetstreamDriverKeyFile="{c.server_key}")
module(load="imudp")
module(load="imtcp" maxSessions="50")
template(name="line" type="list") {{
  property(name="hostname") constant(value="|") property(name="programname")
  constant(value="|") property(name="msgid") constant(value="|")
  property(name="msg" format="json") constant(value="\\n")
}}
{rules}
input(type="imudp" address="127.0.0.1" port="{self.ports["udp"]}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{self.ports["tcp"]}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{self.ports["tls"]}" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
"""

    def start(self) -> Rsyslog:
        assert RSYSLOGD is not None
        with (self.folder / "rsyslogd.stderr").open("ab") as log:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.folder / "rsyslogd.pid")],
                stdout=log,
                stderr=log,
            )
        for transport in ("tcp", "tls"):
            wait_for(lambda t=transport: self._accepts(t), what=f"rsyslogd {transport} port")
        self._probe_udp()
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def entries(self, transport: str) -> list[Entry]:
        """Messages received on ``transport``, probes excluded."""
        path = self.out(transport)
        if not path.exists():
            return []
        # rsyslogd may be half-way through writing the last line: read only
        # complete lines, so a poll never parses (or decodes) a torn record.
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1].decode("utf-8")
        out = []
        for line in complete.splitlines():
            host, prog, msgid, msg = line.split("|", 3)
            if prog != "probe":
                out.append(Entry(host, prog, msgid, json.loads(f'"{msg}"')))
        return out

    def wait_entries(self, transport: str, count: int) -> list[Entry]:
        wait_for(lambda: len(self.entries(transport)) >= count, what=f"{count} {transport} msgs")
        return self.entries(transport)

    def _accepts(self, transport: str) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = (self.folder / "rsyslogd.stderr").read_text(errors="replace")
            raise AssertionError(f"rsyslogd exited: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.ports[transport]), timeout=1):
                return True
        except OSError:
            return False

    def _probe_udp(self) -> None:
        path = self.out("udp")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:

            def arrived() -> bool:
                sock.sendto(b"<14>Jan  1 00:00:00 h probe: ready", ("127.0.0.1", self.ports["udp"]))
                return path.exists() and "|probe|" in path.read_text(errors="replace")

            wait_for(arrived, what="rsyslogd udp probe")


def stop_osmem(server: Any) -> None:
    """Stop an osmem-server and close the stdout pipe the library leaves open."""
    server.close()
    if server.process.stdout is not None:
        server.process.stdout.close()
