"""Issue 15: replicas sharing tenants through PostgreSQL — throughput, failover, cost per page.

One emulator process serves ``TENANTS`` tenants with a backlog of ``ROWS`` final rows each.
Every configuration reads the whole backlog with daemon ``o365collector run`` processes
(``fixed_delay``, a minute's poll, ``page_size`` ``PAGE_SIZE`` so the pages are known),
started together and measured until the union of their jsonl outputs holds every row:

- SQLite (the default backend), one process: the baseline;
- PostgreSQL (``state: {backend: postgresql}``), 1, 2 and 3 replicas on one schema.

Per configuration: events/s (wall, start-up included), PostgreSQL round trips per page and
collector CPU per page. Every PostgreSQL call of the collector is one autocommit statement
(no pipelining, no prepared statements), so a round trip is one transaction: they are
counted as ``xact_commit + xact_rollback`` of a throwaway database that only the replicas
use (``pg_stat_database``, read from another database after the stats are flushed). CPU is
the replicas' user + system time (``/proc/<pid>/stat``) when the last row arrived. Pages are
the Graph requests the emulator accepted meanwhile.

Failover (2 and 3 replicas): once every row is delivered and the leases are settled, one
replica is SIGKILLed; the failover time is from the kill to the last of its tenants'
"Tenant lease acquired" log lines (log timestamps) in the other replicas.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.common import (
    EmulatorProcess,
    collector_command,
    collector_config,
    collector_env,
    collector_log_tail,
    count_lines,
    output_files,
    proc_cpu_secs,
    quiet_history,
    tenant_spec,
)
from bench.results import Context, Report, bench_command, parse_time

NAME = "replicas"
TENANTS = 60
ROWS = 2_000
PAGE_SIZE = 200
LEASE_SECS = 5.0
ADMIN_DSN = os.environ.get("O365_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
COLLECTION: dict[str, Any] = {
    "mode": "fixed_delay",
    "fixed_delay_secs": 1,
    "poll_interval_secs": 60,  # the backlog once, then idle (no new rows arrive)
    "initial_lookback_secs": 4 * 86400,
    "page_size": PAGE_SIZE,
}
TARGET_ROUND_TRIPS = 2.0  # issue 19
DEADLINE_SECS = 240.0  # a hung run must not hang the benchmark


@dataclass
class Proc:
    """One collector process of a run."""

    workdir: Path
    proc: subprocess.Popen[bytes]
    cpu_secs: float = 0.0

    def logs(self) -> list[dict[str, Any]]:
        path = self.workdir / "collector.log"
        out: list[dict[str, Any]] = []
        for line in path.read_bytes().splitlines() if path.exists() else []:
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def replica_id(self) -> str | None:
        for entry in self.logs():
            if entry.get("event") == "Collector started." and entry.get("replica"):
                return str(entry["replica"])
        return None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)


@dataclass
class Outcome:
    """One configuration's run."""

    label: str
    replicas: int
    rows: int
    tenants: int = 0
    lines: int = 0
    distinct: int = 0
    wall_secs: float = 0.0
    cpu_secs: float = 0.0
    pages: int = 0
    round_trips: int | None = None  # None: SQLite
    failover_secs: float | None = None
    failover_tenants: int = 0
    split: list[int] = field(default_factory=list)  # tenants held per replica when settled
    kinds: Counter[str] = field(default_factory=Counter)  # statements by their first words
    whole_run: bool = False  # round trips counted to the stop (failover included), not the end

    @property
    def events_per_sec(self) -> float:
        return self.lines / max(1e-9, self.wall_secs)

    @property
    def cpu_ms_per_page(self) -> float:
        return self.cpu_secs / max(1, self.pages) * 1e3

    @property
    def round_trips_per_page(self) -> float:
        return (self.round_trips or 0) / max(1, self.pages)


# ------------------------------------------------------------------------- PostgreSQL
def _admin() -> Any:
    import psycopg

    return psycopg.connect(ADMIN_DSN, autocommit=True)


