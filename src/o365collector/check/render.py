"""Show a check report: a table or plain blocks for people, JSON for programs."""

from __future__ import annotations

import sys
import textwrap
from typing import TextIO

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from o365collector.check.model import Report
from o365collector.observability.redact import redact

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}
_TABLE_CHROME = 16  # five columns: their borders and padding
_MIN_TEXT = 24  # the least width Detail and Fix get in the table


def render(report: Report, *, as_json: bool, stream: TextIO | None = None) -> None:
    """Print ``report`` to ``stream`` (stdout); every string is redacted once more.

    For a person: a table on a terminal wide enough for it, else (piped, or a narrow
    terminal) :func:`plain_lines`, which cut nothing and draw no boxes.
    """
    out = stream or sys.stdout
    if as_json:
        text = orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode()
        out.write(redact(text) + "\n")
        out.flush()
        return
    console = Console(file=out, highlight=False)
    if console.is_terminal and _table_fits(report, console.width):
        console.print(_table(report))
    elif console.is_terminal:
        for line in plain_lines(report, width=console.width):
            console.print(line, markup=False, soft_wrap=True)
    else:
        for line in plain_lines(report):
            console.out(line, highlight=False)
    counts = {s: sum(1 for f in report.findings if f.status == s) for s in _STYLE}
    verdict = "all checks passed" if report.ok else "some checks failed"
    console.out(
        f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
        highlight=False,
    )


def plain_lines(report: Report, *, width: int | None = None) -> list[str]:
    """Each finding as a block: ``STATUS target · probe [problem]``, then its detail and fix.

    ``width``: wrap the detail and fix to it (whole words, never cut); ``None``: one line each.
    """
    lines = []
    for f in report.findings:
        head = f"{f.status.upper():<4}  {f.target} · {f.probe}"
        lines.append(head + (f"  [{f.problem}]" if f.problem else ""))
        for label, text in (("detail", f.detail), ("fix", f.fix)):
            if text:
                lines.extend(_wrapped(f"{label}: {redact(text)}", width))
    return lines


def _wrapped(text: str, width: int | None) -> list[str]:
    indent = "      "
    if width is None:
        return [indent + text]
    return textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,  # a URL or a name stays whole; the terminal wraps it
        break_on_hyphens=False,
    )


def _table(report: Report) -> Table:
    table = Table(title="o365collector check", show_lines=True)
    for column in ("Target", "Probe", "Result"):
        table.add_column(column, no_wrap=True)
    for column in ("Detail", "Fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        result = f"[{_STYLE[f.status]}]{f.status.upper()}[/]"
        if f.problem:
            result += f"\n{escape(f.problem)}"
        table.add_row(
            escape(f.target),
            escape(f.probe),
            result,
            escape(redact(f.detail)),
            escape(redact(f.fix)),
        )
    return table


def _table_fits(report: Report, width: int) -> bool:
    """Whether the table fits ``width`` with every name whole and Detail and Fix readable."""
    names = [("Target", "Probe", "Result")] + [
        (f.target, f.probe, max(f.status.upper(), f.problem, key=len)) for f in report.findings
    ]
    fixed = sum(max(len(row[i]) for row in names) for i in range(3))
    detail = max([_MIN_TEXT, *(len(w) for f in report.findings for w in f.detail.split())])
    fix = max([_MIN_TEXT, *(len(w) for f in report.findings for w in f.fix.split())])
    return fixed + _TABLE_CHROME + detail + fix <= width
