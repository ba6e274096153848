"""Readers of foreign configuration values with the seeds' types and ranges; secret-safe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from o365collector.observability.redact import SECRET_KEYS, register_secret

SECRET_PARAMS = SECRET_KEYS  # one list for every layout
_PLACEHOLDER = re.compile(r"^<[^<>\s]+>$")
EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")  # group 1: the domain
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The seeds read their start times with strptime, which also takes fields without their
# leading zeros (2024-5-7T9:05:00.1): fromisoformat refuses those, so they are read this way.
_UNPADDED_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")


def join(path: str, key: str | int) -> str:
    """``path`` extended by a mapping key (``a.b``) or a list index (``a[0]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def leaf(path: str) -> str:
    """The last key of a dotted path."""
    return path.rsplit(".", 1)[-1]


def shown(path: str, value: Any) -> str:
    """`` (got …)`` for a value worth quoting; nothing for secrets and containers."""
    if leaf(path) in SECRET_PARAMS or isinstance(value, (dict, list)) or value is None:
        return ""
    text = value.isoformat() if isinstance(value, (date, datetime)) else repr(value)
    return f" (got {text[:80]})"


@dataclass
class Problems:
    """Problems found so far, each ``key.path: what is wrong (got value)``; secrets never shown."""

    items: list[str] = field(default_factory=list)

    def add(self, path: str, message: str, value: Any = None) -> None:
        """Record that the parameter at ``path`` breaks a rule (``value`` shown unless secret)."""
        self.items.append(f"{path}: {message}{shown(path, value)}")


@dataclass
class Reader:
    """Reads one foreign mapping's parameters; every problem names the parameter's full path."""

    node: dict[str, Any]
    path: str
    problems: Problems

    def child(self, key: str, *, required: bool = False) -> Reader | None:
        """The mapping under ``key`` (``None`` when absent/blank or not a mapping)."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problems.add(join(self.path, key), "must be a mapping of keys", value)
            return None
        return Reader({str(k): v for k, v in value.items()}, join(self.path, key), self.problems)

    def raw(self, key: str, *, required: bool = False) -> Any:
        """The value at ``key``; blank or absent is ``None`` (a problem when ``required``)."""
        value = self.node.get(key)
        path = join(self.path, key)
        if isinstance(value, str) and _PLACEHOLDER.match(value.strip()):
            self.problems.add(path, f"still the placeholder {value.strip()}; replace it")
            return None
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None and required:
            self.problems.add(path, "required; add this parameter")
        if isinstance(value, str) and leaf(path) in SECRET_PARAMS:
            register_secret(value)
        return value

    def only(self, known: tuple[str, ...]) -> None:
        """Report every key that is not in ``known`` (a misspelt parameter)."""
        for key in self.node:
            if key not in known:
                self.problems.add(
                    join(self.path, key),
                    f"unknown parameter; remove it or fix its spelling "
                    f"(expected one of: {', '.join(known)})",
                )

    def integer(
        self,
        key: str,
        *,
        low: int | None = None,
        high: int | None = None,
        default: int | None = None,
        required: bool = False,
    ) -> int | None:
        """An integer (or a string of digits) between ``low`` and ``high`` inclusive."""
        value = self.raw(key, required=required)
        if value is None:
            return default
        path = join(self.path, key)
        number = _as_int(value)
        if number is None:
            self.problems.add(path, "must be a whole number", value)
            return default
        if low is not None and high is not None and not low <= number <= high:
            self.problems.add(path, f"must be between {low} and {high}", value)
        elif low is not None and number < low:
            self.problems.add(path, f"must be at least {low}", value)
        elif high is not None and number > high:
            self.problems.add(path, f"must be at most {high}", value)
        else:
            return number
        return default

    def identifier(self, key: str) -> int | None:
        """A required id of 1 to 5 digits (the seeds' collector and input ids)."""
        value = self.raw(key, required=True)
        if value is None:
            return None
        number = _as_int(value)
        if number is None or number < 0 or len(str(number)) > 5:
            self.problems.add(join(self.path, key), "must be a number of 1 to 5 digits", value)
            return None
        return number

    def boolean(self, key: str, *, default: bool | None = None, required: bool = False) -> bool:
        """``true`` or ``false`` (also as strings, as environment variables give them)."""
        value = self.raw(key, required=required)
        if value is None:
            return bool(default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        self.problems.add(join(self.path, key), "must be true or false", value)
        return bool(default)

    def text(
        self,
        key: str,
        *,
        min_len: int = 1,
        max_len: int | None = None,
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        """A string of ``min_len`` to ``max_len`` characters."""
        value = self.raw(key, required=required)
        if value is None:
            return default
        path = join(self.path, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problems.add(path, "must be a string", value)
            return default
        if len(value) < min_len or (max_len is not None and len(value) > max_len):
            span = f"{min_len} to {max_len}" if max_len is not None else f"at least {min_len}"
            self.problems.add(path, f"must be {span} characters long", value)
            return default
        return value

    def day(self, key: str) -> str | None:
        """A date ``YYYY-MM-DD`` (YAML may have parsed it already), as that string."""
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, str) and _DATE.match(value.strip()):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        self.problems.add(join(self.path, key), "must be a date YYYY-MM-DD", value)
        return None

    def timestamp(self, key: str) -> datetime | None:
        """An ISO-8601 time like ``2024-05-07T15:35:24.133642`` (UTC unless it has an offset)."""
        value = self.raw(key)
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else _parse_time(value)
        if moment is None:
            self.problems.add(
                join(self.path, key),
                "must be an RFC 3339 time like 2024-05-07T15:35:24.133642",
                value,
            )
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value.strip())
    return None


def _parse_time(value: Any) -> datetime | None:
    """A date and time (``T`` between them), ISO-8601 or the seeds' unpadded form; else None."""
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text)  # Z, offsets, 0-7+ fractional digits
    except ValueError:
        pass
    for fmt in _UNPADDED_FORMATS:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 - naive means UTC, set by caller
        except ValueError:
            continue
    return None
