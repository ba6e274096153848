"""py-spy on the collector process: sample it, then fold the stacks into components.

``py-spy record --format raw`` writes one collapsed stack per line (``frame;frame;… count``).
Each sample is charged to the first component whose rule matches a frame, scanning from
the leaf up, so "time in SQLite" includes the C calls made from the state store.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# Leaves where a thread waits rather than runs; py-spy's idle filter misses these two.
_IDLE = re.compile(r"^(_worker \(.*concurrent/futures/thread\.py|EpollSelector\.select \()")

# (component, pattern on "function (file)"), first match from the leaf wins.
COMPONENTS: list[tuple[str, re.Pattern[str]]] = [
    ("start-up: imports and config", re.compile(r"_find_and_load|load_settings|<module>")),
    (
        "page commits: dedup facts + checkpoint (SQLite)",
        re.compile(r"SqliteStateStore\._?(remember|commit_page)"),
    ),
    ("dedup store lookups (SQLite seen_statuses)", re.compile(r"seen_statuses")),
    ("checkpoint writes (SQLite)", re.compile(r"SqliteStateStore\.")),
    ("JSON-lines write + fsync (thread)", re.compile(r"JsonlSink\._write|thread\.py")),
    ("encode events (orjson.dumps, envelope)", re.compile(r"sinks/encode\.py")),
    ("parse pages (orjson.loads)", re.compile(r"classify_graph")),
    ("hashing (event id, row key)", re.compile(r"pipeline/event\.py")),
    ("dedup split / track / settle", re.compile(r"pipeline/dedup\.py")),
    ("key_of", re.compile(r"key_of")),
    ("HTTP client (httpx, httpcore, h11)", re.compile(r"httpx/|httpcore/|h11/|anyio/")),
    ("sink runner / dispatcher", re.compile(r"pipeline/delivery\.py")),
    ("lane reader / committer", re.compile(r"pipeline/lane\.py|pipeline/stream\.py")),
    ("asyncio event loop", re.compile(r"asyncio/|selectors\.py")),
]


def pyspy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    import sys

    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def prefix(output: Path, rate: int = 250) -> list[str]:
    """The command prefix that runs the collector under py-spy."""
    import sys

    exe = pyspy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return [exe, "record", "-r", str(rate), "-f", "raw", "-o", str(output), "--", sys.executable]


@dataclass
class Profile:
    """Samples per component and per leaf function."""

    total: int = 0
    idle: int = 0
    components: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    def share(self, count: int) -> float:
        """Percent of all samples."""
        return 100.0 * count / max(1, self.total)


def _short(frame: str) -> str:
    """``func (path/to/o365collector/x.py:12)`` → ``func (o365collector/x.py)``."""
    frame = _LINE.sub(")", frame)
    return re.sub(r"\((?:.*/)?(site-packages/|lib/python3\.\d+/)?", "(", frame)


def fold(path: Path) -> Profile:
    """Read py-spy's raw output."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        if _IDLE.match(stack.rsplit(";", 1)[-1]):
            profile.idle += samples
            continue
        frames = [_short(f) for f in stack.split(";")]
        profile.total += samples
        profile.leaves[frames[-1]] += samples
        for frame in set(frames):
            profile.inclusive[frame] += samples
        raw = stack.split(";")
        profile.components[_component(raw)] += samples
    return profile


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in COMPONENTS:
            if pattern.search(frame):
                return name
    return "other"


def summary(profile: Profile, top: int = 8) -> list[str]:
    """Notes: components by share, then the hottest leaf functions."""
    parts = [
        f"{name} {profile.share(n):.0f} %" for name, n in profile.components.most_common() if n
    ]
    leaves = [
        f"`{name}` {profile.share(n):.1f} %" for name, n in profile.leaves.most_common(top) if n
    ]
    return [
        f"py-spy, {profile.total:,} busy samples ({profile.idle:,} idle ones left out: a "
        "thread waiting for work or the loop waiting on a socket); by component: "
        + "; ".join(parts)
        + ".",
        "Hottest functions (self time): " + "; ".join(leaves) + ".",
    ]
