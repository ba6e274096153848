"""OData query options of the Graph message trace list: $filter, $top, $skiptoken, time window."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from .dataset import STATUS_BY_LOWER, RowKey
from .responses import bad_request
from .ticks import TICKS_PER_SEC, parse_odata_datetime

DEFAULT_WINDOW = 48 * 3600 * TICKS_PER_SEC
MAX_INTERVAL = 10 * 86400 * TICKS_PER_SEC
RETENTION = 90 * 86400 * TICKS_PER_SEC
QUERY_OPTIONS = ("$filter", "$top", "$skiptoken")
EQ_PROPERTIES = {
    name.lower(): name
    for name in ("id", "messageId", "senderAddress", "recipientAddress", "status", "fromIP", "toIP")
}
SUBJECT_FUNCTIONS = {"contains", "startswith", "endswith"}
# Accepted by the service though never served without the opt-in header.
EXTRA_STATUSES = {"unknownfuturevalue", "recalled"}
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[^\s(),']+))")


@dataclass(frozen=True)
class TraceFilter:
    """A parsed ``$filter``: each property keeps only its last value (documented quirk).

    Attributes:
        start: ``receivedDateTime ge`` bound in ticks (inclusive), if given.
        end: ``receivedDateTime le`` bound in ticks (inclusive), if given.
        eq: Canonical property name -> compared value for ``eq`` clauses.
        subject: (function, needle) for contains/startsWith/endsWith on subject.
    """

    start: int | None = None
    end: int | None = None
    eq: dict[str, str] = field(default_factory=dict)
    subject: tuple[str, str] | None = None


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise bad_request(
                f"Invalid $filter: syntax error at position {pos} in '{text}' "
                "(unterminated string literal?)"
            )
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over ``expr := term ((and|or) term)*``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.start: int | None = None
        self.end: int | None = None
        self.eq: dict[str, str] = {}
        self.subject: tuple[str, str] | None = None

    def _error(self, problem: str) -> Exception:
        return bad_request(f"Invalid $filter '{self.text}': {problem}")

    def _next(self, expected: str) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise self._error(f"unexpected end, expected {expected}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect_punct(self, char: str) -> None:
        kind, value = self._next(f"'{char}'")
        if (kind, value) != ("punct", char):
            raise self._error(f"expected '{char}' but found '{value}'")

    def parse(self) -> TraceFilter:
        if not self.tokens:
            raise self._error("the filter is empty")
        self._expr()
        if self.pos != len(self.tokens):
            raise self._error(f"unexpected '{self.tokens[self.pos][1]}'")
        return TraceFilter(self.start, self.end, self.eq, self.subject)

    def _expr(self) -> None:
        self._term()
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            conjunction = self.tokens[self.pos][1].lower()
            if conjunction not in ("and", "or"):
                raise self._error(f"expected 'and' or 'or' but found '{self.tokens[self.pos][1]}'")
            self.pos += 1  # 'or' is accepted and behaves like 'and': last value per property wins
            self._term()

    def _term(self) -> None:
        kind, value = self._next("a comparison")
        if (kind, value) == ("punct", "("):
            self._expr()
            self._expect_punct(")")
            return
        if kind != "word":
            raise self._error(f"expected a property name but found '{value}'")
        if value.lower() == "not":
            raise self._error("'not' is not supported")
        if self.pos < len(self.tokens) and self.tokens[self.pos] == ("punct", "("):
            self._function(value)
            return
        operator = self._next("an operator")[1].lower()
        self._comparison(value, operator, self._next("a value"))

    def _function(self, name: str) -> None:
        if name.lower() not in SUBJECT_FUNCTIONS:
            raise self._error(f"unknown function '{name}'; use contains, startsWith or endsWith")
        self._expect_punct("(")
        prop = self._next("a property name")[1]
        if prop.lower() != "subject":
            raise self._error(f"{name}() is only supported on subject, not '{prop}'")
        self._expect_punct(",")
        kind, literal = self._next("a string literal")
        if kind != "str":
            raise self._error(f"{name}() needs a quoted string, found '{literal}'")
        self._expect_punct(")")
        self.subject = (name.lower(), literal[1:-1].replace("''", "'"))

    def _comparison(self, prop: str, operator: str, token: tuple[str, str]) -> None:
        kind, literal = token
        lower = prop.lower()
        if lower == "receiveddatetime":
            if operator not in ("ge", "le"):
                raise self._error(
                    f"operator '{operator}' is not supported on receivedDateTime; use ge and le"
                )
            if kind != "word":
                raise self._error(
                    f"receivedDateTime needs an unquoted DateTimeOffset, got {literal}"
                )
            try:
                ticks = parse_odata_datetime(literal)
            except ValueError as exc:
                raise self._error(str(exc)) from exc
            if operator == "ge":
                self.start = ticks
            else:
                self.end = ticks
            return
        if lower == "subject":
            raise self._error("subject supports only contains(), startsWith() and endsWith()")
        if lower not in EQ_PROPERTIES:
            raise self._error(
                f"could not find a property named '{prop}' on type "
                "'microsoft.graph.exchangeMessageTrace'"
            )
        if operator != "eq":
            raise self._error(f"operator '{operator}' is not supported on {prop}; use eq")
        if kind != "str":
            raise self._error(f"{prop} needs a quoted string literal, got {literal}")
        text = literal[1:-1].replace("''", "'")
        valid_status = text.lower() in STATUS_BY_LOWER or text.lower() in EXTRA_STATUSES
        if lower == "status" and not valid_status:
            raise self._error(f"'{text}' is not a valid exchangeMessageTraceStatus value")
        self.eq[EQ_PROPERTIES[lower]] = text


def parse_filter(text: str) -> TraceFilter:
    """Parse a ``$filter`` value.

    Raises:
        GraphError: 400 BadRequest naming the problem.
    """
    return _Parser(text).parse()


def resolve_window(flt: TraceFilter, now: int) -> tuple[int, int]:
    """The inclusive [start, end] tick window a first-page request asks for.

    No bounds means the previous 48 hours. Otherwise both bounds are required, the interval
    is at most 10 days, the start at most 90 days back and the end not after ``now``.

    Raises:
        GraphError: 400 BadRequest stating which rule was broken.
    """
    if flt.start is None and flt.end is None:
        return now - DEFAULT_WINDOW, now
    if flt.start is None or flt.end is None:
        raise bad_request(
            "Both 'receivedDateTime ge' and 'receivedDateTime le' must be specified "
            "when filtering on receivedDateTime."
        )
    if flt.start > flt.end:
        raise bad_request("The receivedDateTime start must not be later than the end.")
    if flt.end - flt.start > MAX_INTERVAL:
        raise bad_request("The receivedDateTime interval must not exceed 10 days.")
    if flt.start < now - RETENTION:
        raise bad_request("The receivedDateTime start must be within the last 90 days.")
    if flt.end > now:
        raise bad_request("The receivedDateTime end must not be in the future.")
    return flt.start, flt.end


def parse_top(text: str | None, default: int, maximum: int) -> int:
    """Parse ``$top``: an integer 1..maximum (default when absent); 400 otherwise."""
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= maximum:
        raise bad_request(
            f"Invalid $top value '{text}': it must be an integer from 1 to {maximum}."
        )
    return int(text)


def parse_query(query: str) -> dict[str, str]:
    """The recognised system query options (names lower-cased); others are ignored.

    Raises:
        GraphError: 400 when an option appears more than once.
    """
    out: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = name.lower()
        if key in QUERY_OPTIONS:
            if key in out:
                raise bad_request(
                    f"Query option '{name}' was specified more than once, "
                    "but it must be specified at most once."
                )
            out[key] = value
    return out


@dataclass(frozen=True)
class Cursor:
    """Keyset position of a paged query: rows strictly below ``key`` remain to be served."""

    key: RowKey
    window: tuple[int, int]
    filter_digest: str


def filter_digest(filter_text: str | None) -> str:
    """Short digest binding a skiptoken to the $filter it was issued for."""
    return hashlib.sha256((filter_text or "").encode()).hexdigest()[:16]


def encode_skiptoken(cursor: Cursor) -> str:
    """Opaque base64url token for ``cursor``."""
    ticks, guid, recipient = cursor.key
    payload = {
        "k": [ticks, guid.hex(), recipient],
        "w": list(cursor.window),
        "f": cursor.filter_digest,
    }
    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


def _cursor(data: object) -> Cursor | None:
    if not isinstance(data, dict):
        return None
    key, window, digest = data.get("k"), data.get("w"), data.get("f")
    if not (
        isinstance(key, list)
        and len(key) == 3
        and isinstance(window, list)
        and len(window) == 2
        and isinstance(digest, str)
    ):
        return None
    ticks, guid_hex, recipient = key
    if not (
        all(isinstance(v, int) for v in (ticks, *window))
        and isinstance(guid_hex, str)
        and isinstance(recipient, str)
        and re.fullmatch(r"[0-9a-f]{32}", guid_hex)
    ):
        return None
    return Cursor((ticks, bytes.fromhex(guid_hex), recipient), (window[0], window[1]), digest)


def decode_skiptoken(token: str) -> Cursor:
    """Inverse of :func:`encode_skiptoken`; 400 BadRequest for anything malformed."""
    try:
        cursor = _cursor(orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        cursor = None
    if cursor is None:
        raise bad_request("Invalid $skiptoken value: follow @odata.nextLink unchanged.")
    return cursor
