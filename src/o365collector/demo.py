"""``o365collector demo``: the emulator, a generated config and a live progress display."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from o365collector.app import Collector, RunOptions
from o365collector.config.loader import load_settings
from o365collector.observability.logging import configure_logging
from o365collector.observability.progress import Progress
from o365collector.state.lock import LOCK_FILE, state_lock

ANCHOR_FILE = "emulator.json"
"""In the demo's state folder: the emulator's seed and anchor, so a restart serves the same data."""
_MIN_LIVE_LEFT = timedelta(hours=1)  # less left of the emulator's live rows: start afresh


def demo_config(base_url: str, workdir: Path, tenant: dict[str, str]) -> dict[str, object]:
    """The collector configuration the demo writes: one tenant on the emulator, three files.

    The same events go to ``output/events.jsonl`` (the raw record in an envelope),
    ``output/events.ecs.jsonl`` (ECS documents) and ``output/events.ocsf.jsonl`` (OCSF
    events), so the normalized forms can be compared with what Microsoft sent.
    """
    output = workdir / "output"
    return {
        "state_dir": str(workdir / "state"),
        "tenants": [
            {
                "name": "demo",
                "tenant_id": tenant["tenant_id"],
                "client_id": tenant["client_id"],
                "client_secret": tenant["client_secret"],
                "endpoints": {"authority": base_url, "graph": base_url},
                "local_domains": [tenant["domain"]],
            }
        ],
        "collection": {
            "initial_lookback_secs": 3 * 86400,
            "settle_delay_secs": 10,
            "poll_interval_secs": 5,
        },
        "sinks": [
            {"type": "jsonl", "name": "file", "path": str(output / "events.jsonl")},
            {
                "type": "jsonl",
                "name": "ecs",
                "path": str(output / "events.ecs.jsonl"),
                "payload": "ecs",
            },
            {
                "type": "jsonl",
                "name": "ocsf",
                "path": str(output / "events.ocsf.jsonl"),
                "payload": "ocsf",
            },
        ],
    }


def run_demo(workdir: Path, *, duration: float | None, seed: int) -> int:
    """Run the demo until Ctrl-C (or ``duration`` seconds); return the exit status.

    Raises:
        StateLockedError: another process (a demo in the same folder) holds its state.
    """
    workdir = workdir.resolve()
    # Before the config is rewritten: a second demo here would deliver the same events again.
    with state_lock(workdir / "state", "demo"):
        return _run_demo(workdir, duration=duration, seed=seed)


def _run_demo(workdir: Path, *, duration: float | None, seed: int) -> int:
    import dataclasses  # noqa: PLC0415

    from o365emulator import Emulator, default_settings  # noqa: PLC0415

    console = Console(stderr=True)
    defaults = default_settings()
    now = datetime.now(UTC)
    anchor, reset = demo_anchor(workdir, seed=seed, live_secs=defaults.live_secs, now=now)
    if anchor < now.replace(microsecond=0):
        console.print(
            f"[bold]Resuming:[/] the emulator serves the data of the last demo here (anchored "
            f"at {anchor:%Y-%m-%d %H:%M:%S} UTC); nothing is delivered twice."
        )
    elif reset:
        console.print(
            "[bold]Started afresh:[/] the emulator's data of the last demo here is used up "
            "(or unknown), so its state and output were removed."
        )
    emu_settings = dataclasses.replace(defaults, seed=seed, anchor=anchor)
    emulator = Emulator(emu_settings)
    base_url = emulator.start()
    spec = emu_settings.tenants[0]
    config_path = workdir / "config.yaml"
    tenant = {
        "tenant_id": spec.tenant_id,
        "client_id": spec.client_id,
        "client_secret": spec.client_secret,
        "domain": spec.domain,
    }
    config_path.write_text(
        yaml.safe_dump(demo_config(base_url, workdir, tenant), sort_keys=False), encoding="utf-8"
    )
    log_path = workdir / "collector.log"
    console.print(f"[bold]Emulator[/] serving Microsoft Graph at {base_url}")
    console.print(f"[bold]Config[/]   {config_path}")
    console.print(f"[bold]Logs[/]     {log_path}")
    console.print(
        "Collecting; press Ctrl-C to stop."
        if duration is None
        else f"Collecting for {duration:.0f} s."
    )
    with log_path.open("a", encoding="utf-8") as log_file:
        configure_logging("info", "json", stream=log_file)
        settings = load_settings(config_path)
        progress = Progress()
        collector = Collector(settings, RunOptions(), progress=progress)
        try:
            result = asyncio.run(_run_with_display(collector, progress, duration, console))
        finally:
            emulator.stop()
    output = workdir / "output"
    lines = _count_lines(output / "events.jsonl")
    console.print(f"\n[bold green]Done.[/] {lines} events in {output / 'events.jsonl'}")
    console.print(
        f"Normalized: {_count_lines(output / 'events.ecs.jsonl')} ECS documents in "
        f"{output / 'events.ecs.jsonl'}, {_count_lines(output / 'events.ocsf.jsonl')} OCSF "
        f"events in {output / 'events.ocsf.jsonl'}"
    )
    sample = _first_line(output / "events.ecs.jsonl")
    if sample is not None:
        console.print("[bold]The first ECS document:[/]")
        console.print_json(sample)
    console.print(f"Inspect checkpoints: o365collector state show --config {config_path}")
    return result


def demo_anchor(
    workdir: Path, *, seed: int, live_secs: float, now: datetime
) -> tuple[datetime, bool]:
    """The emulator's anchor for a demo in ``workdir``, and whether the demo was reset.

    The emulator's data is a pure function of (seed, anchor): the demo keeps both in
    ``state/emulator.json``, so a second demo in the same folder serves the very rows (same
    trace ids, receive times and status histories) the first one collected from, and the
    collector, resuming from its checkpoints, delivers no row again. The emulator's live rows
    end ``live_secs`` after the anchor: once less than an hour of them is left, or when the
    seed changed, or when there is state but no anchor (an older demo), the demo starts
    afresh with ``now`` as the anchor, removing ``state/`` (but its lock) and ``output/``,
    whose rows came from other data. The caller holds the state lock.
    """
    state = workdir / "state"
    path = state / ANCHOR_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        anchor = datetime.fromisoformat(saved["anchor"]).astimezone(UTC)
        if saved["seed"] == seed and now < anchor + timedelta(seconds=live_secs) - _MIN_LIVE_LEFT:
            return anchor, False
    except (OSError, ValueError, KeyError, TypeError):
        pass
    anchor = now.replace(microsecond=0)
    reset = _clear(state, workdir / "output")
    state.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"seed": seed, "anchor": anchor.isoformat()}) + "\n", encoding="utf-8"
    )
    return anchor, reset


def _clear(state: Path, output: Path) -> bool:
    """Remove the state (but its lock file) and the output; whether there was any."""
    found = False
    for entry in [*(state.iterdir() if state.is_dir() else ()), output]:
        if entry.name == LOCK_FILE and entry.parent == state:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
            found = True
        elif entry.exists():
            entry.unlink()
            found = True
    return found


async def _run_with_display(
    collector: Collector, progress: Progress, duration: float | None, console: Console
) -> int:
    run = asyncio.create_task(collector.run())
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, collector.stop.set)
    with Live(_render(progress), console=console, refresh_per_second=4) as live:
        while not run.done():
            await asyncio.wait({run}, timeout=0.25)
            live.update(_render(progress))
    return (await run).exit_code


def _render(progress: Progress) -> Group:
    """The live table; fits 80 columns: a long cell wraps onto a second line, never ``…``.

    Streams are named ``tenant/stream`` only when there are several tenants.
    """
    streams = list(progress.streams.values())
    several = len({p.tenant for p in streams}) > 1
    table = Table(
        title="o365collector demo",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold underline",
        caption="late/chg: late rows / status changes found by re-sweeps; window: live, UTC",
        caption_justify="left",
    )
    for column in ("stream", "state", "events", "late/chg", "pages", "window", "lag"):
        right = column in {"events", "late/chg", "pages", "lag"}
        whole = column in {"stream", "state"}  # names stay whole; the other cells wrap
        table.add_column(
            column, overflow="fold", no_wrap=whole, justify="right" if right else "left"
        )
    now = datetime.now(UTC)
    for p in streams:
        lag = f"{(now - p.watermark).total_seconds():.0f} s" if p.watermark else "—"
        late = f"{p.late_rows:,} / {p.status_changes:,}"
        name = f"{p.tenant}/{p.stream}" if several else p.stream
        table.add_row(name, p.state, f"{p.events:,}", late, f"{p.pages:,}", p.window, lag)
    errors = [Text(f"{p.tenant}/{p.stream}: {p.error}", style="red") for p in streams if p.error]
    return Group(table, *errors)


def _first_line(path: Path) -> str | None:
    """The first line of ``path`` (or its first rotated part), ``None`` when there is none."""
    for file in sorted(path.parent.glob(path.name + "*")):
        with contextlib.suppress(OSError), file.open("r", encoding="utf-8") as handle:
            line = handle.readline().strip()
            if line:
                return line
    return None


def _count_lines(path: Path) -> int:
    total = 0
    for file in sorted(path.parent.glob(path.name + "*")):
        with contextlib.suppress(OSError), file.open("rb") as handle:
            total += sum(1 for _ in handle)
    return total
