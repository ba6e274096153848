"""The reference material beside the repository (``../shared``): samples and peer fixtures.

It is not shipped with the repository. A test that reads it calls :func:`shared_or_skip`:
without it the test skips with the reason, or fails where ``O365COLLECTOR_REQUIRE_SHARED``
is set (CI, which has ``../shared`` beside the repository). No test reads it silently only
when present.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "reference" / "samples"
FIXTURES = SHARED / "fixtures"
REQUIRE_SHARED = "O365COLLECTOR_REQUIRE_SHARED"


def shared_or_skip(path: Path) -> Path:
    """``path`` under ../shared; when it is absent, skip with the reason, or fail in CI."""
    if not path.exists():
        reason = f"{path} is absent: the shared reference samples are not checked out"
        if os.environ.get(REQUIRE_SHARED):
            pytest.fail(f"{reason}, and {REQUIRE_SHARED} is set")
        pytest.skip(reason)
    return path
