"""Replicas sharing tenants through PostgreSQL, as real processes (issue 15's proof).

One emulator with many tenants; each replica is an ``o365collector run`` process with its
own ``state_dir``, its own jsonl file and the same PostgreSQL schema. Helpers here start
and signal replicas, read their JSON logs and the lease table, and check the union of
their outputs against the emulator's ground truth.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from harness import CLIENT_ID, SECRET, EmulatorProcess, key, output_lines, parse_time

TENANTS = 30
LEASE_SECS = 4
PAGE_SIZE = 25
SLOWEST_RESWEEP_SECS = 10
COLLECTION: dict[str, Any] = {
    "initial_lookback_secs": 900,
    "settle_delay_secs": 2,
    "poll_interval_secs": 1,
    "horizon_secs": 3600,
    "final_every_secs": 30,
    "page_size": PAGE_SIZE,
    "resweeps": [
        {"max_age_secs": 60, "every_secs": 2},
        {"max_age_secs": 300, "every_secs": 5},
        {"max_age_secs": 3600, "every_secs": SLOWEST_RESWEEP_SECS},
    ],
    "retry": {"initial_interval_secs": 0.2, "max_interval_secs": 2, "max_elapsed_secs": 60},
}


def tenant_ids() -> dict[str, str]:
    """Tenant name -> directory id, for the module's emulator and every replica."""
    return {f"t{i:02d}": str(uuid.UUID(int=0xA0000 + i)) for i in range(TENANTS)}


def start_emulator(workdir: Path) -> EmulatorProcess:
    tenants = [
        {
            "tenant_id": tid,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "rows": 120,
            "quota_requests": 100_000,
            "quota_window_secs": 300,
        }
        for tid in tenant_ids().values()
    ]
    settings = {
        "seed": 15,
        "tenants": tenants,
        "history_secs": 600,
        "live_rows_per_sec": 0.3,
        "live_secs": 900,
        "visible_delay_secs": [1.0, 4.0],
        "late_fraction": 0.05,
        "late_delay_secs": [5.0, 30.0],
        "status_change_fraction": 0.3,
        "status_change_delay_secs": [3.0, 20.0],
    }
    return EmulatorProcess(workdir, settings).start()


@dataclass
class Replica:
    """One ``o365collector run`` process of a shared deployment."""

    workdir: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    _id: str | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "collector.log"

    def start(self) -> Replica:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "o365collector",
                "run",
                "--config",
                str(self.config),
                "--log-format",
                "json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.started_at = time.monotonic()
        return self

    def logs(self) -> list[dict[str, Any]]:
        out = []
        if not self.log_path.exists():
            return out
        for line in self.log_path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.logs() if str(e.get("event", "")).startswith(event)]

    @property
    def replica_id(self) -> str | None:
        if self._id is None:
            for entry in self.events("Collector started."):
                self._id = entry.get("replica")
        return self._id

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, and the exit code (a graceful stop drains and hands leases back)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL (continued first if stopped), for cleanup or a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def output(self) -> list[dict[str, Any]]:
        if not (self.workdir / "out").exists():
            return []
        return list(output_lines(self.workdir))


def replica(workdir: Path, emulator_url: str, dsn: str, schema: str) -> Replica:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "state_dir": str(workdir / "state"),
        "state": {"backend": "postgresql", "dsn": dsn, "schema": schema, "lease_secs": LEASE_SECS},
        "tenants": [
            {
                "name": name,
                "tenant_id": tid,
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "endpoints": {"authority": emulator_url, "graph": emulator_url},
                "budget": {"requests": 5000, "window_secs": 300},
            }
            for name, tid in tenant_ids().items()
        ],
        "collection": COLLECTION,
        "sinks": [{"type": "jsonl", "name": "file", "path": str(workdir / "out" / "events.jsonl")}],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return Replica(workdir, path)


