"""Fixtures of the check tests: certificates and an in-process emulator.

The fixtures live in ``support.auth``; importing them here registers them for this folder.
"""

from __future__ import annotations

from support.auth import cert, emulator

__all__ = ["cert", "emulator"]
