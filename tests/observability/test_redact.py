"""Secret redaction: registered secrets, keyed credentials, and id shortening."""

from __future__ import annotations

import uuid

import pytest

from o365collector.observability.redact import redact, register_secret, shorten


def _secret(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_registered_secret_is_masked_everywhere() -> None:
    secret = _secret()
    register_secret(secret)
    text = f"a {secret} b {secret}{secret} c"
    assert redact(text) == "a *** b ****** c"


def test_several_secrets_longest_first() -> None:
    short = _secret("k")
    long = short + "-suffix"
    register_secret(short)
    register_secret(long)
    masked = redact(f"x {long} y {short} z")
    assert masked == "x *** y *** z"
    assert "suffix" not in masked


def test_secret_with_regex_characters() -> None:
    secret = f"a+b*c(d)[e]|{uuid.uuid4().hex[:6]}$"
    register_secret(secret)
    assert redact(f"<{secret}>") == "<***>"
    assert redact("a+b*c(d)") == "a+b*c(d)"


def test_registering_twice_is_harmless() -> None:
    secret = _secret()
    register_secret(secret)
    register_secret(secret)
    assert redact(secret) == "***"


@pytest.mark.parametrize("value", ["", "a", "ab", "abc"])
def test_short_values_are_ignored(value: str) -> None:
    register_secret(value)
    text = "alphabet abc ab a"
    assert redact(text) == text


def test_four_characters_is_enough() -> None:
    value = "Qz#8"
    register_secret(value)
    assert redact("x Qz#8 y") == "x *** y"


def test_unregistered_text_untouched() -> None:
    text = "tenant contoso read 5000 rows in 2.5 s"
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "hidden", "expected"),
    [
        ("client_secret=abc123XYZ&scope=x", "abc123XYZ", "client_secret=***&scope=x"),
        ('{"password": "hunter2hunter"}', "hunter2hunter", '{"password": "***"}'),
        ("PASSWORD = s3cr3t;", "s3cr3t", "PASSWORD = ***;"),
        ("Authorization: Bearer x", "Bearer x", "Authorization: ***"),
        ("authorization: bearer eyJhbGciOi.J9.sig rest", "eyJhbGciOi", "authorization: *** rest"),
        ('{"access_token":"eyJ0eXAi.abc.def","expires_in":3599}', "eyJ0eXAi", None),
        ("refresh_token=rt-999 other", "rt-999", "refresh_token=*** other"),
        ("intake_key: ik-123456", "ik-123456", "intake_key: ***"),
        ("client_assertion=jwt.jwt.jwt", "jwt.jwt", "client_assertion=***"),
    ],
)
def test_keyed_credentials_are_masked(text: str, hidden: str, expected: str | None) -> None:
    masked = redact(text)
    assert hidden not in masked
    assert "***" in masked
    if expected is not None:
        assert masked == expected


def test_keyed_masking_keeps_surrounding_fields() -> None:
    masked = redact('{"access_token":"eyJ0eXAi.abc.def","expires_in":3599}')
    assert masked == '{"access_token":"***","expires_in":3599}'


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("", "…"),
        ("a", "a…"),
        ("contoso", "c…"),
        ("12345678", "1…"),
        ("123456789", "1234…6789"),
        ("11111111-2222-3333-4444-555555555555", "1111…5555"),
    ],
)
def test_shorten(identifier: str, expected: str) -> None:
    assert shorten(identifier) == expected
