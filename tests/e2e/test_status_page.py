"""Issue 17: the ``/`` status page of a running collector, loaded in a real headless Chromium.

One emulator, one collector (``observability.listen`` on a free port) with two tenants and
two streams each (Graph message trace and RWS MessageTrace). Once every stream delivered,
Chromium loads ``/``: its DOM has a row per tenant × stream with a lag and delivered rows,
no secret, and a screenshot of it is saved beside the test's files.

Chromium comes from the Debian package ``chromium`` (``.ci/run`` installs it). Without it
the test skips, unless ``O365COLLECTOR_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``): then it
fails, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import yaml
from harness import (
    SECRET,
    EmulatorProcess,
    collector_config,
    emulator_settings,
    free_port,
    start_collector,
)

from support.rws import RWS_PATH

pytestmark = pytest.mark.integration

OTHER_TENANT = "6a1b2c3d-0000-4000-8000-00000000b017"
OTHER_CLIENT = "6a1b2c3d-0000-4000-8000-00000000c017"
OTHER_SECRET = "Other~Status-Page-Secret.0123456789"
STREAMS = ["message_trace", "rws.MessageTrace"]
TENANTS = ["itest", "other"]


class _Rows(HTMLParser):
    """The page's stream rows: {"@tenant", "@stream", td class: (text, data-value)}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, tuple[str, str | None]]] = []
        self._cell: tuple[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "tr" and "stream" in classes:
            self.rows.append(
                {
                    "@tenant": (found.get("data-tenant") or "", None),
                    "@stream": (found.get("data-stream") or "", None),
                }
            )
        elif tag == "td" and self.rows and classes:
            self._cell, self._text = (classes[0], found.get("data-value")), []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][self._cell[0]] = ("".join(self._text).strip(), self._cell[1])
            self._cell = None


def _rows(page: str) -> dict[tuple[str, str], dict[str, tuple[str, str | None]]]:
    parser = _Rows()
    parser.feed(page)
    return {(r["@tenant"][0], r["@stream"][0]): r for r in parser.rows}


def _all_delivered(page: str) -> bool:
    rows = _rows(page)
    wanted = {(t, s) for t in TENANTS for s in STREAMS}
    return set(rows) == wanted and all(
        int(r["rows"][1] or 0) > 0 and r["lag"][1] is not None and r["rate"][1] is not None
        for r in rows.values()
    )


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium not installed: apt-get install chromium (Debian package)"
        if os.environ.get("O365COLLECTOR_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",  # its own profile: runs side by side
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config(workdir: Path, url: str, port: int) -> Path:
    config = collector_config(workdir, url, settle_delay_secs=2, poll_interval_secs=1)
    data = yaml.safe_load(config.read_text())
    first = data["tenants"][0]
    first["endpoints"]["reporting"] = url + RWS_PATH
    first["streams"] = list(STREAMS)
    other = dict(first)
    other.update(
        name="other",
        tenant_id=OTHER_TENANT,
        client_id=OTHER_CLIENT,
        client_secret=OTHER_SECRET,
    )
    data["tenants"].append(other)
    data["observability"] = {"listen": f"127.0.0.1:{port}"}
    config.write_text(yaml.safe_dump(data))
    return config


def test_the_status_page_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    settings = emulator_settings(
        1_500, live_rows_per_sec=5, live_secs=600, tenant={"quota_requests": 10_000}
    )
    settings["tenants"].append(
        {
            "tenant_id": OTHER_TENANT,
            "client_id": OTHER_CLIENT,
            "client_secret": OTHER_SECRET,
            "rows": 1_000,
            "quota_requests": 10_000,
        }
    )
    emulator = EmulatorProcess(tmp_path, settings).start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    try:
        proc = start_collector(_config(tmp_path, emulator.url, port))
        try:
            page = ""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not _all_delivered(page):
                assert proc.poll() is None, (tmp_path / "collector.log").read_text()[-4000:]
                time.sleep(1)
                try:
                    page = httpx.get(url, timeout=5).text
                except httpx.TransportError:
                    continue
            assert _all_delivered(page), page
            dumped = _browse(chromium, tmp_path / "profile", "--dump-dom", url)
            shot = tmp_path / "status.png"
            taken = _browse(
                chromium,
                tmp_path / "profile",
                f"--screenshot={shot}",
                "--window-size=1280,800",
                url,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
    finally:
        emulator.stop()

    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert "<title>o365collector status</title>" in dom
    assert '<meta http-equiv="refresh" content="10">' in dom
    rows = _rows(dom)
    assert set(rows) == {(t, s) for t in TENANTS for s in STREAMS}, sorted(rows)
    for (tenant, stream), row in rows.items():
        assert row["tenant"][0] == tenant and row["stream"][0] == stream
        assert re.fullmatch(r"\d+ (s|min)|\d+ h \d+ min", row["lag"][0]), row
        assert int(row["rows"][1] or 0) > 0, row
        assert "error" not in row, row  # a stream's error would be a line under its row
    assert 'id="readiness" class="ok"' in dom
    assert 'data-sink="file"' in dom
    for secret in (SECRET, OTHER_SECRET, OTHER_TENANT, emulator.url):
        assert secret not in dom

    assert taken.returncode == 0, taken.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 800)
    assert len(png) > 10_000  # a rendered table, not a blank page
