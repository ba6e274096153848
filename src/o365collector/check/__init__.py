"""``o365collector check``: sign in, read a little of each stream, reach each sink, name fixes."""

from __future__ import annotations

from o365collector.check.model import Finding, Report
from o365collector.check.runner import run_check

__all__ = ["Finding", "Report", "run_check"]
