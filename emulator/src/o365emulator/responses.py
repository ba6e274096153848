"""Transport-neutral HTTP responses and the Graph / Entra error shapes the emulator answers with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_TYPE = "application/json; charset=utf-8"
ODATA_JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


@dataclass
class Response:
    """An HTTP response; ``body`` is bytes, or an iterable of chunks sent chunked."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    status: int,
    payload: Any,
    *,
    content_type: str = JSON_TYPE,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """Serialise ``payload`` with orjson into a Response."""
    return Response(
        status, orjson.dumps(payload), [("Content-Type", content_type), *(headers or [])]
    )


class GraphError(Exception):
    """A Graph API error: ``{"error": {"code", "message", "innerError"}}`` with a status."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """Create the error; ``message`` must say what was wrong and how to fix it."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


def bad_request(message: str) -> GraphError:
    """A 400 BadRequest Graph error."""
    return GraphError(400, "BadRequest", message)


def graph_error_response(
    error: GraphError, *, request_id: str, client_request_id: str, date: str
) -> Response:
    """Render a GraphError in Graph's error envelope."""
    payload = {
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return json_response(error.status, payload, headers=error.headers)
