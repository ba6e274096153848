"""Helpers for the sink tests: events, a fake clock, certificates, polling, frame parsing."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from o365collector.event import Event, event_id
from support import FakeClock

EPOCH = datetime(2026, 11, 22, 8, 30, 0, tzinfo=UTC)
TENANT = "contoso"
TENANT_ID = "7d1b0000-0000-0000-0000-00000000a001"
# Subjects that break naive framing or encodings: newlines, CR, tabs, non-ASCII, quotes.
SUBJECTS = (
    "Quarterly report",
    "Réunion\nQ3 — ordre du jour",
    "会議のお知らせ 🚀",
    'Line one\r\nLine two\t"quoted" \\ backslash',
    "Ünïcødé ✓ — Привет",
)


def record(n: int, **extra: Any) -> dict[str, Any]:
    """A Graph exchangeMessageTrace-shaped record."""
    received = EPOCH + timedelta(seconds=n, microseconds=123456)
    out: dict[str, Any] = {
        "id": f"0c5d{n:04d}-aaaa-bbbb-cccc-0000000{n:05d}",
        "senderAddress": f"sender{n}@contoso.com",
        "recipientAddress": f"rcpt{n}@fabrikam.com",
        "messageId": f"<msg-{n}@contoso.com>",
        "receivedDateTime": received.isoformat().replace("+00:00", "Z"),
        "subject": SUBJECTS[n % len(SUBJECTS)],
        "size": 1000 + n,
        "fromIP": "203.0.113.7",
        "toIP": "198.51.100.9",
        "status": "delivered",
    }
    out.update(extra)
    return out


def make_event(n: int, stream: str = "message_trace", **extra: Any) -> Event:
    """One event around :func:`record`."""
    rec = record(n, **extra)
    eid = event_id(TENANT_ID, stream, rec["id"], rec["recipientAddress"], rec["status"])
    return Event(TENANT, stream, eid, rec)


def make_events(count: int, start: int = 0) -> list[Event]:
    """``count`` distinct events."""
    return [make_event(n) for n in range(start, start + count)]


def sink_clock() -> FakeClock:
    """The suite's fake clock at the sink tests' epoch (monotonic readings from 1000 s)."""
    return FakeClock(EPOCH, monotonic_start=1000.0)


@dataclass
class Certs:
    """A private CA with a server certificate (localhost, 127.0.0.1) and a client one."""

    folder: Path
    ca: trustme.CA
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certs(folder: Path) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("collector.contoso.test")
    paths = {
        "ca_file": folder / "chain.crt",
        "server_cert": folder / "server.crt",
        "server_key": folder / "server.key",
        "client_cert": folder / "client.crt",
        "client_key": folder / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca_file"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return Certs(folder, ca, **paths)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll until ``predicate()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def split_frames(data: bytes) -> list[bytes]:
    """Split a syslog TCP stream into messages: octet-counted (``LEN SP``) or LF-terminated."""
    frames: list[bytes] = []
    pos = 0
    while pos < len(data):
        head = data[pos : pos + 10]
        space = head.find(b" ")
        if space > 0 and head[:space].isdigit() and data[pos : pos + 1] != b"<":
            length = int(head[:space])
            start = pos + space + 1
            frames.append(data[start : start + length])
            pos = start + length
        else:
            end = data.index(b"\n", pos)
            frames.append(data[pos : end + 1])
            pos = end + 1
    return frames


def gunzip_members(data: bytes) -> list[bytes]:
    """Decompress a concatenation of gzip members, one result per member."""
    import zlib

    out: list[bytes] = []
    while data:
        decomp = zlib.decompressobj(31)
        out.append(decomp.decompress(data) + decomp.flush())
        data = decomp.unused_data
    return out


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)
