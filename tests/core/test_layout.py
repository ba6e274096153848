"""The package layout is the data flow: every import points down these layers, none up.

    entry      cli (dispatches to the commands), under __main__
    commands   check, demo, backfill, show_state
    app        app (wires a run), selection (what a command's options pick),
               run_summary (progress and the summary of run --once and backfill)
    pipeline   pipeline (lanes, dedup, delivery) · scaleout (tenant leases among replicas)
    ends       sources (Microsoft) · sinks (SIEMs) · state (beside the pipeline)
    services   http (requests, sign-in, budget) · planning (windows, lanes, plans) ·
               normalize (ECS/OCSF documents for the sinks)
    config     config (validated settings)
    core       errors, clock, windows, event, dates, clouds, streams (the catalog),
               certificates, page_gate, observability

Packages of one layer do not import each other either (sources do not read sinks), except
inside ``core``, whose modules are leaves or lean on ``errors``, ``clock``, ``windows``
and ``observability``. ``docs/architecture.md`` draws the same picture. The Microsoft emulator
(``o365emulator``, ``emulator/src/``) is not the product: a distribution of its own that the
collector's wheel leaves out, loaded only by ``cli`` and ``demo``, importing nothing of
``o365collector``.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SOURCES = {"o365collector": SRC, "o365emulator": ROOT / "emulator" / "src"}
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "errors", "clock", "windows", "event", "dates", "clouds", "streams", "certificates",
        "page_gate", "observability", "__init__",
    ),
    "config": ("config",),
    "services": ("http", "planning", "normalize"),
    "ends": ("sources", "sinks", "state"),
    "pipeline": ("pipeline", "scaleout"),
    "app": ("app", "selection", "run_summary"),
    "commands": ("check", "demo", "backfill", "show_state"),
    "entry": ("cli",),
    "main": ("__main__",),
}  # fmt: skip
RANK = {pkg: rank for rank, pkgs in enumerate(LAYERS.values()) for pkg in pkgs}
EMULATOR_USERS = {"cli", "demo"}


def _imports(package: str) -> Iterator[tuple[str, str, int]]:
    """(file, imported module, line) for every absolute import in ``package``'s sources."""
    src = SOURCES[package]
    for path in sorted((src / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield str(path.relative_to(src)), node.module, node.lineno
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(path.relative_to(src)), alias.name, node.lineno


def _unit(file: str) -> str:
    """The top-level unit of ``o365collector/<unit>[/…]`` (a package or a module)."""
    return Path(file).parts[1].removesuffix(".py")


def test_every_unit_has_a_layer() -> None:
    units = {p.name.removesuffix(".py") for p in (SRC / "o365collector").iterdir()}
    units -= {"py.typed", "__pycache__"}
    assert units - RANK.keys() == set(), "new top-level unit: give it a layer in LAYERS"


def test_no_import_runs_against_the_flow() -> None:
    against = []
    for file, module, line in _imports("o365collector"):
        parts = module.split(".")
        if parts[0] != "o365collector" or len(parts) < 2:
            continue
        source, target = _unit(file), parts[1]
        if source == target or _layer(source) == _layer(target) == "core":
            continue  # within a unit; core has its own rule below
        if RANK[target] >= RANK[source]:  # upwards, or sideways within a layer
            against.append(f"{file}:{line} {source} ({_layer(source)}) -> {module}")
    assert against == [], "imports against the data flow:\n" + "\n".join(against)


def test_core_leans_only_on_errors_clock_windows_and_observability() -> None:
    leaned = {"errors", "clock", "windows", "observability"}
    against = []
    for file, module, line in _imports("o365collector"):
        parts = module.split(".")
        if parts[0] == "o365collector" and len(parts) > 1 and _layer(_unit(file)) == "core":
            source, target = _unit(file), parts[1]
            if target != source and target not in leaned:
                against.append(f"{file}:{line} -> {module}")
    assert against == []


@pytest.mark.parametrize("package", ["o365collector", "o365emulator"])
def test_the_emulator_stays_apart(package: str) -> None:
    if package == "o365emulator":
        product = [f"{f}:{n} {m}" for f, m, n in _imports(package) if m.startswith("o365collector")]
        assert product == [], "the emulator imports the product"
    else:
        users = {_unit(f) for f, m, _ in _imports(package) if m.startswith("o365emulator")}
        assert users <= EMULATOR_USERS, f"only {EMULATOR_USERS} may load the emulator"


def test_the_collector_wheel_leaves_the_emulator_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "src/o365collector"
    ]
    assert "o365emulator" not in str(project["project"]["scripts"])
    emulator = tomllib.loads((ROOT / "emulator" / "pyproject.toml").read_text(encoding="utf-8"))
    assert emulator["project"]["name"] == "o365emulator"
    assert emulator["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "src/o365emulator"
    ]


def _layer(unit: str) -> str:
    return next(name for name, units in LAYERS.items() if unit in units)