@contextlib.contextmanager
def _database():
    """A throwaway database (its DSN), so only the replicas' statements count in it."""
    from psycopg import sql

    name = f"o365bench_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = ADMIN_DSN.rpartition("/")
    try:
        yield StatementLog(name), f"{base}/{name}"
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _transactions(database: str) -> int:
    """Committed + rolled-back transactions of ``database`` (stats flushed so far)."""
    with _admin() as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def _server_log() -> Path | None:
    """The server's log file, when this process can read it (``O365_BENCH_PG_LOG``)."""
    candidates = [os.environ.get("O365_BENCH_PG_LOG", "")]
    with contextlib.suppress(Exception), _admin() as conn:
        row = conn.execute("SELECT pg_current_logfile(), current_setting('data_directory')")
        current, data = row.fetchone() or (None, None)
        if current:
            candidates.append(current if current.startswith("/") else f"{data}/{current}")
    candidates += sorted(str(p) for p in Path("/var/log/postgresql").glob("postgresql-*.log"))
    for candidate in filter(None, candidates):
        path = Path(candidate)
        with contextlib.suppress(OSError), path.open("rb"):
            return path
    return None


class StatementLog:
    """Statements the server ran in ``database``, from its log (``log_statement = all``).

    Every call of the collector's PostgreSQL state is one autocommit statement (no
    pipeline), so one logged statement (simple ``statement:`` or extended ``execute``) is
    one round trip. Without a readable log, transactions of ``pg_stat_database`` are
    counted instead, once every replica has exited (backends flush their counts late).
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = _server_log()
        if self.path is not None:
            with _admin() as conn:
                from psycopg import sql

                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(
                        sql.Identifier(database)
                    )
                )
        self.marker = f"@{database} LOG:  ".encode()

    def offset(self) -> int:
        return self.path.stat().st_size if self.path is not None else 0

    def count(self, begin: int, end: int) -> Counter[str]:
        """Statements between two offsets, by their first words."""
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(begin)
            text = handle.read(max(0, end - begin))
        kinds: Counter[str] = Counter()
        for line in text.splitlines():
            _, found, rest = line.partition(self.marker)
            if found and rest.startswith((b"statement: ", b"execute ")):
                kinds[_kind(rest.split(b": ", 1)[-1].decode(errors="replace"))] += 1
        return kinds


# The fenced writes (``WITH lease AS (…)``) of o365collector.state.pg_statements, by a
# fragment only each one holds.
_FENCED = (
    ("inflight_start = EXCLUDED.inflight_start", "save_inflight"),
    ("inflight_start = NULL", "commit_window"),
    ("ins AS (", "ensure_watermark"),
    ("stream_status", "set_status"),
)


def _kind(statement: str) -> str:
    """A short name for a logged statement: the fenced write's name, else its first words."""
    if statement.startswith("WITH lease AS"):
        for fragment, name in _FENCED:
            if fragment in statement:
                return name
    return " ".join(statement.replace('"', "").split()[:4])[:48]


def _held(dsn: str, schema: str) -> dict[str, set[str]]:
    from o365collector.state.leases import LeaseTable

    table = LeaseTable.open(dsn, schema)
    try:
        held: dict[str, set[str]] = {}
        for lease in table.leases():
            if lease.active:
                held.setdefault(lease.owner, set()).add(lease.tenant)
        return held
    finally:
        table.close()


# -------------------------------------------------------------------------- the runs
def _start(folder: Path, url: str, tenants: int, state: dict[str, Any] | None) -> Proc:
    config = collector_config(folder, url, tenants=tenants, collection=COLLECTION)
    if state is not None:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["state"] = state
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
    log = (folder / "collector.log").open("ab")
    proc = subprocess.Popen(
        collector_command(config), stdout=log, stderr=log, env=collector_env(None)
    )
    log.close()
    return Proc(folder, proc)


def _requests(emulator: EmulatorProcess, tenants: int) -> int:
    return sum(int(emulator.stats(i)["accepted"]) for i in range(tenants))


