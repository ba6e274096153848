"""Syslog-family framing shared by the syslog and Devo sinks (RFC 5424, 3164, 6587, Devo)."""

from __future__ import annotations

import zlib
from datetime import datetime

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17,
    "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SEVERITIES = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6,
    "debug": 7,
}  # fmt: skip

DEVO_DATE = b"Jan  1 00:00:00"
"""Devo stamps events on arrival; its SDK sends this placeholder, and so do we."""

_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")  # fmt: skip


def pri(facility: str, severity: str) -> bytes:
    """``<N>`` with N = facility * 8 + severity."""
    return b"<%d>" % (FACILITIES[facility] * 8 + SEVERITIES[severity])


def rfc3164_date(now: datetime) -> bytes:
    """``Mmm dd hh:mm:ss`` (day padded with a space), in the time zone of ``now``."""
    return b"%s %2d %02d:%02d:%02d" % (
        _MONTHS[now.month - 1],
        now.day,
        now.hour,
        now.minute,
        now.second,
    )


def rfc5424_header(
    prival: bytes, now: datetime, hostname: str, app_name: str, msg_id: str
) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD `` (no structured data)."""
    stamp = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return b"%s1 %s %s %s - %s - " % (
        prival,
        stamp.encode(),
        hostname.encode(),
        app_name.encode(),
        msg_id.encode(),
    )


def rfc3164_header(prival: bytes, now: datetime, hostname: str, tag: str) -> bytes:
    """``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: ``."""
    return b"%s%s %s %s: " % (prival, rfc3164_date(now), hostname.encode(), tag.encode())


def devo_header(hostname: str, table: str) -> bytes:
    """Devo's line head: ``<14>Jan  1 00:00:00 HOSTNAME TABLE: `` (the tag is the table)."""
    return b"<14>%s %s %s: " % (DEVO_DATE, hostname.encode(), table.encode())


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``LEN SP MSG`` with LEN the byte length of MSG."""
    return b"%d %s" % (len(message), message)


def devo_frame(header: bytes, message: bytes) -> bytes:
    """One Devo event as its SDK writes it.

    The line is ``header + message + "\\n"``; a message that contains a newline is sent
    octet-counted, the count covering the whole line including its final newline.
    """
    line = header + message
    if not line.endswith(b"\n"):
        line += b"\n"
    if b"\n" in message.rstrip(b"\n"):
        return octet_counted(line)
    return line


def stream_frame(message: bytes, *, octet_counting: bool) -> bytes:
    """One syslog message on a TCP/TLS stream: octet-counted, or terminated by LF."""
    return octet_counted(message) if octet_counting else message + b"\n"


def gzip_member(data: bytes, level: int) -> bytes:
    """One complete gzip member of ``data`` (as Devo's SDK makes for each buffer flush)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()
