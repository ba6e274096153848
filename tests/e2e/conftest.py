"""End-to-end tests: real processes (emulator, collector) or whole collector runs.

``harness.py`` beside this file is the shared runner; ``cert`` comes from ``support.auth``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from support.auth import cert

__all__ = ["cert"]
