"""Issue 17 (1, 3) as an operator sees it: `validate` lists every problem; run names state_dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import (
    CLIENT_ID,
    SECRET,
    TENANT_ID,
    EmulatorProcess,
    collector_config,
    emulator_settings,
    run_collector,
)

pytestmark = pytest.mark.integration


def test_validate_exits_2_naming_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "tenants": [
                    {
                        "tenant_id": TENANT_ID,
                        "client_id": "my-app",
                        "client_secret": "${O365_T17_CONTOSO_CLIENT_SECRET}",
                        "ca_bundle": str(tmp_path / "missing-ca.pem"),
                    }
                ],
                "sinks": [
                    {
                        "type": "splunk_hec",
                        "url": "https://splunk.example:8088",
                        "token": "${O365_T17_E2E_TOKEN}",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"O365_T17_CONTOSO_CLIENT_SECRET", "O365_T17_E2E_TOKEN"}
    }
    done = subprocess.run(
        [sys.executable, "-m", "o365collector", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    err = done.stderr
    assert err.startswith(f"o365collector: error: {config}: invalid configuration (4 problem"), err
    lines = err.splitlines()[1:]
    assert sorted(line.split(": ", 1)[0] for line in lines) == [
        "  - sinks[0].token",
        "  - tenants[0].ca_bundle",
        "  - tenants[0].client_id",
        "  - tenants[0].client_secret",
    ], err
    assert (
        "O365_T17_CONTOSO_CLIENT_SECRET is not set; export O365_T17_CONTOSO_CLIENT_SECRET=" in err
    )
    assert "O365_T17_E2E_TOKEN is not set" in err
    assert "client_id: not a client ID; give the Application (client) ID" in err
    assert "ca_bundle: no such file; give the path of a PEM CA bundle (got '" in err
    assert "Value error" not in err
    assert "***" not in err


def test_validate_names_the_absolute_state_dir(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    tenant = {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET}
    config.write_text(
        yaml.safe_dump({"tenants": [tenant], "sinks": [{"type": "stdout"}]}), encoding="utf-8"
    )
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "o365collector", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = tmp_path / "xdg" / "o365collector"
    assert f"state_dir: {expected} (state.db, the lock file, dead letters)" in done.stdout
    assert not (tmp_path / "state").exists()  # not the working directory any more
    assert not expected.exists()  # validate writes nothing


def test_run_logs_the_absolute_default_state_dir(tmp_path: Path) -> None:
    emulator = EmulatorProcess(tmp_path, emulator_settings(20)).start()
    try:
        config = collector_config(tmp_path, emulator.url, settle_delay_secs=2)
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        del data["state_dir"]  # the default: $XDG_STATE_HOME/o365collector (see conftest)
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        done = run_collector(config, "--once", timeout=300)
    finally:
        emulator.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    expected = Path(os.environ["XDG_STATE_HOME"]) / "o365collector"
    started = [
        json.loads(line)
        for line in (done.stdout + done.stderr).splitlines()
        if line.startswith("{") and "Collector started." in line
    ]
    assert len(started) == 1, done.stderr[-3000:]
    assert started[0]["state_dir"] == str(expected)
    assert Path(started[0]["state_dir"]).is_absolute()
    assert (expected / "state.db").is_file()
