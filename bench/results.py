"""What a benchmark returns (table rows and notes), its context, and the machine it ran on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO-8601 UTC timestamp (``Z``, up to 7 fractional digits)."""
    head, _, frac = text.rstrip("Zz").partition(".")
    whole = datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    return whole + (float(f"0.{frac}") if frac else 0.0)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (``share`` in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, Python and OS of this machine."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ram = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram = int(line.split()[1]) // 1024
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "ram": f"{ram / 1024:.1f} GiB",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


@dataclass
class Context:
    """What every benchmark gets: size switch, scratch folder, and the code under test."""

    smoke: bool
    workdir: Path
    src: Path | None = None  # another o365collector source tree (a prototype), or installed

    def folder(self, name: str) -> Path:
        """A fresh sub-folder of the scratch folder."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    metric: str
    value: str
    target: str = ""
    verdict: str = ""  # "met", "missed" or "" (no target)
    command: str = ""


@dataclass
class Report:
    """What a benchmark returns: table rows and free-text notes for the docs."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        metric: str,
        value: str,
        *,
        target: str = "",
        ok: bool | None = None,
        command: str = "",
    ) -> None:
        """Add a table row; ``ok`` decides the verdict when a target is given."""
        verdict = "" if ok is None else ("met" if ok else "missed")
        self.rows.append(Row(self.name, metric, value, target, verdict, command))


def bench_command(name: str, smoke: bool) -> str:
    """The command that reproduces one benchmark."""
    return f".venv/bin/python bench/run.py --only {name}" + (" --smoke" if smoke else "")
