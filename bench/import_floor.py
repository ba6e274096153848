"""Issue 19: what the collector's imports cost in RSS, layer by layer.

An empty ``run --once`` (a tenant without rows) peaks at ~52 MiB; this shows how much of
that is imports alone, and how much of it the settings layer (pydantic) costs. A first
interpreter imports what a JSON-lines run with the SQLite state imports (the CLI, the app,
the Graph message trace source, the SQLite store, the JSON-lines sink) and lists the
modules that loaded, writing their bytecode cache into a scratch folder
(``PYTHONPYCACHEPREFIX``, as ``startup`` does: an installed collector has one, and compiling
the sources would charge the compiler's memory to the collector's layers). A fresh one (the
collector's, with ``common.collector_env``) then imports them layer by layer and reads its
``VmRSS`` after each:

1. the interpreter as started;
2. every module of that list but pydantic's own (pydantic, pydantic_core, annotated_types,
   typing_inspection) and the collector's: the standard library and the other libraries,
   including what pydantic shares with them;
3. pydantic, with one model built (its schema machinery loads on the first model);
4. the collector's settings models (``o365collector.config``);
5. the rest of the collector.

Each layer's cost is its growth over the one before; ``REPEATS`` processes, medians.
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

import orjson

from bench.common import PYTHON, collector_env, writing_bytecode

REPEATS = 3
RUN_IMPORTS = (
    "import o365collector.cli, o365collector.app, o365collector.sinks.jsonl.sink, "
    "o365collector.sources.graph.message_trace, o365collector.state.sqlite"
)
PYDANTIC_OWN = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection")
LAYERS: tuple[tuple[str, str], ...] = (
    ("interpreter", ""),
    (
        "standard library and other libraries",
        "import importlib\n"
        "for _name in _others:\n"
        "    try:\n"
        "        importlib.import_module(_name)\n"
        "    except ImportError:\n"
        "        pass",
    ),
    (
        "pydantic (one model built)",
        "import pydantic\nclass _M(pydantic.BaseModel):\n    a: int = 1\n_M(a=2)",
    ),
    ("the collector's settings models", "import o365collector.config"),
    ("the rest of the collector", RUN_IMPORTS),
)
_PROBE = """
import json
def _rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
_out = []
"""


def _script(others: list[str]) -> str:
    steps = [_PROBE, f"_others = {others!r}"]
    for _, code in LAYERS:
        steps += [code, "_out.append(_rss())"]
    steps.append("print(json.dumps(_out))")
    return "\n".join(steps)


def _python(script: str, src: Path | None, pycache: Path) -> bytes:
    env = {**writing_bytecode(collector_env(src)), "PYTHONPYCACHEPREFIX": str(pycache)}
    done = subprocess.run(
        [PYTHON, "-c", script],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import probe failed: {done.stderr.decode()[-800:]}")
    return done.stdout


def run_modules(src: Path | None, pycache: Path) -> list[str]:
    """The modules a run loads, in load order, but pydantic's own and the collector's
    (their bytecode cache written into ``pycache``)."""
    listing = f"import json, sys\n{RUN_IMPORTS}\nprint(json.dumps(list(sys.modules)))"
    loaded = orjson.loads(_python(listing, src, pycache))
    own = (*PYDANTIC_OWN, "o365collector")
    return [m for m in loaded if m.split(".")[0] not in own and m != "__main__"]


def measure(src: Path | None, pycache: Path) -> list[tuple[str, float, float]]:
    """Each layer: its name, its growth in MiB, and the RSS after it (medians); the bytecode
    cache is kept in ``pycache``.

    Raises:
        RuntimeError: the probe failed (an import error, say).
    """
    script = _script(run_modules(src, pycache))
    runs = [[float(v) for v in orjson.loads(_python(script, src, pycache))] for _ in range(REPEATS)]
    after = [statistics.median(run[i] for run in runs) for i in range(len(LAYERS))]
    growth = [after[0]] + [after[i] - after[i - 1] for i in range(1, len(after))]
    names = [name for name, _ in LAYERS]
    return list(zip(names, growth, after, strict=True))


def describe(layers: list[tuple[str, float, float]]) -> str:
    """``interpreter 8.6 MiB; + … 31.2; … = 51.0 MiB`` for the results table."""
    head, *rest = layers
    parts = [f"{head[0]} {head[1]:.1f} MiB"] + [f"+ {name} {grew:.1f}" for name, grew, _ in rest]
    return f"{'; '.join(parts)} = {layers[-1][2]:.1f} MiB"
