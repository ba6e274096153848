"""Real processes over loopback: the emulator and the collector, each in its own process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

TENANT_ID = "7d1b2c3e-0000-4000-8000-00000000a001"
CLIENT_ID = "5f6a7b8c-0000-4000-8000-00000000c001"
SECRET = "S3cr3t~Integration-Value.0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_time(text: str) -> datetime:
    from o365collector.windows import parse_iso

    return parse_iso(text)


@dataclass
class EmulatorProcess:
    """``o365collector emulator`` in a subprocess."""

    workdir: Path
    settings: dict[str, Any]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorProcess:
        path = self.workdir / "emulator.yaml"
        path.write_text(yaml.safe_dump(self.settings), encoding="utf-8")
        self.log = (self.workdir / "emulator.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "o365collector",
                "emulator",
                "--port",
                str(self.port),
                "--config",
                str(path),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"emulator exited: {(self.workdir / 'emulator.log').read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/_emulator/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("emulator did not become healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def ground_truth(self, tenant: str = TENANT_ID) -> list[dict[str, Any]]:
        body = httpx.get(
            f"{self.url}/_emulator/ground-truth", params={"tenant": tenant}, timeout=120
        )
        body.raise_for_status()
        return [orjson.loads(line) for line in body.content.splitlines() if line.strip()]

    def stats(self, tenant: str = TENANT_ID) -> dict[str, Any]:
        body = httpx.get(f"{self.url}/_emulator/stats", params={"tenant": tenant}, timeout=30)
        body.raise_for_status()
        return dict(body.json())


def emulator_settings(rows: int, **overrides: Any) -> dict[str, Any]:
    tenant = {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "rows": rows,
    }
    tenant.update(overrides.pop("tenant", {}))
    settings: dict[str, Any] = {"seed": 7, "tenants": [tenant], "history_secs": 3 * 86400}
    settings.update(overrides)
    return settings


def collector_config(
    workdir: Path, emulator_url: str, *, secret: str = SECRET, **collection: Any
) -> Path:
    extra_sinks = collection.pop("extra_sinks", [])
    config = {
        "state_dir": str(workdir / "state"),
        "tenants": [
            {
                "name": "itest",
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "client_secret": "${ITEST_SECRET}",
                "endpoints": {"authority": emulator_url, "graph": emulator_url},
                # The emulator's quota is what these tests exercise, not the default budget.
                "budget": {"requests": 5000, "window_secs": 300},
                **collection.pop("tenant", {}),
            }
        ],
        "collection": {
            "initial_lookback_secs": 4 * 86400,
            "settle_delay_secs": 60,
            "poll_interval_secs": 1,
            "max_window_secs": 86400,
            **collection,
        },
        "sinks": [
            {"type": "jsonl", "name": "file", "path": str(workdir / "out" / "events.jsonl")},
            *extra_sinks,
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    (workdir / "secret.env").write_text(secret, encoding="utf-8")
    return path


def collector_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ITEST_SECRET"] = (workdir / "secret.env").read_text(encoding="utf-8")
    return env


def cli(
    config: Path, *args: str, input_text: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``o365collector ARGS --config CONFIG`` with the test secret in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "o365collector", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        input=input_text,
        env=collector_env(config.parent),
        timeout=timeout,
        check=False,
    )


def run_collector(
    config: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "o365collector",
            "run",
            "--config",
            str(config),
            "--log-format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=collector_env(config.parent),
        check=False,
    )


def start_collector(config: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (config.parent / "collector.log").open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "o365collector",
            "run",
            "--config",
            str(config),
            "--log-format",
            "json",
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=collector_env(config.parent),
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def output_lines(workdir: Path) -> Iterator[dict[str, Any]]:
    folder = workdir / "out"
    for path in sorted(folder.glob("events.jsonl*"), reverse=True):
        with path.open("rb") as handle:
            for line in handle:
                yield orjson.loads(line)


def count_output_lines(workdir: Path) -> int:
    folder = workdir / "out"
    total = 0
    for path in folder.glob("events.jsonl*"):
        with path.open("rb") as handle:
            total += sum(1 for _ in handle)
    return total


def watermark(config: Path) -> datetime:
    result = subprocess.run(
        [sys.executable, "-m", "o365collector", "state", "show", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        env=collector_env(config.parent),
        check=True,
    )
    rows = orjson.loads(result.stdout)
    marks = [parse_time(r["watermark"]) for r in rows if r["lane"] == "live" and r["watermark"]]
    assert marks, f"no live lane in {rows}"
    return marks[0]


def key(record: dict[str, Any]) -> tuple[str, str]:
    return (record["id"], record["recipientAddress"].lower())


def visible_by(row: dict[str, Any], moment: datetime) -> bool:
    return parse_time(row["history"][0]["visible_at"]) <= moment


def statuses_visible_between(row: dict[str, Any], start: datetime, end: datetime) -> set[str]:
    """Statuses a read between ``start`` and ``end`` could have returned."""
    out = set()
    history = row["history"]
    for i, step in enumerate(history):
        begins = parse_time(step["visible_at"])
        ends = parse_time(history[i + 1]["visible_at"]) if i + 1 < len(history) else None
        if begins <= end and (ends is None or ends > start):
            out.add(step["status"].lower())
    return out


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Whole-second UTC ISO with Z, as Microsoft and the ground truth write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
