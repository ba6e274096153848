"""Shared plumbing of the benchmarks: processes, configs, rusage, ground truth, output.

The emulator and the collector always run as separate processes (``o365collector emulator``
and ``o365collector run``), so the CPU and memory measured for the collector are its own:
its CPU is the user + system time of ``os.wait4``'s rusage (that process alone) and its
peak RSS the ``VmHWM`` of its own memory map (see ``PeakRss``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TENANT_PREFIX = "7d1b2c3e-0000-4000-8000-"
CLIENT_ID = "5f6a7b8c-0000-4000-8000-00000000c001"
SECRET = "Bench~Secret-Value.0123456789"
MIB = 1024 * 1024


def tenant_id(index: int) -> str:
    """The id of emulated tenant ``index``."""
    return f"{TENANT_PREFIX}{index:012d}"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- processes
@dataclass
class ProcResult:
    """How a reaped process ended and what it cost (its own rusage only)."""

    returncode: int
    wall_secs: float
    user_secs: float
    sys_secs: float
    max_rss_mib: float

    @property
    def cpu_secs(self) -> float:
        """User + system CPU seconds."""
        return self.user_secs + self.sys_secs


class PeakRss:
    """Follows ``VmHWM`` (the peak RSS of the process's own memory) until the process exits.

    ``ru_maxrss`` from ``wait4`` cannot be used: Linux carries the parent's peak into a
    child created by fork/vfork, so a collector started by a large benchmark process would
    "peak" at the benchmark's size. ``VmHWM`` belongs to the memory map that exec creates.
    Sampled every 20 ms; the peak of the last 20 ms before exit could be missed.
    """

    def __init__(self, pid: int) -> None:
        """Start sampling ``pid`` in a daemon thread."""
        self.pid = pid
        self.peak_mib = 0.0
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while True:
            try:
                value = proc_rss_mib(self.pid, "VmHWM")
            except OSError:
                return
            if value != value:  # NaN: a zombie has no memory any more
                return
            self.peak_mib = max(self.peak_mib, value)
            time.sleep(0.02)

    def stop(self) -> float:
        """Wait for the sampler (the process has exited) and return the peak in MiB."""
        self._thread.join(timeout=5)
        return self.peak_mib


def reap(proc: subprocess.Popen[bytes], started: float, peak: PeakRss | None = None) -> ProcResult:
    """Wait for ``proc`` with ``os.wait4``: its own CPU (rusage) and peak RSS (``PeakRss``)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcResult(
        returncode=proc.returncode,
        wall_secs=time.monotonic() - started,
        user_secs=usage.ru_utime,
        sys_secs=usage.ru_stime,
        max_rss_mib=peak.stop() if peak is not None else float("nan"),
    )


def proc_cpu_secs(pid: int) -> float:
    """User + system CPU seconds of a running process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mib(pid: int, key: str = "VmRSS") -> float:
    """``VmRSS`` (or ``VmHWM``, the peak) of a running process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def with_timeout(proc: subprocess.Popen[bytes], seconds: float) -> threading.Timer:
    """Kill ``proc`` if it still runs after ``seconds`` (a hung benchmark must not hang CI)."""

    def kill() -> None:
        if proc.poll() is None:
            proc.kill()

    timer = threading.Timer(seconds, kill)
    timer.daemon = True
    timer.start()
    return timer


# ---------------------------------------------------------------------------- emulator
def tenant_spec(index: int, rows: int, *, quota: int = 100_000, window: float = 300.0) -> dict:
    """One emulated tenant; the quota is raised unless the benchmark is about the quota."""
    return {
        "tenant_id": tenant_id(index),
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "rows": rows,
        "quota_requests": quota,
        "quota_window_secs": window,
    }


def iso(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def quiet_history(**overrides: Any) -> dict[str, Any]:
    """Emulator settings for a pure backlog: every row visible and final, nothing late.

    The history ends two minutes ago (the anchor), so every row is older than any settle
    delay the benchmarks use and a ``--once`` run reads all of it.
    """
    settings: dict[str, Any] = {
        "seed": 8,
        "anchor": iso(datetime.now(UTC) - timedelta(seconds=120)),
        "history_secs": 3 * 86400.0,
        "visible_delay_secs": [0.0, 0.0],
        "late_fraction": 0.0,
        "status_change_fraction": 0.0,
        "live_rows_per_sec": 0.0,
    }
    settings.update(overrides)
    return settings


@dataclass
class EmulatorProcess:
    """``o365collector emulator`` in a subprocess, with its stats and ground truth."""

    workdir: Path
    settings: dict[str, Any]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_secs: float = 0.0

    @property
    def url(self) -> str:
        """Base URL of the running emulator."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> EmulatorProcess:
        """Start it and wait until it answers (it generates every row first)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "emulator.yaml"
        path.write_text(yaml.safe_dump(self.settings), encoding="utf-8")
        log = (self.workdir / "emulator.log").open("wb")
        cmd = [PYTHON, "-m", "o365collector", "emulator", "--port", str(self.port)]
        self.proc = subprocess.Popen([*cmd, "--config", str(path)], stdout=log, stderr=log)
        log.close()
        begin = time.monotonic()
        while time.monotonic() - begin < timeout:
            if self.proc.poll() is not None:
                text = (self.workdir / "emulator.log").read_text()
                raise RuntimeError(f"emulator exited: {text[-2000:]}")
            try:
                if httpx.get(f"{self.url}/_emulator/health", timeout=1).status_code == 200:
                    self.ready_secs = time.monotonic() - begin
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("emulator did not become healthy")

    def rss_mib(self) -> float:
        """The emulator's current RSS."""
        assert self.proc is not None
        return proc_rss_mib(self.proc.pid)

    def cpu_secs(self) -> float:
        """The emulator's CPU so far."""
        assert self.proc is not None
        return proc_cpu_secs(self.proc.pid)

    def stop(self) -> None:
        """Terminate it (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)

    def __enter__(self) -> EmulatorProcess:
        """Start."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop."""
        self.stop()

    def stats(self, index: int = 0) -> dict[str, Any]:
        """``/_emulator/stats`` of tenant ``index``: accepted, accepted_times, rows_served…"""
        url = f"{self.url}/_emulator/stats"
        answer = httpx.get(url, params={"tenant": tenant_id(index)}, timeout=60)
        answer.raise_for_status()
        return dict(answer.json())

    def ground_truth(self, index: int = 0) -> Iterator[dict[str, Any]]:
        """Stream ``/_emulator/ground-truth`` of tenant ``index`` (one row with its history)."""
        url = f"{self.url}/_emulator/ground-truth"
        params = {"tenant": tenant_id(index)}
        with httpx.stream("GET", url, params=params, timeout=600) as answer:
            answer.raise_for_status()
            for line in answer.iter_lines():
                if line.strip():
                    yield orjson.loads(line)

    def token(self, index: int = 0) -> str:
        """A Graph access token for tenant ``index`` (client credentials)."""
        answer = httpx.post(
            f"{self.url}/{tenant_id(index)}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=30,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])


# --------------------------------------------------------------------------- collector
def collector_config(
    workdir: Path,
    emulator_url: str,
    *,
    tenants: int = 1,
    collection: dict[str, Any],
    budget: dict[str, Any] | None = None,
    sink: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write the collector's YAML (JSON-lines sink, no rotation) and return its path.

    ``sink``: extra keys of the JSON-lines sink (e.g. ``payload``); ``state``: the ``state:``
    section (e.g. the PostgreSQL backend), else the default SQLite in ``workdir/state``.
    """
    budget = budget or {"requests": 100_000, "window_secs": 300}
    config = {
        "state_dir": str(workdir / "state"),
        "tenants": [
            {
                "name": f"t{i:03d}",
                "tenant_id": tenant_id(i),
                "client_id": CLIENT_ID,
                "client_secret": "${BENCH_SECRET}",
                "endpoints": {"authority": emulator_url, "graph": emulator_url},
                "budget": budget,
            }
            for i in range(tenants)
        ],
        "collection": collection,
        "sinks": [
            {
                "type": "jsonl",
                "name": "file",
                "path": str(workdir / "out" / "events.jsonl"),
                "max_bytes": 64 * 1024 * MIB,  # no rotation: every line stays countable
                **(sink or {}),
            }
        ],
    }
    if state is not None:
        config["state"] = state
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def collector_command(config: Path, *args: str, prefix: list[str] | None = None) -> list[str]:
    """``python -m o365collector run --config … --log-format json …``."""
    run = ["-m", "o365collector", "run", "--config", str(config), "--log-format", "json"]
    return [*(prefix or [PYTHON]), *run, *args]


def collector_env(src: Path | None = None) -> dict[str, str]:
    """The environment with the tenant secret; ``src`` replaces the installed o365collector."""
    env = {**os.environ, "BENCH_SECRET": SECRET}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    return env


def writing_bytecode(env: dict[str, str]) -> dict[str, str]:
    """``env`` without ``PYTHONDONTWRITEBYTECODE``: the run may write the bytecode cache."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_collector(
    config: Path,
    *args: str,
    timeout: float = 1800.0,
    stop_after: float | None = None,
    prefix: list[str] | None = None,
    on_start: Callable[[int], None] | None = None,
    src: Path | None = None,
) -> ProcResult:
    """Run the collector to its end (or SIGTERM it after ``stop_after`` s); its own rusage."""
    if src is not None and not (src / "o365collector").is_dir():
        raise RuntimeError(f"{src} holds no o365collector package")
    log = (config.parent / "collector.log").open("ab")
    cmd = collector_command(config, *args, prefix=prefix)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=collector_env(src))
    log.close()
    peak = PeakRss(proc.pid)
    timer = with_timeout(proc, timeout)
    try:
        if on_start is not None:
            on_start(proc.pid)
        if stop_after is not None:
            deadline = started + stop_after
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        return reap(proc, started, peak)
    finally:
        timer.cancel()


def collector_log_tail(workdir: Path, lines: int = 15) -> str:
    """The end of the collector's log, for failure messages."""
    path = workdir / "collector.log"
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )


def output_files(workdir: Path) -> list[Path]:
    """The JSON-lines output files, oldest first."""
    return sorted((workdir / "out").glob("events.jsonl*"), reverse=True)


def count_lines(workdir: Path) -> int:
    """Lines written by the JSON-lines sink."""
    total = 0
    for path in output_files(workdir):
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                total += chunk.count(b"\n")
    return total


def output_events(workdir: Path) -> Iterator[dict[str, Any]]:
    """Every output line, decoded."""
    for path in output_files(workdir):
        with path.open("rb") as handle:
            for line in handle:
                yield orjson.loads(line)
