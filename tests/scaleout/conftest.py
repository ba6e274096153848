"""The scale-out tests use the state folder's PostgreSQL helpers (``pg_support``)."""

from __future__ import annotations

import sys
from pathlib import Path

_STATE_TESTS = str(Path(__file__).resolve().parent.parent / "state")
if _STATE_TESTS not in sys.path:
    sys.path.insert(0, _STATE_TESTS)
