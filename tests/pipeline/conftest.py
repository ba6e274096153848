"""Fixtures of the pipeline tests: the fake clock of the MockTransport tenant.

The fixture lives in ``support``; importing it here registers it for this folder.
"""

from __future__ import annotations

from support.mock_api import clock

__all__ = ["clock"]
