"""Fixtures of the emulated Reporting Web Service tests: those of ``support.rws``.

They replace the parent folder's ``clock`` here: the RWS tests run two hours after the anchor.
"""

from __future__ import annotations

from support.rws import api_factory, clock, emulator

__all__ = ["api_factory", "clock", "emulator"]
