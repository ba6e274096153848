"""Injected faults: make the next requests to an API fail in a chosen way (for fault tests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from .responses import Response, json_response

Target = Literal["graph", "token", "any"]
Kind = Literal["status", "html", "drop"]

_HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in to Outlook</title></head>"
    b"<body>Sign in to your account</body></html>"
)

DROP = Response(0)  # the handler closes the connection without answering


@dataclass
class FaultRule:
    """Fail the next ``count`` requests to ``target``.

    ``kind``: ``status`` answers ``status`` (with ``Retry-After`` when given), ``html``
    answers 200 with an HTML sign-in page, ``drop`` closes the connection unanswered.
    """

    target: Target = "graph"
    kind: Kind = "status"
    status: int = 503
    count: int = 1
    retry_after_secs: int | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> FaultRule:
        """Build from JSON (``POST /_emulator/faults``); unknown keys are errors."""
        allowed = {"target", "kind", "status", "count", "retry_after_secs"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        rule = cls(**data)
        if rule.target not in ("graph", "token", "any") or rule.kind not in (
            "status",
            "html",
            "drop",
        ):
            raise ValueError("target must be graph|token|any and kind status|html|drop")
        if rule.count < 1:
            raise ValueError("count must be at least 1")
        return rule


class FaultPlan:
    """The pending faults, consumed in order, thread-safe."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.injected = 0

    def set(self, rules: list[FaultRule]) -> None:
        """Replace the pending faults."""
        with self._lock:
            self._rules = list(rules)

    def pending(self) -> int:
        """Requests still to be failed."""
        with self._lock:
            return sum(rule.count for rule in self._rules)

    def take(self, target: Target) -> Response | None:
        """The fault response for this request to ``target``, if one is pending."""
        with self._lock:
            for rule in self._rules:
                if rule.target in (target, "any"):
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                    self.injected += 1
                    return _response(rule)
        return None


def _response(rule: FaultRule) -> Response:
    if rule.kind == "drop":
        return DROP
    if rule.kind == "html":
        return Response(200, _HTML, [("Content-Type", "text/html; charset=utf-8")])
    headers = []
    if rule.retry_after_secs is not None:
        headers.append(("Retry-After", str(rule.retry_after_secs)))
    if rule.status == 429:
        body = {"error": {"code": "TooManyRequests", "message": "Injected throttling."}}
    else:
        body = {"error": {"code": "ServiceUnavailable", "message": "Injected failure."}}
    return json_response(rule.status, body, headers=headers)
