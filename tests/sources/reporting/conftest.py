"""Fixtures of the RWS source tests: a fake clock, ApiClients over MockTransport or the emulator.

The fixtures live in ``support.rws``; importing them here registers them for this folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from support.rws import api_factory, clock, emulator

__all__ = ["api_factory", "clock", "emulator"]
