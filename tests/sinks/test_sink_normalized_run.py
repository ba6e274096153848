"""``o365collector run`` hands each tenant's ``local_domains`` to the ECS and OCSF sinks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365emulator import Emulator, EmulatorSettings, TenantSpec

pytestmark = pytest.mark.integration

TENANT_ID = "5a6b7c8d-2222-4333-8444-55556666b0f2"
CLIENT_ID = "6b7c8d9e-2222-4333-8444-55556666d0f2"
SECRET = "Norm4lized~Secret-Value.0042"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_once_writes_ecs_and_ocsf_with_the_tenants_direction(tmp_path: Path) -> None:
    spec = TenantSpec(tenant_id=TENANT_ID, client_id=CLIENT_ID, client_secret=SECRET, rows=40)
    with Emulator(EmulatorSettings(seed=11, tenants=[spec], history_secs=3600)) as emulator:
        url = emulator.base_url
        config = {
            "state_dir": str(tmp_path / "state"),
            "tenants": [
                {
                    "name": "t0",
                    "tenant_id": TENANT_ID,
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                    "endpoints": {"authority": url, "graph": url},
                    "local_domains": ["Contoso.COM"],  # the emulator's accepted domain
                }
            ],
            "collection": {"initial_lookback_secs": 1800, "settle_delay_secs": 60},
            "sinks": [
                {"type": "jsonl", "name": "raw", "path": str(tmp_path / "raw.jsonl")},
                {
                    "type": "jsonl",
                    "name": "ecs",
                    "path": str(tmp_path / "ecs.jsonl"),
                    "payload": "ecs",
                    "include_original": True,
                },
                {
                    "type": "jsonl",
                    "name": "ocsf",
                    "path": str(tmp_path / "ocsf.jsonl"),
                    "payload": "ocsf",
                },
            ],
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "o365collector", "run", "--config", str(path), "--once",
             "--log-format", "json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    raw, ecs, ocsf = (_lines(tmp_path / f"{n}.jsonl") for n in ("raw", "ecs", "ocsf"))
    assert raw
    assert [d["event"]["id"] for d in ecs] == [e["event_id"] for e in raw]
    assert [d["metadata"]["uid"] for d in ocsf] == [e["event_id"] for e in raw]
    assert [json.loads(d["event"]["original"]) for d in ecs] == [e["record"] for e in raw]
    directions = {d["email"].get("direction") for d in ecs}
    assert directions <= {"inbound", "outbound", "internal", "external"}
    assert directions & {"inbound", "outbound", "internal"}  # contoso.com is local
    assert {d["direction_id"] for d in ocsf} - {0}  # known, not Unknown
    assert not (tmp_path / "state" / "dead-letter").exists() or not any(
        (tmp_path / "state" / "dead-letter").iterdir()
    )
