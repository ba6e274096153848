"""``o365collector state show``: the state's rows for a person (a table) or a program (JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from o365collector.config.effective import describe, stream_settings
from o365collector.config.model import Settings
from o365collector.state.backend import state_location, state_path
from o365collector.state.report import state_rows

_COLUMNS = {  # the row's key: the table's header
    "tenant": "tenant",
    "stream": "stream",
    "lane": "lane",
    "watermark": "watermark",
    "lag_secs": "lag s",
    "inflight_window": "in flight",
    "health": "health",
}


def show_state(settings: Settings, *, as_json: bool) -> None:
    """Print :func:`state_rows` for a person or a program (JSON).

    For a person: a table on a terminal wide enough for it, else (piped, or a narrow
    terminal) :func:`plain_lines`, which cut nothing and draw no boxes.
    """
    if settings.state.backend == "sqlite" and not state_path(settings).is_file():
        Console(stderr=True).print(
            f"o365collector: no state yet in {settings.state_dir} (no collector has run with "
            "this state_dir): every stream shows as never run.",
            highlight=False,
            soft_wrap=True,
        )
    rows = state_rows(settings)
    pace = {(r["tenant"], r["stream"]): r for r in stream_settings(settings)}
    console = Console()
    if as_json:
        for row in rows:  # each row also carries its stream's effective settings
            extra = pace.get((row["tenant"], row["stream"]), {})
            row.update({k: v for k, v in extra.items() if k not in row})
        console.out(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode(), highlight=False)
        return
    title = f"State in {state_location(settings)}"
    table = Table(title=title)
    for header in _COLUMNS.values():
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = [str(row[c]) if row[c] is not None else "—" for c in _COLUMNS]
        if row["health"] == "failed":
            cells[-1] = f"[red]failed[/]: {escape(row['error'])}"
        table.add_row(*cells)
    if console.is_terminal and _fits(console, table):
        console.print(table)
    else:  # piped, or a terminal too narrow for the table: lines, nothing cut
        console.out(title, highlight=False)
        for line in plain_lines(rows):
            console.out(line, highlight=False)
    console.print("\n".join(describe(settings)), highlight=False, soft_wrap=True, markup=False)


def plain_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Two lines (three when a window is in flight, four on failure) per state row::

    itest/message_trace  lane live  health ok
      watermark 2026-11-02T08:00:00+00:00  lag 61.3 s
      in flight 2026-11-02T08:00:00Z–2026-11-02T08:01:00Z (resumes mid-window)
      error: …
    """
    lines = []
    for row in rows:
        lines.append(f"{row['tenant']}/{row['stream']}  lane {row['lane']}  health {row['health']}")
        lag = "—" if row["lag_secs"] is None else f"{row['lag_secs']} s"
        lines.append(f"  watermark {row['watermark'] or '—'}  lag {lag}")
        if row["inflight_window"]:
            resumes = " (resumes mid-window)" if row.get("resumes_mid_window") else ""
            lines.append(f"  in flight {row['inflight_window']}{resumes}")
        if row["health"] == "failed" and row["error"]:
            lines.append(f"  error: {row['error']}")
    return lines


def _fits(console: Console, table: Table) -> bool:
    """Whether ``table`` fits the console's width without folding a cell."""
    unbounded = console.options.update_width(1_000_000)  # the table's natural width
    return Measurement.get(console, unbounded, table).maximum <= console.width
