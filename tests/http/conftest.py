"""Fixtures of the http tests: a MockTransport tenant, and certificates with an emulator.

The fixtures live in ``support``; importing them here registers them for this folder.
"""

from __future__ import annotations

from support.auth import cert, emulator, other_cert
from support.mock_api import api_factory, clock

__all__ = ["api_factory", "cert", "clock", "emulator", "other_cert"]
