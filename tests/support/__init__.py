"""Helpers shared by several test folders (``tests/conftest.py`` puts ``tests`` on the path).

``clock`` (FakeClock), ``mock_api`` (a tenant behind MockTransport), ``auth`` (certificates,
sign-in, ``check``), ``rws`` (the Reporting Web Service tenant) and ``compat`` (the seeds'
configurations). Their fixtures are registered by importing them in a folder's conftest.
"""

from support.clock import FakeClock

__all__ = ["FakeClock"]
