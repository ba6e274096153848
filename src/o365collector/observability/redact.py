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
    r"(?i)(?P<key>client_secret|password|intake_key|access_token|refresh_token"
    r"|authorization|client_assertion)(?P<sep>\"?\s*[:=]\s*\"?)"
    r"(?P<bearer>bearer\s+)?(?P<value>[^\s\"&,;}]+)"
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
    return _KEYED.sub(_mask_keyed, text)


def _mask_keyed(match: re.Match[str]) -> str:
    """Mask a keyed value, but not the problem after a configuration error's key path.

    ``tenants[0].client_secret: required; …`` and a ``  - client_secret: …`` line of a
    ConfigError name a key, not a value (the loader never quotes a secret's value); nor is
    the ``...`` of ``export CONTOSO_CLIENT_SECRET=...`` a value.
    """
    key, sep = match["key"], match["sep"]
    if not match["bearer"] and not match["value"].strip(".…"):
        return match.group(0)
    if sep == ": " and not match["bearer"] and _after_key_path(match.string, match.start()):
        return match.group(0)
    return f"{key}{sep}{_MASK}"


def _after_key_path(text: str, start: int) -> bool:
    """Whether the key at ``start`` ends a dotted key path or opens a ``- key:`` list item."""
    begin = start
    while begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_.[]"):
        begin -= 1
    prefix = text[begin:start]
    return "." in prefix or "]" in prefix or text.endswith("- ", 0, begin)


def shorten(identifier: str) -> str:
    """Show an identifier (tenant or client id) by its first and last characters only."""
    if len(identifier) <= 8:
        return identifier[:1] + "…"
    return f"{identifier[:4]}…{identifier[-4:]}"
