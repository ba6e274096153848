"""The ``o365collector`` command line: run, check, demo, emulator, state."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click
from click.core import ParameterSource

from o365collector import __version__
from o365collector.errors import O365CollectorError
from o365collector.observability.redact import redact

if TYPE_CHECKING:  # each command imports what it runs: `--help` loads none of it
    from o365collector.app import Collector, RunResult
    from o365collector.config.model import Settings
    from o365collector.observability.logging import LogFormat

_LOG_LEVEL = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
_LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: console on a terminal, JSON lines otherwise.",
)


def fail(message: str, code: int) -> None:
    """Print one clear, redacted line to stderr and exit with ``code``."""
    click.echo(f"o365collector: error: {redact(message)}", err=True)
    sys.exit(code)


def hold_state_lock(held: contextlib.ExitStack, state_dir: Path, command: str) -> None:
    """Hold ``state_dir``'s lock until ``held`` closes, or exit 2 naming the process holding it.

    Every command that writes state takes it: one process per state directory.
    """
    from o365collector.state.lock import state_lock  # noqa: PLC0415 - not for --help, validate

    try:
        held.enter_context(state_lock(state_dir, command))
    except O365CollectorError as exc:
        fail(str(exc), 2)


_DISPLAY_ONLY = ("rich", "pygments")
"""What httpx and structlog import for their own consoles, never used by ``run``."""


def import_without_display_packages() -> None:
    """Import httpx and structlog while rich and Pygments are hidden from them.

    httpx loads its command line (``httpx._main``: click, Pygments, rich) and structlog its
    rich traceback formatter whenever they are installed; both give up quietly when they
    are not. ``run`` uses neither (its logs are rendered after ``format_exc_info``), and
    the two packages stayed resident at ~3 MiB for the life of the daemon. Packages
    already imported are left alone; a later ``import rich`` (a progress bar on a
    terminal) works as usual.
    """
    hidden = [name for name in _DISPLAY_ONLY if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment] # makes `import name` fail
    try:
        import httpx  # noqa: F401, PLC0415
        import structlog  # noqa: F401, PLC0415
    finally:
        for name in hidden:
            del sys.modules[name]


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between two young-generation collections in ``run`` (CPython's default: 700)."""


def tune_garbage_collector() -> None:
    """Collect cycles less often while collecting: ~1 us less CPU per event on a backlog.

    A page parses into thousands of dicts at once, and each normalized event is a dozen
    more: with CPython's defaults the cyclic collector ran dozens of times a page and its
    older generations walked every page in memory. The collector breaks the reference
    cycles it knows of itself (httpx responses, see ``http/client.py``), so fewer passes
    leave no more garbage behind; what was loaded at start (modules, configuration) is
    frozen out of every pass. Peak RSS was unchanged on the issue-19 backlog.
    """
    import gc  # noqa: PLC0415

    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def wants_debug(settings: Settings, ctx: click.Context) -> bool:
    """Devo's ``globals.debug: true`` asks for debug logs, unless ``--log-level`` is given."""
    given = ctx.get_parameter_source("log_level") is not ParameterSource.DEFAULT
    return not given and bool(getattr(settings, "compat_debug", False))


