"""SQLite state (WAL): checkpoints, stream health, delivered facts and reset markers.

The first implementation of :class:`~o365collector.state.store.StateStore`; build it with
:func:`~o365collector.state.backend.open_state`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

from o365collector.errors import StateError
from o365collector.state.store import Checkpoint, LaneStep, dedup_scope
from o365collector.windows import TimeWindow, parse_iso, to_utc

DATABASE_FILE = "state.db"  # in state_dir
SCHEMA_VERSION = 3
"""2: dedup row keys start with the receive hour (1's are dropped); 3: facts name their
scope by number (``scopes``) and expire by hour (``seen_hours``) instead of through an
index on every fact's expiry."""
_SQL_CHUNK = 900  # stays under SQLite's bound-parameter limit on every build
# A status already known for a key is not repeated; the latest expiry wins.
_REMEMBER = (
    "INSERT INTO seen(row_key, scope_id, statuses, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(row_key) DO UPDATE SET statuses = CASE "
    "WHEN instr('|' || statuses || '|', '|' || excluded.statuses || '|') > 0 "
    "THEN statuses ELSE statuses || '|' || excluded.statuses END, "
    "expires_at = max(expires_at, excluded.expires_at)"
)
_REMEMBER_ROWS = (_SQL_CHUNK - 1) // 3
"""Facts per multi-row insert: the scope's number is bound once (``?1``), then three values
a fact. One statement of 299 facts costs ~half the CPU of 299 rows through
``executemany`` (measured 2.0-2.7 against 3.5-5.6 us a fact on 5,000-fact pages)."""
_REMEMBER_MANY = _REMEMBER.replace(
    "VALUES (?, ?, ?, ?)",
    "VALUES "
    + ",".join(f"(?{2 + 3 * i}, ?1, ?{3 + 3 * i}, ?{4 + 3 * i})" for i in range(_REMEMBER_ROWS)),
)
_CACHE_KIB = 512
"""The connection's page cache (SQLite's default: 2,000 KiB). The dedup store is read and
written in receive-hour order, so a page's keys share a few B-tree pages and the operating
system caches the file anyway: measured on 1M rows, 1.5-2 MiB less peak RSS, the same CPU."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    tenant TEXT NOT NULL,
    stream TEXT NOT NULL,
    lane TEXT NOT NULL DEFAULT 'live',
    watermark TEXT,
    inflight_start TEXT,
    inflight_end TEXT,
    next_link TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, stream, lane)
);
CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, scope TEXT NOT NULL UNIQUE);
DROP INDEX IF EXISTS seen_scope;
CREATE TABLE IF NOT EXISTS stream_status (
    tenant TEXT NOT NULL,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, stream)
);
CREATE TABLE IF NOT EXISTS seen_hours (
    hour BLOB NOT NULL,
    scope_id INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (hour, scope_id)
) WITHOUT ROWID;
"""
_SEEN_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    row_key BLOB PRIMARY KEY,
    scope_id INTEGER NOT NULL,
    statuses TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID
"""
"""The delivered facts. Each names its (tenant, stream) by the number ``scopes`` gives it:
a fact is then ~50 bytes instead of ~70-100, and remembering one 0.6 us cheaper."""
_SEEN_INDEX = (
    "CREATE INDEX IF NOT EXISTS seen_unhoured ON seen(expires_at) WHERE length(row_key) <= 16"
)
_HASH_BYTES = 16
"""A row key is its receive hour (``2026-11-22T05``, or nothing) then a 16-byte hash.

Facts expire by hour: ``seen_hours`` holds, per (hour, scope), the earliest expiry of its
facts, and expiring reads the facts of the hours due, which sit side by side in the key
order (every tenant's: see :meth:`SqliteStateStore.expire_seen`). An index on every
fact's expiry cost ~0.7-1.2 us per fact remembered (a quarter to a third of the SQLite
commit); the hours cost one row per page and hour. Keys without an hour (reports without
a receive time) are found by a partial index instead: they are few.
"""
_REMEMBER_HOUR = (
    "INSERT INTO seen_hours(scope_id, hour, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT(hour, scope_id) DO UPDATE SET expires_at = min(expires_at, excluded.expires_at)"
)
_IN_HOUR = (  # the facts of one hour: keys from the hour to the hour + 16 x ff
    "row_key >= ?1 AND row_key <= ?2 AND length(row_key) = length(?1) + 16"
)
_CUTOFFS_SCHEMA = (  # per connection: the cutoff each scope last expired at
    "CREATE TEMP TABLE IF NOT EXISTS expiry_cutoffs "
    "(scope_id INTEGER PRIMARY KEY, cutoff INTEGER NOT NULL)"
)
_SET_CUTOFF = "INSERT OR REPLACE INTO temp.expiry_cutoffs(scope_id, cutoff) VALUES (?, ?)"
_DUE_ALL = "SELECT hour FROM seen_hours WHERE expires_at < ?"
_EXPIRE_UNHOURED = "DELETE FROM seen WHERE length(row_key) <= 16 AND expires_at < ?1"
_EXPIRY_LAG_SECS = 3600
"""How long after its cutoff a scope's hour is read, when a scope expires its facts: by
then every running stream has recorded a later cutoff (each records one every 10 minutes),
so one read of the hour forgets the facts of every tenant in it."""
_DUE_BY_CUTOFF = (
    "SELECT h.hour FROM seen_hours h JOIN temp.expiry_cutoffs c ON c.scope_id = h.scope_id "
    "WHERE h.expires_at < c.cutoff - ?"
)
_PAST_ITS_CUTOFF = (  # a fact of a scope without a cutoff compares with NULL: kept
    "expires_at < (SELECT cutoff FROM temp.expiry_cutoffs c WHERE c.scope_id = seen.scope_id)"
)
_HOUR_END = b"\xff" * _HASH_BYTES


# Created on first use, not with the schema: only Devo layouts record markers.
_RESETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_resets (
    tenant TEXT NOT NULL,
    stream TEXT NOT NULL,
    marker TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (tenant, stream)
)
"""


class SqliteStateStore:
    """One SQLite file, ``{state_dir}/state.db``; safe for one collector process at a time.

    Implements :class:`~o365collector.state.store.StateStore`.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """Open (creating and upgrading if needed) the database.

        ``read_only`` opens an existing database as it is, for ``state show`` beside a
        running collector: nothing is created, upgraded or written.
        """
        self.path = path
        self.read_only = read_only
        self._scope_ids: dict[str, int] = {}  # scopes' numbers, once committed
        self._lookups = threading.Lock()  # the lookup connection serves one thread at a time
        if read_only:
            self._db = self._reader = _open_read_only(path)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                self._prepare()
                # A private in-memory database cannot be opened twice: it is one connection.
                in_memory = str(path) == ":memory:"
                self._reader = self._db if in_memory else _open_lookups(path)
            except BaseException:
                self._db.close()
                raise
        except sqlite3.Error as exc:
            raise _open_error(path, exc, "open") from exc
        except OSError as exc:
            msg = f"cannot open state database {path}: {exc}; {_ACCESS_HINT}"
            raise StateError(msg) from exc

    def _prepare(self) -> None:
        """Settings, integrity, schema: create it, upgrade it, or refuse a newer one."""
        _tune(self._db)  # its cache size before quick_check reads it all
        damage = _damage(self._db)
        if damage:
            raise StateError(damaged_message(self.path, damage))
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute(_SEEN_TABLE.format(table="seen"))
            self._db.execute(_SEEN_INDEX)
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            return
        version = _schema_version(row[0], self.path, "open")
        if version < SCHEMA_VERSION:
            self._upgrade(version)
        elif version > SCHEMA_VERSION:
            msg = (
                f"{self.path} was written by a newer o365collector (schema {version}, this "
                f"one reads {SCHEMA_VERSION}); upgrade o365collector, or restore a backup of "
                "the state written by this version, or point state_dir elsewhere"
            )
            raise StateError(msg)

    def _upgrade(self, version: int) -> None:
        """Bring a database of an older schema to this one (checkpoints are kept).

        Schema 1 keyed the dedup store by a hash alone; those keys are never matched again,
        so they are dropped: re-sweeps may deliver facts of the last horizon once more, with
        the event ids they had. Schema 2's facts are kept (see :func:`_number_scopes`).
        """
        db = self._db
        db.execute("BEGIN")
        try:
            if version < 2:
                db.execute("DELETE FROM seen")
            if version < 3:
                _number_scopes(db)
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the database."""
        if self._reader is not self._db:
            self._reader.close()
        self._db.close()

    def load(self, tenant: str, stream: str, lane: str = "live") -> Checkpoint:
        """The checkpoint of one lane of a stream (empty if it never ran)."""
        row = self._db.execute(
            "SELECT watermark, inflight_start, inflight_end, next_link, updated_at "
            "FROM checkpoints WHERE tenant=? AND stream=? AND lane=?",
            (tenant, stream, lane),
        ).fetchone()
        return _row_to_checkpoint(row) if row else Checkpoint()

    def all(self) -> list[tuple[str, str, str, Checkpoint]]:
        """Every (tenant, stream, lane) checkpoint, ordered."""
        rows = self._db.execute(
            "SELECT tenant, stream, lane, watermark, inflight_start, inflight_end, next_link, "
            "updated_at FROM checkpoints ORDER BY tenant, stream, lane"
        ).fetchall()
        return [(r[0], r[1], r[2], _row_to_checkpoint(r[3:])) for r in rows]

    def save_inflight(
        self,
        tenant: str,
        stream: str,
        window: TimeWindow,
        next_link: str,
        now: datetime,
        lane: str = "live",
    ) -> None:
        """Record that ``window``'s pages before ``next_link`` are delivered."""
        self._upsert((tenant, stream, lane), window, next_link, None, now)

    def ensure_watermark(
        self, tenant: str, stream: str, lane: str, watermark: datetime, now: datetime
    ) -> datetime:
        """Set a lane's first watermark unless it has one; return the lane's watermark.

        Written at once so that a restart before the lane's first commit does not move its
        start (and skip history) by recomputing it from a later "now".
        """
        current = self.load(tenant, stream, lane)
        if current.watermark is not None:
            return current.watermark
        self._upsert((tenant, stream, lane), current.inflight, current.next_link, watermark, now)
        return watermark

    def commit_window(
        self, tenant: str, stream: str, window: TimeWindow, now: datetime, lane: str = "live"
    ) -> None:
        """Record that all of ``window`` is delivered: the watermark moves to its end."""
        self._upsert((tenant, stream, lane), None, None, window.end, now)

    def set_status(self, tenant: str, stream: str, state: str, error: str, now: datetime) -> None:
        """Record a stream's health (``ok`` or ``failed`` with a redacted reason)."""
        self._db.execute(
            "INSERT INTO stream_status(tenant, stream, state, error, updated_at) "
            "VALUES (?,?,?,?,?) ON CONFLICT(tenant, stream) DO UPDATE SET state=excluded.state, "
            "error=excluded.error, updated_at=excluded.updated_at",
            (tenant, stream, state, error, _iso(now)),
        )

    def status(self, tenant: str, stream: str) -> tuple[str, str] | None:
        """``(state, error)`` last recorded for the stream, if any."""
        row = self._db.execute(
            "SELECT state, error FROM stream_status WHERE tenant=? AND stream=?", (tenant, stream)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def lanes(self, tenant: str, stream: str) -> list[tuple[str, Checkpoint]]:
        """Every lane checkpoint of one stream."""
        rows = self._db.execute(
            "SELECT lane, watermark, inflight_start, inflight_end, next_link, updated_at "
            "FROM checkpoints WHERE tenant=? AND stream=? ORDER BY lane",
            (tenant, stream),
        ).fetchall()
        return [(r[0], _row_to_checkpoint(r[1:])) for r in rows]

    def seen_statuses(self, row_keys: list[bytes]) -> dict[bytes, str]:
        """For each already delivered row key, the ``|``-joined statuses delivered for it.

        Read on a connection of its own, so a lookup may run on another thread while a
        write runs (WAL: readers do not wait for the writer). It sees every commit that
        returned before it began, none that is still open.
        """
        found: dict[bytes, str] = {}
        with self._lookups:
            for start in range(0, len(row_keys), _SQL_CHUNK):
                chunk = row_keys[start : start + _SQL_CHUNK]
                size = _in_list_size(len(chunk))
                chunk += chunk[-1:] * (size - len(chunk))  # a key twice is found once
                found.update(self._reader.execute(_lookup(size), chunk))
        return found

    def remember(self, scope: str, facts: list[tuple[bytes, str, int]]) -> None:
        """Record delivered facts as (row key, status, expiry epoch seconds)."""
        self.commit_page(scope, facts, None)

    def commit_page(
        self, scope: str, facts: list[tuple[bytes, str, int]], step: LaneStep | None
    ) -> None:
        """Remember a page's facts and take its lane's step, in one transaction."""
        if not facts and step is None:
            return
        try:
            self._db.execute("BEGIN")
            if facts:
                number = self._scope_id(scope)
                self._remember(number, facts)
                self._db.executemany(_REMEMBER_HOUR, _hours(number, facts))
            if step is not None:
                key = (step.tenant, step.stream, step.lane)
                if step.next_link is None:
                    self._upsert_row(key, None, None, step.window.end, step.now)
                else:
                    self._upsert_row(key, step.window, step.next_link, None, step.now)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._scope_ids.clear()  # a number given in the failed transaction is gone
            # A full disk or an I/O error may have rolled the transaction back already.
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            what = "dedup fingerprints" if facts else "checkpoint"
            if facts and step is not None:
                what = "dedup fingerprints and checkpoint"
            raise StateError(f"cannot write {what} to {self.path}: {exc}") from exc

    def _remember(self, number: int, facts: list[tuple[bytes, str, int]]) -> None:
        """Insert or merge ``facts`` of scope ``number``: full statements of
        :data:`_REMEMBER_ROWS` facts, the rest one by one (a statement of each size would
        fill the connection's statement cache)."""
        ordered = sorted(facts)  # in key order the B-tree takes them in one pass: ~20 % cheaper
        whole = len(ordered) - len(ordered) % _REMEMBER_ROWS
        for start in range(0, whole, _REMEMBER_ROWS):
            values: list[object] = [number]
            for fact in ordered[start : start + _REMEMBER_ROWS]:
                values += fact
            self._db.execute(_REMEMBER_MANY, values)
        rest = ordered[whole:]
        if rest:
            rows = [(key, number, status, expires) for key, status, expires in rest]
            self._db.executemany(_REMEMBER, rows)

    def _known_scope(self, scope: str) -> int | None:
        """The number of ``scope`` in ``scopes``; ``None`` if no fact was ever in it."""
        number = self._scope_ids.get(scope)
        if number is None:
            row = self._db.execute("SELECT id FROM scopes WHERE scope = ?", (scope,)).fetchone()
            if row is None:
                return None
            number = self._scope_ids[scope] = int(row[0])
        return number

    def _scope_id(self, scope: str) -> int:
        """The number of ``scope``, given on first use inside the caller's transaction (a
        failed one clears the cache: the number went with it)."""
        number = self._known_scope(scope)
        if number is None:
            number = self._db.execute("INSERT INTO scopes(scope) VALUES (?)", (scope,)).lastrowid
            assert number is not None  # an INSERT into a rowid table
            self._scope_ids[scope] = number
        return number

    def expire_seen(self, now_epoch: int, scope: str | None = None) -> int:
        """Forget delivered facts whose re-read horizon has passed; returns how many rows.

        Reads only the hours whose earliest expiry has passed (``seen_hours``), each once
        for every scope: an hour's facts of all tenants sit side by side, so expiring it
        per scope would read it once per scope (100 tenants: 100 times, measured 11 s an
        hour of 400,000 facts). With ``scope``, the scope's cutoff is recorded, an hour is
        read once one of its scopes is :data:`_EXPIRY_LAG_SECS` past its cutoff, and the
        facts of every scope past the cutoff that scope last recorded go (a cutoff only
        moves forward, so an older one is safe); scopes that recorded none keep theirs. A
        fact is thus forgotten up to an hour after its expiry, never before. Without
        ``scope``, every fact past ``now_epoch`` goes at once. An hour that keeps facts
        keeps its row, with the earliest expiry of what is left.
        """
        db = self._db
        number = None
        if scope is not None:
            number = self._known_scope(scope)
            if number is None:
                return 0  # no fact was ever remembered in this scope
        rule_args: tuple[int, ...]
        try:
            db.execute("BEGIN")
            if number is None:  # every scope at now_epoch
                removed = db.execute(_EXPIRE_UNHOURED, (now_epoch,)).rowcount
                due = db.execute(_DUE_ALL, (now_epoch,))
                rule, rule_args = "expires_at < ?3", (now_epoch,)
            else:
                db.execute(_CUTOFFS_SCHEMA)
                db.execute(_SET_CUTOFF, (number, now_epoch))
                removed = db.execute(
                    f"{_EXPIRE_UNHOURED} AND scope_id = ?2", (now_epoch, number)
                ).rowcount
                due = db.execute(_DUE_BY_CUTOFF, (_EXPIRY_LAG_SECS,))
                rule, rule_args = _PAST_ITS_CUTOFF, ()
            for hour in sorted({row[0] for row in due.fetchall()}):
                removed += self._expire_hour(hour, rule, rule_args)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise StateError(f"cannot expire dedup fingerprints in {self.path}: {exc}") from exc
        return removed

    def _expire_hour(self, hour: bytes, rule: str, rule_args: tuple[int, ...]) -> int:
        """Delete an hour's facts that ``rule`` (parameters from ``?3``) finds expired, then
        set each of the hour's ``seen_hours`` rows to the earliest expiry left (or delete
        it)."""
        db = self._db
        bounds = (hour, hour + _HOUR_END)
        removed = db.execute(
            f"DELETE FROM seen WHERE {_IN_HOUR} AND {rule}",  # noqa: S608
            bounds + rule_args,
        ).rowcount
        left = dict(
            db.execute(
                f"SELECT scope_id, min(expires_at) FROM seen WHERE {_IN_HOUR} GROUP BY scope_id",  # noqa: S608
                bounds,
            ).fetchall()
        )
        for (number,) in db.execute(
            "SELECT scope_id FROM seen_hours WHERE hour = ?", (hour,)
        ).fetchall():
            if number in left:
                db.execute(
                    "UPDATE seen_hours SET expires_at = ? WHERE hour = ? AND scope_id = ?",
                    (left[number], hour, number),
                )
            else:
                db.execute("DELETE FROM seen_hours WHERE hour = ? AND scope_id = ?", (hour, number))
        return removed

    def reset(self, tenant: str | None = None, stream: str | None = None) -> int:
        """Forget checkpoints (all, one tenant's, or one stream's); returns rows removed.

        Health goes with them, and the delivered facts of the scope: all of them unless a
        tenant is named.
        """
        query, args = "DELETE FROM checkpoints WHERE 1=1", []
        if tenant is not None:
            query += " AND tenant=?"
            args.append(tenant)
        if stream is not None:
            query += " AND stream=?"
            args.append(stream)
        try:
            removed = self._db.execute(query, args).rowcount
            self._db.execute(query.replace("checkpoints", "stream_status"), args)
            for table in ("seen", "seen_hours"):
                if tenant is None:
                    self._db.execute(f"DELETE FROM {table}")  # noqa: S608
                elif stream is None:
                    # An exact prefix: LIKE would fold case and read `_` and `%` in the name.
                    self._db.execute(
                        f"DELETE FROM {table} WHERE scope_id IN (SELECT id FROM scopes "  # noqa: S608
                        "WHERE substr(scope, 1, length(?1)) = ?1)",
                        (dedup_scope(tenant, ""),),
                    )
                else:
                    self._db.execute(
                        f"DELETE FROM {table} WHERE scope_id IN "  # noqa: S608
                        "(SELECT id FROM scopes WHERE scope = ?)",
                        (dedup_scope(tenant, stream),),
                    )
        except sqlite3.Error as exc:
            msg = f"cannot reset state in {self.path}: {exc}"
            raise StateError(msg) from exc
        return removed

    def reset_markers(self) -> dict[tuple[str, str], str]:
        """The last ``reset_persistence_auth`` marker applied per (tenant, stream)."""
        try:
            if self.read_only:
                exists = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='stream_resets'"
                ).fetchone()
                if exists is None:
                    return {}
            else:
                self._db.execute(_RESETS_SCHEMA)
            rows = self._db.execute("SELECT tenant, stream, marker FROM stream_resets").fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read stream resets from {self.path}: {exc}") from exc
        return {(t, s): m for t, s, m in rows}

    def record_reset_marker(self, tenant: str, stream: str, marker: str, now: datetime) -> None:
        """Record that ``marker`` was applied to the stream (replacing an earlier one)."""
        try:
            self._db.execute(_RESETS_SCHEMA)
            self._db.execute(
                "INSERT INTO stream_resets(tenant, stream, marker, applied_at) VALUES (?,?,?,?) "
                "ON CONFLICT(tenant, stream) DO UPDATE SET marker=excluded.marker, "
                "applied_at=excluded.applied_at",
                (tenant, stream, marker, _iso(now)),
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot record a stream reset in {self.path}: {exc}") from exc

    def _upsert(
        self,
        key: tuple[str, str, str],
        inflight: TimeWindow | None,
        next_link: str | None,
        watermark: datetime | None,
        now: datetime,
    ) -> None:
        try:
            self._upsert_row(key, inflight, next_link, watermark, now)
        except sqlite3.Error as exc:
            msg = f"cannot write checkpoint to {self.path}: {exc}"
            raise StateError(msg) from exc

    def _upsert_row(
        self,
        key: tuple[str, str, str],
        inflight: TimeWindow | None,
        next_link: str | None,
        watermark: datetime | None,
        now: datetime,
    ) -> None:
        """Write a lane's checkpoint row; the watermark never moves back."""
        row = self._db.execute(
            "SELECT watermark FROM checkpoints WHERE tenant=? AND stream=? AND lane=?", key
        ).fetchone()
        mark = parse_iso(row[0]) if row is not None and row[0] else None
        if watermark is not None and (mark is None or watermark > mark):
            mark = watermark
        self._db.execute(
            "INSERT INTO checkpoints(tenant, stream, lane, watermark, inflight_start, "
            "inflight_end, next_link, updated_at) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT(tenant, stream, lane) DO UPDATE SET watermark=excluded.watermark, "
            "inflight_start=excluded.inflight_start, inflight_end=excluded.inflight_end, "
            "next_link=excluded.next_link, updated_at=excluded.updated_at",
            (
                *key,
                _iso(mark),
                _iso(inflight.start if inflight else None),
                _iso(inflight.end if inflight else None),
                next_link,
                _iso(now),
            ),
        )


def _in_list_size(count: int) -> int:
    """The length of the ``IN`` list that looks up ``count`` keys: the next power of two,
    at most :data:`_SQL_CHUNK`.

    Each length is a statement of its own in the connection's cache (up to 128 kept, ~0.2
    KiB a key): lookups of pages of every size kept ~14 MiB of them (measured, 200 random
    sizes). Now eleven lengths; a short list repeats its last key (found once), at most
    doubling its length.
    """
    return min(_SQL_CHUNK, 1 << (count - 1).bit_length())


@functools.cache
def _lookup(size: int) -> str:
    marks = ",".join("?" * size)
    return f"SELECT row_key, statuses FROM seen WHERE row_key IN ({marks})"  # noqa: S608


def _hours(scope: int, facts: list[tuple[bytes, str, int]]) -> list[tuple[int, bytes, int]]:
    """The (scope number, hour, expiry) rows of ``seen_hours`` that ``facts`` touch.

    A page's facts share their expiry and a few receive hours: a handful of rows per page.
    Each hour gets the page's earliest expiry; an hour whose facts expire later is read
    early once (and given the earliest expiry of what it keeps), never late.
    """
    hours = {key[:-_HASH_BYTES] for key, _, _ in facts}
    hours.discard(b"")  # keys of 16 bytes or less: found by the partial index
    if not hours:
        return []
    expires = min(fact[2] for fact in facts)
    return [(scope, hour, expires) for hour in hours]


def _number_scopes(db: sqlite3.Connection) -> None:
    """Schema 2 -> 3: facts name their scope by number, and expire by hour.

    ``seen`` is copied into the new layout (every fact and expiry kept), its expiry index
    goes, and ``seen_hours`` is built from the facts. Inside the caller's transaction.
    """
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(seen)")}
    if "scope" in columns:  # schema 2's layout (a table already numbered is kept as it is)
        db.execute("INSERT OR IGNORE INTO scopes(scope) SELECT DISTINCT scope FROM seen")
        db.execute(_SEEN_TABLE.format(table="seen_v3"))
        db.execute(
            "INSERT INTO seen_v3(row_key, scope_id, statuses, expires_at) "
            "SELECT s.row_key, c.id, s.statuses, s.expires_at FROM seen s "
            "JOIN scopes c ON c.scope = s.scope ORDER BY s.row_key"
        )
        db.execute("DROP TABLE seen")  # and its expiry index
        db.execute("ALTER TABLE seen_v3 RENAME TO seen")
    db.execute("DROP INDEX IF EXISTS seen_expiry")
    db.execute(_SEEN_INDEX)
    db.execute("DELETE FROM seen_hours")
    db.execute(
        "INSERT INTO seen_hours(scope_id, hour, expires_at) "
        "SELECT scope_id, substr(row_key, 1, length(row_key) - 16), min(expires_at) "
        "FROM seen WHERE length(row_key) > 16 GROUP BY 1, 2"
    )


def _tune(db: sqlite3.Connection) -> None:
    """What every store connection sets (the writer's and the lookups'): its wait for
    locks, its cache size."""
    db.execute("PRAGMA busy_timeout=5000")
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")


def _open_lookups(path: Path) -> sqlite3.Connection:
    """The connection of the dedup lookups: reads only, beside the writer's."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA query_only=1")
    _tune(db)
    return db


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened with ``mode=ro``, refused if a newer collector wrote it."""
    if not path.is_file():
        msg = f"no state yet: {path} does not exist (no collector has run with this state_dir)"
        raise StateError(msg)
    try:
        db = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        try:
            db.execute("PRAGMA busy_timeout=5000")
            if not _schema_present(db):
                db.close()
                msg = f"{path} is still being created by a collector that is starting"
                raise StateNotReadyError(msg)
            damage = _damage(db)
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error:
            db.close()
            raise
    except sqlite3.Error as exc:
        raise _open_error(path, exc, "read") from exc
    try:
        _check_readable(path, damage, None if row is None else row[0])
    except StateError:
        db.close()
        raise
    return db


def _check_readable(path: Path, damage: str, version: object) -> None:
    """Refuse damage, or a schema version that is not a number or is newer than ours."""
    if damage:
        raise StateError(damaged_message(path, damage, "read"))
    if version is not None and _schema_version(version, path, "read") > SCHEMA_VERSION:
        msg = (
            f"{path} was written by a newer o365collector (schema {version}, this one "
            f"reads {SCHEMA_VERSION}); upgrade o365collector to read it"
        )
        raise StateError(msg)


_ACCESS_HINT = (
    "check state_dir, that the collector's user can write to it, and that its disk has free space"
)
_DAMAGED_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)


def damaged_message(path: Path, detail: str, verb: str = "open") -> str:
    """What to say about a state file SQLite cannot trust, and the ways out.

    The collector never starts from zero on its own: that would read and deliver
    ``initial_lookback_secs`` of history again.
    """
    return (
        f"cannot {verb} state database {path}: it is damaged ({detail}). The collector "
        "will not start from zero on its own, which would deliver history again. Stop "
        f"every collector using this state_dir, then restore {path.name} from a backup "
        f"(delete {path.name}-wal and {path.name}-shm beside it first), or move {path.name} "
        "aside to start again from collection.initial_lookback_secs (sinks may receive "
        "repeats)"
    )


def _open_error(path: Path, exc: sqlite3.Error, verb: str) -> StateError:
    """A clear :class:`StateError` for an SQLite error met while opening ``path``."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in _DAMAGED_CODES:
        return StateError(damaged_message(path, str(exc), verb))
    return StateError(f"cannot {verb} state database {path}: {exc}; {_ACCESS_HINT}")


def _damage(db: sqlite3.Connection) -> str:
    """What ``PRAGMA quick_check`` (which reads every page) found wrong; empty if nothing."""
    rows = db.execute("PRAGMA quick_check(3)").fetchall()
    found = [line for r in rows for line in str(r[0]).splitlines() if not line.startswith("***")]
    return "" if found == ["ok"] else "; ".join(found)


def _schema_version(value: object, path: Path, verb: str) -> int:
    """The stored schema version, refused as damage when it is not a number."""
    try:
        return int(str(value))
    except ValueError:
        detail = f"its schema version is {str(value)[:40]!r}, not a number"
        raise StateError(damaged_message(path, detail, verb)) from None


class StateNotReadyError(StateError):
    """The state file exists but a starting collector has not written its tables yet."""


SCHEMA_WAIT_SECS = 5.0  # how long a reader waits for a starting collector's tables


def _schema_present(db: sqlite3.Connection) -> bool:
    """Whether the ``meta`` table exists, waiting up to :data:`SCHEMA_WAIT_SECS` for it.

    A collector creates ``state.db`` and then its tables; a reader (``state show``) that
    opens the file in between finds it empty.
    """
    deadline = time.monotonic() + SCHEMA_WAIT_SECS
    query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
    while db.execute(query).fetchone() is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _iso(moment: datetime | None) -> str | None:
    return to_utc(moment).isoformat() if moment is not None else None


def _row_to_checkpoint(row: tuple[str | None, ...]) -> Checkpoint:
    watermark, start, end, link, updated = row
    inflight = TimeWindow(parse_iso(start), parse_iso(end)) if start and end else None
    return Checkpoint(
        watermark=parse_iso(watermark) if watermark else None,
        inflight=inflight,
        next_link=link,
        updated_at=parse_iso(updated) if updated else None,
    )
