"""Finding secrets where they must not be: every file of a run, every output, every token.

``files_text`` reads every file under a folder (but the run's inputs) as text; ``leaks``
names each place a secret value turns up in. ``emulator_token_marks`` gives what every
bearer token the Microsoft emulator issues carries (its JWT header segment), plus one
token fetched now and its signature: a token the collector wrote anywhere is found by
its header even though its value was never seen by the test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path

import httpx
import orjson

# The header of every token the emulator signs (o365emulator/tokens.py).
_EMULATOR_JWT_HEADER = {"typ": "JWT", "alg": "HS256", "kid": "o365collector-emulator"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def emulator_token_marks(
    base_url: str, tenant_id: str, client_id: str, client_secret: str, scope: str
) -> list[str]:
    """The emulator's JWT header segment, one fresh token and that token's signature."""
    response = httpx.post(
        f"{base_url}/{tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        },
        timeout=30,
    )
    response.raise_for_status()
    token = str(response.json()["access_token"])
    header = _b64(orjson.dumps(_EMULATOR_JWT_HEADER))
    assert token.startswith(header + "."), "the emulator's token header changed"
    return [header, token, token.rsplit(".", 1)[1]]


def files_text(root: Path, *, skip: Iterable[str] = ("inputs",)) -> dict[str, str]:
    """Every file under ``root`` (but folders named in ``skip``) as text, by path."""
    skipped = set(skip)
    return {
        str(path): path.read_bytes().decode("utf-8", "replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and not skipped & set(path.relative_to(root).parts)
    }


def leaks(texts: Mapping[str, str], secrets: Iterable[str]) -> list[str]:
    """``where: which secret`` for each secret found in each text (secrets shown cut)."""
    values = [s for s in secrets if s]
    return [
        f"{where}: {secret[:6]}…"
        for where, text in texts.items()
        for secret in values
        if secret in text
    ]