@click.group()
@click.version_option(__version__, prog_name="o365collector")
def main() -> None:
    """Collect Exchange Online message trace and deliver every record once to your SIEM."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--once", is_flag=True, help="Catch up to now, deliver, commit and exit.")
@_LOG_LEVEL
@_LOG_FORMAT
def run(config_path: Path, once: bool, log_level: str, log_format: LogFormat) -> None:
    """Run the collector (a daemon unless --once).

    With --once: progress while it catches up and a summary at the end, on stderr. Exit
    status: 0 when every stream caught up, 1 when one failed, 2 for a bad configuration or
    a state directory in use.
    """
    import asyncio  # noqa: PLC0415 - `--help`, `validate` and `state` do without it

    import_without_display_packages()
    from o365collector.app import Collector, RunOptions  # noqa: PLC0415
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.observability.logging import configure_logging  # noqa: PLC0415

    configure_logging(log_level, log_format)
    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    if wants_debug(settings, click.get_current_context()):
        configure_logging("debug", log_format)  # Devo's globals.debug: true
    with contextlib.ExitStack() as held:
        hold_state_lock(held, settings.state_dir, "run")
        collector = Collector(settings, RunOptions(once=once))
        tune_garbage_collector()
        started = time.monotonic()
        try:
            if once:
                debug = wants_debug(settings, click.get_current_context())
                sys.exit(_run_once(collector, started, "debug" if debug else log_level, log_format))
            result = asyncio.run(collector.run())
        except O365CollectorError as exc:
            fail(str(exc), 1)
            return
    _print_failures(result)
    sys.exit(result.exit_code)


def _print_failures(result: RunResult) -> None:
    for failure in result.failures:
        click.echo(f"o365collector: error: {redact(failure)}", err=True)


def _run_once(collector: Collector, started: float, log_level: str, log_format: LogFormat) -> int:
    """``run --once`` with its progress and, on stderr, its summary (unless it raised).

    Progress: a bar on a terminal, plain ``progress:`` lines when piped; the summary: a
    table, or plain ``summary:`` lines (see :mod:`o365collector.run_summary`).
    """
    import asyncio  # noqa: PLC0415

    from o365collector import run_summary  # noqa: PLC0415
    from o365collector.observability.logging import configure_logging  # noqa: PLC0415

    console = run_summary.stderr_console()  # rich only on a terminal
    tracker = run_summary.Tracker(collector.progress, run_summary.run_goals(collector.settings))
    display = run_summary.ProgressDisplay(console)

    def relog(stream: TextIO) -> None:
        configure_logging(log_level, log_format, stream=stream)

    result = asyncio.run(run_summary.watched(collector.run(), tracker, display, relog))
    _print_failures(result)  # before the summary, which ends the output
    summary = run_summary.summarize(
        collector.progress,
        windows=tracker.windows_done(),
        durations=collector.durations,
        requests={name: budget.used for name, budget in collector.budgets.items()},
        duration_secs=time.monotonic() - started,
    )
    run_summary.print_summary(summary, console)
    return result.exit_code


EMULATOR_MISSING = (
    "the Microsoft emulator (package o365emulator) is not installed here: from the source "
    "folder, `pip install './emulator'` (or `pip install '.[emulator]'`; `make install` does it)"
)


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo writes its config, state and output.",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--seed", type=int, default=1, show_default=True)
def demo(workdir: Path, duration: float | None, seed: int) -> None:
    """Start the built-in emulator and collect from it with a live display."""
    from o365collector.demo import run_demo  # noqa: PLC0415 - keeps `run` start-up light

    try:
        code = run_demo(workdir, duration=duration, seed=seed)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "o365emulator":
            raise
        fail(EMULATOR_MISSING, 2)
        return
    sys.exit(code)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Serve the Microsoft emulator (the o365emulator package; --help for its options)."""
    try:
        from o365emulator.cli import main as emulator_main  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "o365emulator":
            raise
        fail(EMULATOR_MISSING, 2)
        return
    emulator_main.main(args=ctx.args, prog_name="o365collector emulator")


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--max-wait-secs",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="How long a transient failure (network, 5xx, 429) is retried before it is reported.",
)
@_LOG_FORMAT
def check(config_path: Path, as_json: bool, max_wait_secs: float, log_format: LogFormat) -> None:
    """Sign in, read a little of every stream, reach every sink; name each problem's fix.

    Exit status: 0 when every probe passed, 1 when one failed, 2 for a bad configuration.
    """
    from o365collector.check import Finding, Report, run_check  # noqa: PLC0415
    from o365collector.check.render import render  # noqa: PLC0415
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.observability.logging import configure_logging  # noqa: PLC0415

    configure_logging("warning", log_format)
    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        if not as_json:
            fail(str(exc), 2)
        bad = Finding("config", "load", "fail", "config", redact(str(exc)), "fix the file")
        render(Report([bad]), as_json=True)
        sys.exit(2)
    report = run_check(settings, max_wait_secs=max_wait_secs)
    render(report, as_json=as_json)
    sys.exit(report.exit_code)


@main.group()
def state() -> None:
    """Inspect or reset checkpoints."""


@state.command("show")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def state_show(config_path: Path, as_json: bool) -> None:
    """Show each stream's watermark, in-flight window and lag."""
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.show_state import show_state  # noqa: PLC0415

    try:
        settings = load_settings(config_path)
        show_state(settings, as_json=as_json)
    except O365CollectorError as exc:
        fail(str(exc), 2)


@state.command("reset")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option("--tenant", default=None, help="Only this tenant (its name).")
@click.option("--stream", default=None, help="Only this stream (needs --tenant).")
@click.option("--all", "reset_all", is_flag=True, help="Every tenant and stream.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def state_reset(
    config_path: Path, tenant: str | None, stream: str | None, reset_all: bool, yes: bool
) -> None:
    """Forget checkpoints and delivered facts: the next run collects that scope again."""
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.selection import require_stream  # noqa: PLC0415
    from o365collector.state.backend import open_state, state_location  # noqa: PLC0415

    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    if stream is not None and tenant is None:
        fail("--stream needs --tenant", 2)
    if not reset_all and tenant is None:
        fail("say what to reset: --tenant NAME [--stream NAME], or --all", 2)
    labels = {t.label for t in settings.tenants}
    if tenant is not None and tenant not in labels:
        fail(f"no tenant named {tenant!r} in the config (known: {', '.join(sorted(labels))})", 2)
    if stream is not None:
        try:
            require_stream(stream, [t for t in settings.tenants if t.label == tenant])
        except O365CollectorError as exc:
            fail(str(exc), 2)
    scope = (
        "every tenant and stream"
        if reset_all
        else f"tenant {tenant}" + (f", stream {stream}" if stream else "")
    )
    with contextlib.ExitStack() as held:
        hold_state_lock(held, settings.state_dir, "state reset")  # before asking: fail fast
        if not yes and not click.confirm(
            f"Reset {scope} in {state_location(settings)}? The next run collects it again from "
            "initial_lookback_secs (sinks may receive repeats)",
            default=False,
        ):
            fail("not confirmed; nothing was reset", 1)
        store = open_state(settings)
        try:
            removed = store.reset(None if reset_all else tenant, None if reset_all else stream)
        finally:
            store.close()
    click.echo(f"Reset {scope}: {removed} checkpoint(s) removed.")


