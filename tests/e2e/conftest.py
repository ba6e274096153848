"""End-to-end tests: real processes (emulator, collector) or whole collector runs.

``harness.py`` beside this file is the shared runner; ``cert`` and ``emulator`` (an in-process
emulator factory, used by ``test_check_failures.py``; a module's own ``emulator`` fixture
overrides it) come from ``support.auth``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from support.auth import cert, emulator

__all__ = ["cert", "emulator"]
