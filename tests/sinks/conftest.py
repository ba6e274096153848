"""Fixtures of the sink tests: certificates, a private rsyslogd, an OpenSearch-compatible server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sinks_servers import RSYSLOG_SKIP, RSYSLOGD, Rsyslog, stop_osmem
from sinks_support import Certs, make_certs, sink_clock

from support import FakeClock


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def clock() -> FakeClock:
    return sink_clock()


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[Rsyslog]:
    if RSYSLOGD is None:
        pytest.skip(RSYSLOG_SKIP)
    server = Rsyslog(tmp_path_factory.mktemp("rsyslog"), certs).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def opensearch() -> Iterator[Any]:
    osmem = pytest.importorskip(
        "osmem_server", reason="osmem-server not installed: add it to the test extra"
    )
    server = osmem.OsmemServer.start(japanese=False)
    yield server
    stop_osmem(server)
