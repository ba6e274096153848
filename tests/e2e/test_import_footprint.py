"""What ``o365collector run`` imports: heavy packages stay out of paths that do not use them.

Every module imported is resident for the life of the process, and the collector's peak
RSS has a budget. ``cryptography`` is only needed to load a certificate credential (and a
PKCS#12 client certificate for a sink); the ``rich`` tables of ``check``, ``state show``,
``backfill`` and ``demo`` and the emulator are not part of ``run`` at all. Each probe runs
in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from o365collector.cli import GC_YOUNG_THRESHOLD
from o365emulator import Emulator, EmulatorSettings, TenantSpec
from support.auth import make_cert_files

TENANT_ID = "5a6b7c8d-2222-4333-8444-55556666a0f1"
CLIENT_ID = "6b7c8d9e-2222-4333-8444-55556666c0f1"
SECRET = "Footpr1nt~Secret-Value.0077"

# Loaded only by commands other than `run`, or only for a certificate credential.
CLI_ONLY = (
    "o365collector.backfill",
    "o365collector.check",
    "o365collector.demo",
    "o365emulator",
    "o365collector.show_state",
    "o365collector.state.report",
)

# Writes the watched modules that are loaded when the interpreter exits (after `run`'s
# sys.exit) to argv[1], then runs the console script's `main` with the rest of argv.
_RUN = """
import atexit, gc, json, sys
out = sys.argv[1]
def dump():
    watched = {"cryptography", "o365collector", "o365emulator", "rich", "pygments"}
    names = sorted(m for m in sys.modules if m.split(".")[0] in watched)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(names, f)
    with open(out + ".gc", "w", encoding="utf-8") as f:
        json.dump({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}, f)
atexit.register(dump)
from o365collector.cli import main
sys.argv = ["o365collector", *sys.argv[2:]]
main()
"""


def _loaded_after_import(module: str) -> list[str]:
    code = (
        f"import sys, json, {module}; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'cryptography', 'o365collector', 'o365emulator'})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    names: list[str] = orjson.loads(done.stdout)
    return names


def _run_once(tmp_path: Path, credential: dict[str, Any], cert_pem: str) -> list[str]:
    """Run ``o365collector run --once`` in a fresh interpreter; the watched modules it loaded."""
    spec = TenantSpec(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        rows=5,
        certificate=cert_pem,
    )
    with Emulator(EmulatorSettings(seed=7, tenants=[spec], history_secs=3600)) as emulator:
        url = emulator.base_url
        config = {
            "state_dir": str(tmp_path / "state"),
            "tenants": [
                {
                    "name": "t0",
                    "tenant_id": TENANT_ID,
                    "client_id": CLIENT_ID,
                    "credential": credential,
                    "endpoints": {"authority": url, "graph": url},
                }
            ],
            "collection": {"initial_lookback_secs": 1800, "settle_delay_secs": 60},
            "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "e.jsonl")}],
        }
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        modules = tmp_path / "modules.json"
        args = ["run", "--config", str(config_path), "--once", "--log-format", "json"]
        done = subprocess.run(
            [sys.executable, "-c", _RUN, str(modules), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    names: list[str] = orjson.loads(modules.read_bytes())
    assert "o365collector.app" in names  # the probe saw the run path
    return names


@pytest.mark.parametrize(
    "module",
    ["o365collector.cli", "o365collector.app", "o365collector.http.auth", "o365collector.config"],
)
def test_run_modules_import_neither_cryptography_nor_cli_only_code(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert module in loaded
    assert [m for m in loaded if m.split(".")[0] == "cryptography"] == []
    assert [m for m in loaded if m.startswith(CLI_ONLY)] == []


def test_client_secret_run_never_imports_cryptography(tmp_path: Path) -> None:
    cert = make_cert_files(tmp_path)
    loaded = _run_once(tmp_path, {"type": "client_secret", "client_secret": SECRET}, cert.cert_text)
    assert [m for m in loaded if m.split(".")[0] == "cryptography"] == []
    assert [m for m in loaded if m.startswith(CLI_ONLY)] == []


def test_piped_run_imports_no_display_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped, ``run --once`` prints plain lines: rich and Pygments (~3 MiB) stay out.

    httpx (its command line) and structlog (its tracebacks) import them when installed;
    ``run`` hides them while importing those two.
    """
    monkeypatch.delenv("FORCE_COLOR", raising=False)  # rich would draw: it would be needed
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    cert = make_cert_files(tmp_path)
    loaded = _run_once(tmp_path, {"type": "client_secret", "client_secret": SECRET}, cert.cert_text)
    assert [m for m in loaded if m.split(".")[0] in {"rich", "pygments"}] == []


def test_run_collects_cycles_less_often_and_never_walks_its_start_up(tmp_path: Path) -> None:
    """Issue 19: the cyclic collector's passes cost ~1 us per event at CPython's defaults."""
    cert = make_cert_files(tmp_path)
    _run_once(tmp_path, {"type": "client_secret", "client_secret": SECRET}, cert.cert_text)
    probe = orjson.loads((tmp_path / "modules.json.gc").read_bytes())
    assert probe["threshold"][0] == GC_YOUNG_THRESHOLD > 700  # CPython's default: 700
    assert probe["frozen"] > 10_000  # modules and configuration, out of every pass


def test_certificate_run_imports_cryptography(tmp_path: Path) -> None:
    """The control: the probe does see ``cryptography`` when a certificate signs in."""
    cert = make_cert_files(tmp_path)
    credential = {"type": "certificate", "certificate_file": str(cert.combined_pem)}
    loaded = _run_once(tmp_path, credential, cert.cert_text)
    assert "cryptography.hazmat.primitives.serialization" in loaded
    assert [m for m in loaded if m.startswith(CLI_ONLY)] == []


def test_help_loads_no_command_code(tmp_path: Path) -> None:
    """``--help`` (and click's parsing of any command) loads only the command line itself."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(out), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(orjson.loads(out.read_bytes()))
    heavy = {"o365collector.app", "o365collector.config.model", "o365collector.config.loader"}
    assert not loaded & heavy, sorted(loaded & heavy)
    assert not {m for m in loaded if m.startswith("o365collector.observability.logging")}


# Writes every module loaded when the interpreter exits to argv[1], then runs the console
# script's `main` with the rest of argv.
_LOADED = """
import atexit, json, sys
out = sys.argv[1]
def dump():
    with open(out, "w", encoding="utf-8") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
from o365collector.cli import main
sys.argv = ["o365collector", *sys.argv[2:]]
main()
"""


def test_validate_loads_no_event_loop_log_renderer_or_http(tmp_path: Path) -> None:
    """``validate`` of a native file checks the config only: start-up time (issue 19).

    asyncio, structlog (with rich behind its console renderer) and httpx are for the
    commands that collect; ``validate`` has no use for them.
    """
    config = {
        "state_dir": str(tmp_path / "state"),
        "tenants": [
            {"name": "t0", "tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET}
        ],
        "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "e.jsonl")}],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, str(out), "validate", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "valid (1 tenant(s)" in done.stdout
    loaded: list[str] = orjson.loads(out.read_bytes())
    assert "o365collector.config.model" in loaded  # the probe saw validate's path
    tops = {m.split(".")[0] for m in loaded}
    assert not tops & {"asyncio", "structlog", "rich", "httpx"}, sorted(tops)
    heavy = {"o365collector.app", "o365collector.observability.logging", "o365collector.sinks"}
    assert not {m for m in loaded if m.startswith(tuple(heavy))}
