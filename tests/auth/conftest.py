"""Fixtures of the auth and check tests: certificates, an in-process emulator, configs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from auth_support import CertFiles, make_cert_files, start_emulator

from o365emulator import Emulator


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert_files(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="session")
def other_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert_files(tmp_path_factory.mktemp("other-cert"))


@pytest.fixture
def emulator(cert: CertFiles) -> Iterator[Callable[..., Emulator]]:
    """Factory: ``emulator(**tenant_overrides)`` -> a started emulator (one or more tenants)."""
    started: list[Emulator] = []

    def factory(*tenants: dict[str, Any], **overrides: Any) -> Emulator:
        emulator = start_emulator(cert, list(tenants) or [overrides])
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()
