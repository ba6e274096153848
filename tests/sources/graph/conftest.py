"""Fixtures of the Graph source tests: a fake clock and an ApiClient over MockTransport.

The fixtures live in ``support``; importing them here registers them for this folder.
"""

from __future__ import annotations

from support.mock_api import api_factory, clock

__all__ = ["api_factory", "clock"]
