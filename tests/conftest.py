"""Root of the test suite: makes ``tests/support`` importable from every test folder.

The test folders are not packages; each one's conftest puts its own helpers on
``sys.path``. This one adds the ``tests`` folder itself, so any test or helper can
``from support import FakeClock``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
