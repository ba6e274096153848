"""Root of the test suite: makes ``tests/support`` importable from every test folder.

The test folders are not packages; a folder with helpers of its own (``harness.py``,
``sinks_support.py``, ...) puts them on ``sys.path`` in its conftest. This one adds the
``tests`` folder itself, so any test or helper can ``from support import FakeClock`` and
import the shared helpers and fixtures of ``support`` (see ``tests/README.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without ``state_dir`` keeps its state under the test's folder, never in ~."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("O365COLLECTOR_STATE_DIR", raising=False)
