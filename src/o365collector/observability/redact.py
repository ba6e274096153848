"""Secret redaction: every configured secret is masked wherever text leaves the process."""

from __future__ import annotations

import re
import threading

_MASK = "***"
# Configuration keys whose values are secrets (and ``<key>_file`` holds one): never shown
# in an error, a log line or ``state show``, whichever layout (native, Devo, Sekoia) used them.
SECRET_KEYS = frozenset(
    {
        "client_secret",
        "password",
        "account_password",
        "intake_key",
        "token",
        "api_key",
        "private_key_password",
        "dsn",  # state.dsn: a PostgreSQL connection string may hold a password
    }
)
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Values after these words are masked even when the secret was never registered
# (a token in a header we logged by mistake, a password in a URL).
_KEYED = re.compile(
    r"(?i)(client_secret|password|intake_key|access_token|refresh_token|authorization"
    r"|client_assertion)(\"?\s*[:=]\s*\"?)(bearer\s+)?[^\s\"&,;}]+"
)


def register_secret(value: str) -> None:
    """Remember ``value`` so that :func:`redact` masks it everywhere (short values are ignored)."""
    global _pattern  # noqa: PLW0603 - one process-wide registry is the point
    if len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and every keyed credential masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(_MASK, text)
    return _KEYED.sub(lambda m: f"{m.group(1)}{m.group(2)}{_MASK}", text)


def shorten(identifier: str) -> str:
    """Show an identifier (tenant or client id) by its first and last characters only."""
    if len(identifier) <= 8:
        return identifier[:1] + "…"
    return f"{identifier[:4]}…{identifier[-4:]}"
