"""Show a check report: a table for people (rich), JSON for programs."""

from __future__ import annotations

import sys
from typing import TextIO

import orjson
from rich.console import Console
from rich.table import Table

from o365collector.check.model import Report
from o365collector.observability.redact import redact

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def render(report: Report, *, as_json: bool, stream: TextIO | None = None) -> None:
    """Print ``report`` to ``stream`` (stdout); every string is redacted once more."""
    out = stream or sys.stdout
    if as_json:
        text = orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode()
        out.write(redact(text) + "\n")
        out.flush()
        return
    console = Console(file=out, width=None if out.isatty() else 160, highlight=False)
    table = Table(title="o365collector check", show_lines=True)
    for column in ("Target", "Probe", "Result", "Detail", "Fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        result = f"[{_STYLE[f.status]}]{f.status.upper()}[/]"
        if f.problem:
            result += f"\n{f.problem}"
        table.add_row(f.target, f.probe, result, redact(f.detail), redact(f.fix))
    console.print(table)
    counts = {s: sum(1 for f in report.findings if f.status == s) for s in _STYLE}
    verdict = "all checks passed" if report.ok else "some checks failed"
    console.print(
        f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    )