def wait_until(failure: str | Callable[[], str], condition: Callable[[], Any], secs: float = 60):
    """Poll ``condition`` until truthy (returned); the deadline only stops a hung run."""
    deadline = time.monotonic() + secs
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(failure() if callable(failure) else failure)
        time.sleep(0.2)


def held_by(leases: Iterable[Any]) -> Counter[str]:
    """Active leases per owner."""
    return Counter(lease.owner for lease in leases if lease.active)


def tenant_of_owner(leases: Iterable[Any], owner: str) -> set[str]:
    return {lease.tenant for lease in leases if lease.active and lease.owner == owner}


def checkpoints(conn: Any, schema: str) -> dict[tuple[str, str, str], datetime | None]:
    from psycopg import sql

    query = sql.SQL("SELECT tenant, stream, lane, watermark FROM {}.checkpoints").format(
        sql.Identifier(schema)
    )
    return {(t, s, lane): w for t, s, lane, w in conn.execute(query).fetchall()}


@dataclass
class Union:
    """The union of every replica's output, checked against the ground truth."""

    delivered: int
    repeated: dict[tuple[str, str, str, str], int]  # (tenant, id, recipient, status) -> n
    due_rows: int
    by_tenant: Counter[str]


def check_union(
    emulator: EmulatorProcess,
    replicas: Iterable[Replica],
    started: datetime,
    stopped: datetime,
    dump: Path | None = None,
) -> Union:
    """Every row and status due by the cutoff delivered; returns the repeats (not asserted).

    The notion is ``test_fresh_and_complete``'s: a row visible one slow re-sweep period
    (plus slack) before the stop must have been delivered, and so must every status that
    stayed visible, while the collectors ran, longer than that period.
    """
    events = [e for r in replicas for e in r.output()]
    facts = Counter((e["tenant"], *key(e["record"]), e["record"]["status"].lower()) for e in events)
    repeated = {f: n for f, n in facts.items() if n > 1}
    first_start = started - timedelta(seconds=COLLECTION["initial_lookback_secs"] - 5)
    cutoff = stopped - timedelta(seconds=SLOWEST_RESWEEP_SECS + 8)
    due_rows: set[tuple[str, str, str]] = set()
    due_facts: set[tuple[str, str, str, str]] = set()
    known: set[tuple[str, str, str]] = set()
    truth_dump = []
    for name, tid in tenant_ids().items():
        truth = emulator.ground_truth(tid)
        truth_dump += truth
        for row in truth:
            k = (name, row["id"], row["recipientAddress"].lower())
            known.add(k)
            if parse_time(row["receivedDateTime"]) < first_start:
                continue
            history = row["history"]
            if parse_time(history[0]["visible_at"]) <= cutoff:
                due_rows.add(k)
            for i, step in enumerate(history):
                seen_from = max(parse_time(step["visible_at"]), started)
                until = parse_time(history[i + 1]["visible_at"]) if i + 1 < len(history) else None
                lasting = until is None or (until - seen_from).total_seconds() > (
                    SLOWEST_RESWEEP_SECS + 5
                )
                if seen_from <= cutoff and lasting:
                    due_facts.add((*k, step["status"].lower()))
    if dump is not None:
        dump.write_bytes(
            b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in truth_dump)
        )
    assert len(due_rows) >= TENANTS * 100, f"only {len(due_rows)} rows due: check the data"
    delivered_rows = {f[:3] for f in facts}
    unknown = delivered_rows - known
    assert not unknown, f"rows not in their tenant's ground truth: {sorted(unknown)[:3]}"
    missing = due_rows - delivered_rows
    assert not missing, (
        f"{len(missing)} of {len(due_rows)} rows missing, e.g. {sorted(missing)[:3]}"
    )
    missing_facts = due_facts - set(facts)
    assert not missing_facts, (
        f"{len(missing_facts)} of {len(due_facts)} statuses missing, "
        f"e.g. {sorted(missing_facts)[:3]}"
    )
    return Union(
        delivered=len(events),
        repeated=repeated,
        due_rows=len(due_rows),
        by_tenant=Counter(f[0] for f in facts),
    )
