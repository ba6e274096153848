"""Issue 19: start-up time of the console script (``--help``, ``validate``, an empty ``run``).

Each command runs N times (15; smoke: 3), each in a fresh process of the ``o365collector``
console script beside this interpreter, with ``PYTHONPATH`` pointing at ``--src`` when
given (as ``common.collector_env`` does); the wall time is from ``Popen`` to ``wait4``.

- ``--help``;
- ``validate --config`` of a native config: one tenant with a client secret, the default
  streams, a JSON-lines sink;
- ``validate --config`` of the seed's Devo ``config.yaml`` (seed 004, password credential,
  six services, a ``devo_platform`` output) in the seed's ``certs/config/state`` folders
  (the certificate files are placeholders: ``validate`` checks only that they exist);
- ``run --once`` (time to exit) against an emulator tenant without any row: the config of
  ``common.collector_config`` with the collection defaults, a fresh state folder each run.

The peak RSS of ``validate`` comes from GNU ``time`` (``%M``): ``wait4``'s ``ru_maxrss``
of a child started by this process would include this process's own size (see
``common.PeakRss``); without GNU ``time``, ``PeakRss`` samples ``VmHWM``. An untimed
``validate`` and ``run`` first write the bytecode cache, even under
``PYTHONDONTWRITEBYTECODE`` (an installed collector has one: without, every run compiles
the sources again), into the scratch folder (``PYTHONPYCACHEPREFIX``), never into the tree
under test; ``python -X importtime`` of the native ``validate`` gives the costliest
imports in the notes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.common import (
    CLIENT_ID,
    PYTHON,
    EmulatorProcess,
    PeakRss,
    ProcResult,
    collector_config,
    collector_env,
    quiet_history,
    reap,
    tenant_id,
    tenant_spec,
    writing_bytecode,
)
from bench.results import Context, Report, bench_command

NAME = "startup"
RUNS = 15
SMOKE_RUNS = 3
TARGET_SECS = 0.3
TOP_IMPORTS = 8
TIMEOUT_SECS = 120.0

# Seed 004's config.yaml ("Editing the config.yaml file"), placeholders filled.
DEVO_SEED_YAML = """\
globals:
  debug: true
  id: 123
  name: o365rep
  persistence:
    type: filesystem
    config:
      directory_name: state
  multiprocessing: false
outputs:
  devo_1:
    type: devo_platform
    config:
      address: collector-eu.devo.io
      port: 443
      type: SSL
      chain: chain.crt
      cert: contoso.crt
      key: contoso.key
inputs:
  office365_reporting_message:
    id: 45678
    enabled: true
    requests_per_second: 10
    credentials:
      username: reporter@contoso.onmicrosoft.com
      password: Pa55-Word~bench-only-42
  services:
