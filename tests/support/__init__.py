"""Helpers shared by every test folder (``tests/conftest.py`` puts ``tests`` on the path)."""

from support.clock import FakeClock

__all__ = ["FakeClock"]
