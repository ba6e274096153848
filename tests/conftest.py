"""Root of the test suite: makes ``tests/support`` importable from every test folder.

The test folders are not packages; a folder with helpers of its own (``harness.py``,
``sinks_support.py``, ...) puts them on ``sys.path`` in its conftest. This one adds the
``tests`` folder itself, so any test or helper can ``from support import FakeClock`` and
import the shared helpers and fixtures of ``support`` (see ``tests/README.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
