"""``o365collector state show``: the state's rows for a person (a table) or a program (JSON)."""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from o365collector.config.effective import describe, stream_settings
from o365collector.config.model import Settings
from o365collector.state.backend import state_location, state_path
from o365collector.state.report import state_rows

_COLUMNS = ("tenant", "stream", "lane", "watermark", "lag_secs", "inflight_window", "health")


def show_state(settings: Settings, *, as_json: bool) -> None:
    """Print :func:`state_rows` for a person (table) or a program (JSON)."""
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
    table = Table(title=f"State in {state_location(settings)}")
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        cells = [str(row[c]) if row[c] is not None else "—" for c in _COLUMNS]
        if row["health"] == "failed":
            cells[-1] = f"[red]failed[/]: {row['error']}"
        table.add_row(*cells)
    console.print(table)
    console.print("\n".join(describe(settings)), highlight=False, soft_wrap=True, markup=False)