@state.command("migrate")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--to",
    "dsn",
    required=True,
    envvar="O365_PG_DSN",
    help="Target PostgreSQL, postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE "
    "(default: $O365_PG_DSN, which keeps a password off the command line).",
)
@click.option("--schema", default=None, help="Target schema (default: the config's state.schema).")
@click.option("--force", is_flag=True, help="Replace the target's state of these tenants.")
def state_migrate(config_path: Path, dsn: str, schema: str | None, force: bool) -> None:
    """Copy the SQLite state of --config into PostgreSQL: replicas resume where it stopped."""
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.state.backend import state_path  # noqa: PLC0415
    from o365collector.state.migrate import migrate_to_postgres  # noqa: PLC0415
    from o365collector.state.pg_database import PgDatabase  # noqa: PLC0415

    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    target_schema = schema or settings.state.db_schema
    with contextlib.ExitStack() as held:
        hold_state_lock(held, settings.state_dir, "state migrate")  # no collector writes it
        try:
            target = PgDatabase(dsn, target_schema, pool_size=1)
            held.callback(target.close)
            report = migrate_to_postgres(state_path(settings), target, force=force)
        except O365CollectorError as exc:
            fail(str(exc), 1)
            return
    if report.replaced:
        click.echo(f"Replaced the earlier state of {', '.join(report.replaced)} (--force).")
    click.echo(
        f"Copied {report.checkpoints} checkpoint(s), {report.facts} delivered fact(s), "
        f"{report.statuses} stream health(s) and {report.markers} reset marker(s) of "
        f"{len(report.tenants)} tenant(s) from {state_path(settings)} to {target.where}."
    )
    click.echo(
        "Next: set `state: {backend: postgresql, dsn: ${O365_PG_DSN}}` in the config and "
        "start the replicas; do not run the SQLite collector again (see docs/scale-out.md)."
    )


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
def validate(config_path: Path) -> None:
    """Check the configuration file only (no network); exit 2 with every problem."""
    from o365collector.config.loader import load_settings  # noqa: PLC0415

    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    streams = sum(len(t.streams) for t in settings.tenants)
    click.echo(
        f"{config_path}: valid ({len(settings.tenants)} tenant(s), {streams} stream(s), "
        f"{len(settings.sinks)} sink(s))."
    )
    kept = "state.db, " if settings.state.backend == "sqlite" else ""
    click.echo(f"state_dir: {settings.state_dir.resolve()} ({kept}the lock file, dead letters)")
    lookback = settings.collection.initial_lookback_secs
    click.echo(
        f"A stream with no state reads back {lookback:g} s "
        f"({lookback / 3600:.4g} h, collection.initial_lookback_secs) unless it sets its own "
        "(first lookback below), and nothing older; older history: o365collector backfill "
        "--from … --to …"
    )
    from o365collector.config.effective import describe  # noqa: PLC0415

    for line in describe(settings):
        click.echo(line)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--from", "start", required=True, help="Start, ISO 8601 UTC (e.g. 2026-11-01T00:00:00Z)."
)
@click.option("--to", "end", required=True, help="End (exclusive), ISO 8601 UTC.")
@click.option("--tenant", default=None, help="Only this tenant (its name).")
@click.option("--stream", default=None, help="Only this stream.")
@_LOG_FORMAT
def backfill(
    config_path: Path,
    start: str,
    end: str,
    tenant: str | None,
    stream: str | None,
    log_format: LogFormat,
) -> None:
    """Collect a past period once, showing its progress; resumable, deduplicated.

    Exit status: 0 when every stream read the whole period, 1 when one failed, 2 for a bad
    configuration or range.
    """
    from o365collector.backfill import run_backfill  # noqa: PLC0415
    from o365collector.config.loader import load_settings  # noqa: PLC0415
    from o365collector.observability.logging import configure_logging  # noqa: PLC0415

    configure_logging("warning", log_format)
    try:
        settings = load_settings(config_path)
    except O365CollectorError as exc:
        fail(str(exc), 2)
        return
    with contextlib.ExitStack() as held:
        hold_state_lock(held, settings.state_dir, "backfill")  # before the progress bar
        try:
            code = run_backfill(
                settings,
                start=start,
                end=end,
                tenant=tenant,
                stream=stream,
                relog=lambda out: configure_logging("warning", log_format, stream=out),
            )
        except O365CollectorError as exc:
            fail(str(exc), 2)
            return
    sys.exit(code)