def _distinct(folders: list[Path]) -> tuple[int, int]:
    ids: set[bytes] = set()
    lines = 0
    for folder in folders:
        for path in output_files(folder):
            with path.open("rb") as handle:
                for line in handle:
                    lines += 1
                    ids.add(bytes.fromhex(orjson.loads(line)["event_id"]))
    return lines, len(ids)


def _failover(procs: list[Proc], dsn: str, schema: str, outcome: Outcome) -> None:
    """SIGKILL the last replica once the leases settled; time until others hold its tenants."""
    ids = [p.replica_id() for p in procs]
    share = -(-outcome.tenants // len(procs))  # ceil(tenants / replicas)
    deadline = time.monotonic() + 60
    held: dict[str, set[str]] = {}
    while time.monotonic() < deadline:  # every tenant held, each replica its fair share
        held = _held(dsn, schema)
        counts = [len(held.get(i or "", ())) for i in ids]
        if sum(counts) == outcome.tenants and max(counts) <= share:
            break
        time.sleep(0.3)
    outcome.split = [len(held.get(i or "", ())) for i in ids]
    victim, victim_id = procs[-1], ids[-1]
    tenants = held.get(victim_id or "", set())
    killed_at = time.time()
    victim.stop(signal.SIGKILL)
    taken: dict[str, float] = {}
    deadline = time.monotonic() + 10 * LEASE_SECS + 30
    while len(taken) < len(tenants) and time.monotonic() < deadline:
        time.sleep(0.3)
        for proc in procs[:-1]:
            for entry in proc.logs():
                if (
                    entry.get("event") == "Tenant lease acquired; collecting it."
                    and entry.get("previous_owner") == victim_id
                    and entry.get("tenant") in tenants
                ):
                    taken[str(entry["tenant"])] = parse_time(str(entry["timestamp"]))
    outcome.failover_tenants = len(taken)
    if tenants and len(taken) == len(tenants):
        outcome.failover_secs = max(taken.values()) - killed_at


def _run(
    ctx: Context,
    emulator: EmulatorProcess,
    label: str,
    *,
    tenants: int,
    rows: int,
    replicas: int,
    pg: tuple[StatementLog, str] | None,
    failover: bool = False,
) -> Outcome:
    """Start ``replicas`` processes together; measure until every row is delivered."""
    schema = f"bench_{label}"
    state = None
    if pg is not None:
        state = {"backend": "postgresql", "dsn": pg[1], "schema": schema, "lease_secs": LEASE_SECS}
    total = tenants * rows
    outcome = Outcome(label, replicas, total, tenants)
    folders = [ctx.folder(f"{label}-{i}") for i in range(replicas)]
    requests_before = _requests(emulator, tenants)
    log = pg[0] if pg is not None else None
    xact_before = _transactions(log.database) if log is not None else 0
    log_before = log.offset() if log is not None else 0
    begin = time.monotonic()
    procs = [_start(folder, emulator.url, tenants, state) for folder in folders]
    try:
        while sum(count_lines(f) for f in folders) < total:
            dead = [p for p in procs if p.proc.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"{label}: replica exited: {collector_log_tail(dead[0].workdir)}"
                )
            if time.monotonic() - begin > DEADLINE_SECS:
                raise RuntimeError(f"{label}: not every row after {DEADLINE_SECS:.0f} s")
            time.sleep(0.1)
        outcome.wall_secs = time.monotonic() - begin
        outcome.cpu_secs = sum(proc_cpu_secs(p.proc.pid) for p in procs)
        log_done = log.offset() if log is not None else 0
        outcome.pages = _requests(emulator, tenants) - requests_before
        if log is not None and log.path is not None:
            outcome.kinds = log.count(log_before, log_done)
            outcome.round_trips = sum(outcome.kinds.values())
        if failover and pg is not None:
            _failover(procs, pg[1], schema, outcome)
    finally:
        for proc in procs:
            proc.stop()
    if log is not None and log.path is None:  # every backend gone: its counts are flushed
        time.sleep(1.0)
        outcome.round_trips = _transactions(log.database) - xact_before
        outcome.whole_run = True
    outcome.lines, outcome.distinct = _distinct(folders)
    return outcome


def _describe(o: Outcome) -> str:
    text = (
        f"{o.label}: {o.lines:,} lines ({o.distinct:,} distinct) of {o.rows:,} rows in "
        f"{o.wall_secs:.1f} s; {o.pages} pages; collector CPU {o.cpu_secs:.1f} s"
    )
    if o.round_trips is not None:
        text += f"; {o.round_trips:,} PostgreSQL round trips"
        if o.whole_run:
            text += " (transactions of pg_stat_database to the stop: no readable server log)"
        if o.kinds:
            top = ", ".join(f"{k} ×{n}" for k, n in o.kinds.most_common(8))
            text += f" ({top})"
    if o.split:
        text += f"; tenants per replica when settled {o.split}"
    if o.failover_secs is not None or o.split:
        text += f"; failover took over {o.failover_tenants} tenants"
    return text


def run(ctx: Context) -> Report:
    """SQLite baseline and 1, 2, 3 PostgreSQL replicas over the same tenants."""
    tenants, rows, counts = (10, 1_000, (1, 2)) if ctx.smoke else (TENANTS, ROWS, (1, 2, 3))
    report = Report(NAME)
    cmd = bench_command(NAME, ctx.smoke)
    specs = [tenant_spec(i, rows) for i in range(tenants)]
    emulator = EmulatorProcess(ctx.folder("emulator"), {**quiet_history(), "tenants": specs})
    emulator.start()
    outcomes: list[Outcome] = []
    try:
        report.notes.append(
            f"Emulator: {tenants} tenants × {rows:,} rows, generated in "
            f"{emulator.ready_secs:.1f} s; page_size {PAGE_SIZE}, lease_secs {LEASE_SECS:g}."
        )
        outcomes.append(
            _run(ctx, emulator, "sqlite", tenants=tenants, rows=rows, replicas=1, pg=None)
        )
        with _database() as pg:
            for n in counts:
                outcomes.append(
                    _run(
                        ctx,
                        emulator,
                        f"pg{n}",
                        tenants=tenants,
                        rows=rows,
                        replicas=n,
                        pg=pg,
                        failover=n > 1,
                    )
                )
    finally:
        emulator.stop()
    for o in outcomes:
        name = (
            "SQLite, 1 process"
            if o.round_trips is None
            else f"PostgreSQL, {o.replicas} replica{'s' if o.replicas > 1 else ''}"
        )
        report.add(
            f"{tenants} tenants, {name}: events delivered / rows",
            f"{o.lines:,} / {o.rows:,} ({o.distinct:,} distinct ids)",
            target="all, none twice",
            ok=o.lines == o.distinct == o.rows,
            command=cmd,
        )
        report.add(
            f"{tenants} tenants, {name}: events/s wall",
            f"{o.events_per_sec:,.0f} ({o.wall_secs:.1f} s)",
            command=cmd,
        )
        report.add(
            f"{tenants} tenants, {name}: collector CPU per page",
            f"{o.cpu_ms_per_page:.1f} ms ({o.cpu_secs:.1f} s / {o.pages} pages)",
            command=cmd,
        )
        if o.round_trips is not None:
            report.add(
                f"{tenants} tenants, {name}: PostgreSQL round trips per page",
                f"{o.round_trips_per_page:.2f} ({o.round_trips:,} / {o.pages} pages)",
                target=f"≤ {TARGET_ROUND_TRIPS:g} (issue 19)",
                ok=o.round_trips_per_page <= TARGET_ROUND_TRIPS,
                command=cmd,
            )
        if o.replicas > 1:
            value = (
                f"{o.failover_secs:.1f} s ({o.failover_tenants} tenants)"
                if o.failover_secs is not None
                else f"incomplete ({o.failover_tenants} tenants taken over)"
            )
            report.add(
                f"{tenants} tenants, {name}: failover after SIGKILL of one replica",
                value,
                target=f"≤ {2 * LEASE_SECS:g} s (2 lease periods)",
                ok=o.failover_secs is not None and o.failover_secs <= 2 * LEASE_SECS,
                command=cmd,
            )
        report.notes.append(_describe(o) + ".")
    return report