"""
DEVO_SERVICES = (
    "MailTraffic",
    "DlpDetail",
    "SpoofMail",
    "AdvancedThreatProtectionTraffic",
    "MessageTrace",
    "Dlp",
)


@dataclass
class Timings:
    """Wall seconds of N fresh processes of one command, and their CPU (user + system).

    The CPU seconds are the steadier figure when other work shares the machine: waiting
    for a core lengthens the wall time only.
    """

    label: str
    secs: list[float]
    cpu_secs: list[float]

    @property
    def median(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.secs)

    def value(self) -> str:
        """``median … s, max … s (N runs)``."""
        return (
            f"median {self.median:.3f} s, max {max(self.secs):.3f} s ({len(self.secs)} runs; "
            f"CPU median {statistics.median(self.cpu_secs):.3f} s)"
        )


def console_script() -> list[str]:
    """The ``o365collector`` console script beside this interpreter, else ``python -m``."""
    script = Path(PYTHON).parent / "o365collector"
    return [str(script)] if script.is_file() else [PYTHON, "-m", "o365collector"]


def run_once(cmd: Sequence[str], env: dict[str, str], *, rss: bool = False) -> ProcResult:
    """Run ``cmd`` to its end: wall and CPU seconds, with ``rss`` its peak RSS (else NaN).

    Raises:
        RuntimeError: the command failed; its output's end is in the message.
    """
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
        peak = PeakRss(proc.pid) if rss else None
        result = reap(proc, started, peak)
        if result.returncode != 0:
            out.seek(0)
            tail = out.read().decode(errors="replace")[-1500:]
            raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {tail}")
    return result


def peak_rss_mib(cmd: Sequence[str], env: dict[str, str], workdir: Path) -> tuple[float, str]:
    """Peak RSS of one run of ``cmd``, and how it was measured.

    GNU ``time``'s ``%M`` is exact (its child starts from ``time``'s small memory map);
    without it, ``PeakRss`` samples ``VmHWM`` every 20 ms and may miss the last growth.
    """
    gnu_time = shutil.which("time")
    if gnu_time:
        report = workdir / "time.txt"
        done = subprocess.run(
            [gnu_time, "-f", "%M", "-o", str(report), *cmd],
            capture_output=True,
            env=env,
            timeout=TIMEOUT_SECS,
            check=False,
        )
        lines = report.read_text().split() if report.exists() else []
        if done.returncode == 0 and lines and lines[-1].isdigit():
            return int(lines[-1]) / 1024, "GNU time %M"
    return run_once(cmd, env, rss=True).max_rss_mib, "VmHWM sampled every 20 ms"


def timed(label: str, cmd: Sequence[str], env: dict[str, str], runs: int) -> Timings:
    """Wall times of ``runs`` fresh processes of ``cmd``."""
    results = [run_once(cmd, env) for _ in range(runs)]
    return Timings(label, [r.wall_secs for r in results], [r.cpu_secs for r in results])


def native_config(folder: Path) -> Path:
    """One tenant with a client secret (from the environment), default streams, JSON lines."""
    config = {
        "state_dir": str(folder / "state"),
        "tenants": [
            {
                "name": "contoso",
                "tenant_id": tenant_id(0),
                "client_id": CLIENT_ID,
                "client_secret": "${BENCH_SECRET}",
            }
        ],
        "sinks": [{"type": "jsonl", "name": "file", "path": str(folder / "out" / "e.jsonl")}],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def devo_config(root: Path) -> Path:
    """The seed's Devo layout: ``root/{certs,config,state}``, config in ``config/``."""
    for name in ("certs", "config", "state"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for name in ("chain.crt", "contoso.crt", "contoso.key"):
        (root / "certs" / name).write_text("placeholder: validate checks that it exists\n")
    services = "".join(
        f"    office365_reporting_{name}_service:\n"
        "      request_period_in_seconds: 60\n"
        "      reset_persistence_auth: 2024-05-01\n"
        "      override_time_delay_in_seconds: 60\n"
        for name in DEVO_SERVICES
    )
    path = root / "config" / "config.yaml"
    path.write_text(DEVO_SEED_YAML + services, encoding="utf-8")
    return path


def costliest_imports(script: list[str], config: Path, env: dict[str, str]) -> list[str]:
    """The ``TOP_IMPORTS`` modules of ``validate`` with the largest own import time."""
    target = script if len(script) == 1 else script[1:]  # the script, or ``-m o365collector``
    done = subprocess.run(
        [PYTHON, "-X", "importtime", *target, "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_SECS,
        check=False,
    )
    rows: list[tuple[int, int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(own), int(total), name.strip()))
    rows.sort(reverse=True)
    return [
        f"{name} {own / 1000:.1f} ms ({total / 1000:.1f} ms with its imports)"
        for own, total, name in rows[:TOP_IMPORTS]
    ]


def empty_runs(
    ctx: Context, script: list[str], env: dict[str, str], runs: int
) -> tuple[Timings, float]:
    """``run --once`` against an emulator tenant with no rows, a fresh state each run.

    One untimed run first (it may write the bytecode cache of the run's modules); returns
    the timed runs and the peak RSS (``VmHWM``, as the memory benchmark takes it) of one
    more, untimed, run.
    """
    settings = {**quiet_history(), "tenants": [tenant_spec(0, 0)]}
    emulator = EmulatorProcess(ctx.folder("emulator"), settings).start()
    try:
        results: list[ProcResult] = []
        peak = float("nan")
        for index in range(-1, runs + 1):  # -1: warm-up, runs: peak RSS
            folder = ctx.folder(f"run-{index}")
            config = collector_config(folder, emulator.url, collection={})
            cmd = [*script, "run", "--config", str(config), "--once", "--log-format", "json"]
            result = run_once(cmd, writing_bytecode(env) if index < 0 else env, rss=index == runs)
            if 0 <= index < runs:
                results.append(result)
            peak = result.max_rss_mib
            shutil.rmtree(folder, ignore_errors=True)
        walls = [r.wall_secs for r in results]
        return Timings("run --once, empty tenant", walls, [r.cpu_secs for r in results]), peak
    finally:
        emulator.stop()


def run(ctx: Context) -> Report:
    """Median and max wall time of each command, the peak RSS of ``validate``."""
    runs = SMOKE_RUNS if ctx.smoke else RUNS
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    script = console_script()
    # Bytecode goes to the scratch folder, not into the tree under test (PEP 3147 prefix).
    env = {**collector_env(ctx.src), "PYTHONPYCACHEPREFIX": str(ctx.folder("pycache"))}
    native = native_config(ctx.folder("native"))
    devo = devo_config(ctx.folder("devo") / "office365")
    run_once([*script, "validate", "--config", str(native)], writing_bytecode(env))  # untimed
    load = os.getloadavg()[0]
    commands = [
        ("--help", [*script, "--help"]),
        ("validate, native config", [*script, "validate", "--config", str(native)]),
        ("validate, Devo seed config.yaml", [*script, "validate", "--config", str(devo)]),
    ]
    for label, command in commands:
        result = timed(label, command, env, runs)
        ok = result.median <= TARGET_SECS
        report.add(label, result.value(), target=f"≤ {TARGET_SECS} s", ok=ok, command=cmd)
    empty, run_rss = empty_runs(ctx, script, env, runs)
    report.add(empty.label + " (time to exit)", empty.value(), command=cmd)
    rss, how = peak_rss_mib(commands[1][1], env, ctx.workdir)
    report.add("peak RSS of validate, native config", f"{rss:.1f} MiB ({how})", command=cmd)
    report.add("peak RSS of run --once, empty tenant", f"{run_rss:.1f} MiB (VmHWM)", command=cmd)
    report.notes.append(
        f"Console script {script[-1]}, tree {ctx.src or 'installed'}; "
        f"load average {load:.2f} before the timed runs; {sys.version.split()[0]}."
    )
    report.notes.append(
        "Costliest imports of validate (own time, python -X importtime, one run): "
        + "; ".join(costliest_imports(script, native, env))
        + "."
    )
    return report
