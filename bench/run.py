"""Run the benchmarks and rewrite the results in docs/benchmarks.md.

    .venv/bin/python bench/run.py                 # every benchmark, rewrite the docs
    .venv/bin/python bench/run.py --only memory   # one benchmark, rewrite its part
    .venv/bin/python bench/run.py --smoke         # tiny sizes, print only, exit 1 on failure
    .venv/bin/python bench/run.py --only throughput --src /tmp/proto/src   # a prototype

Results are kept in ``bench/results.json`` (one entry per benchmark, with the machine,
date and command of its run), from which the generated part of docs/benchmarks.md is
rendered, so ``--only`` refreshes one benchmark and keeps the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.render import render_into  # noqa: E402
from bench.results import Context, Report, Row, machine  # noqa: E402

BENCHMARKS = [
    "throughput",
    "memory",
    "tenants",
    "economy",
    "hotpath",
    "steady",
    "backfill",
    "replicas",
    "normalize",
    "faults",
    "outage",
    "startup",
    "cost",
]
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "benchmarks.md"


def _run_one(name: str, ctx: Context) -> tuple[Report | None, float, str]:
    module = importlib.import_module(f"bench.{name}")
    begin = time.monotonic()
    try:
        report = module.run(ctx)
    except Exception:
        return None, time.monotonic() - begin, traceback.format_exc()
    return report, time.monotonic() - begin, ""


def _print(report: Report, seconds: float) -> None:
    print(f"\n== {report.name} ({seconds:.0f} s)")
    for row in report.rows:
        mark = {"met": "  [met]", "missed": "  [MISSED]"}.get(row.verdict, "")
        target = f"  (target {row.target})" if row.target else ""
        print(f"  {row.metric}: {row.value}{target}{mark}")
    for note in report.notes:
        print(f"  - {note}")


# Targets about data, not speed: a miss fails the run (and CI's smoke run) whatever the size.
CORRECTNESS_TARGETS = ("all, none twice", "0 / 0 / 0")


def _correctness(row: Row) -> bool:
    return row.target in CORRECTNESS_TARGETS


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; 0 when every one finished and lost or repeated nothing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; print, keep docs")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only NAME")
    parser.add_argument("--src", type=Path, help="o365collector source tree to measure instead")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = args.only or BENCHMARKS
    workdir = Path(tempfile.mkdtemp(prefix="o365bench-"))
    src = args.src.resolve() if args.src else None
    write_docs = not (args.smoke or args.no_docs or src is not None)
    host = machine()
    print(f"machine: {host}; load average {os.getloadavg()[0]:.2f}; scratch {workdir}")
    failures: list[str] = []
    results = orjson.loads(RESULTS.read_bytes()) if RESULTS.exists() else {}
    try:
        for name in names:
            ctx = Context(smoke=args.smoke, workdir=workdir / name, src=src)
            ctx.workdir.mkdir(parents=True)
            load = os.getloadavg()[0]
            report, seconds, error = _run_one(name, ctx)
            if report is None:
                failures.append(name)
                print(f"\n== {name}: FAILED after {seconds:.0f} s\n{error}", file=sys.stderr)
                continue
            _print(report, seconds)
            wrong = [r.metric for r in report.rows if r.verdict == "missed" and _correctness(r)]
            if wrong:
                failures.append(f"{name} (lost or repeated data: {'; '.join(wrong)})")
            if not args.keep:
                shutil.rmtree(ctx.workdir, ignore_errors=True)
            results[name] = {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "seconds": round(seconds),
                "load_before": round(load, 2),
                "machine": host,
                "rows": [asdict(row) for row in report.rows],
                "notes": report.notes,
            }
            if write_docs:
                RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
                render_into(DOCS, results, BENCHMARKS)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if write_docs:
        print(f"\nrewrote {DOCS.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    if failures:
        print(f"\nfailed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
