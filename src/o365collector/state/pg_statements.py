"""The SQL of :class:`~o365collector.state.postgresql.PostgresStateStore`, one statement a call.

Writes read their values ``FROM lease``: the lease check of
:data:`~o365collector.state.leases.FENCE_CHECK` when the store is fenced (no row once the
lease moved on, so nothing is written and the row count says so), else ``SELECT 1``.
Statements are composed with :mod:`psycopg.sql` (the schema as a quoted identifier), never
pasted together from strings.

A page's keys, statuses and expiries travel as binary arrays (``%(keys)b``): in text, psycopg
spelled each of 5,000 keys in hex and the server parsed them back, ~7 us of the collector's
CPU per fact for the lookup and the commit together; binary, ~1.5 us.
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

from o365collector.state.leases import FENCE_CHECK

# Templates: {s} is the schema; {lease} the lease check (SELECT 1 when unfenced); the other
# names are the fragments of _FRAGMENTS (composed, never pasted).
_FRAGMENTS: dict[str, LiteralString] = {
    "columns": "watermark, inflight_start, inflight_end, next_link, updated_at",
    "key": "tenant = %(tenant)s AND stream = %(stream)s AND lane = %(lane)s",
    "scope": "(%(tenant)s::text IS NULL OR tenant = %(tenant)s) "
    "AND (%(stream)s::text IS NULL OR stream = %(stream)s)",
    # Writes read their values FROM lease: one row unfenced, or while the lease holds.
    "upsert": "INSERT INTO {s}.checkpoints AS c "
    "(tenant, stream, lane, watermark, inflight_start, inflight_end, next_link, updated_at) "
    "SELECT %(tenant)s, %(stream)s, %(lane)s, %(watermark)s::timestamptz, "
    "%(start)s::timestamptz, %(end)s::timestamptz, %(link)s::text, %(now)s::timestamptz "
    "FROM lease ON CONFLICT (tenant, stream, lane) DO UPDATE SET",
    "inflight_set": "inflight_start = EXCLUDED.inflight_start, "
    "inflight_end = EXCLUDED.inflight_end, next_link = EXCLUDED.next_link, "
    "updated_at = EXCLUDED.updated_at",
    "commit_set": "watermark = GREATEST(c.watermark, EXCLUDED.watermark), "
    "inflight_start = NULL, inflight_end = NULL, next_link = NULL, "
    "updated_at = EXCLUDED.updated_at",
    # A status already known for a key is not repeated (as in SQLite); the latest expiry wins.
    "remember": "INSERT INTO {s}.seen AS x (row_key, scope, statuses, expires_at) "
    "SELECT f.row_key, %(scope)s, f.statuses, f.expires_at FROM lease, "
    "unnest(%(keys)b::bytea[], %(statuses)b::text[], %(expiries)b::bigint[]) "
    "AS f(row_key, statuses, expires_at) "
    "ON CONFLICT (row_key) DO UPDATE SET statuses = x.statuses || COALESCE(("
    "SELECT string_agg('|' || n.status, '' ORDER BY n.i) "
    "FROM unnest(string_to_array(EXCLUDED.statuses, '|')) WITH ORDINALITY AS n(status, i) "
    "WHERE n.status <> ALL(string_to_array(x.statuses, '|'))), ''), "
    "expires_at = GREATEST(x.expires_at, EXCLUDED.expires_at)",
}
_READS: dict[str, LiteralString] = {
    "load": "SELECT {columns} FROM {s}.checkpoints WHERE {key}",
    "all": "SELECT tenant, stream, lane, {columns} FROM {s}.checkpoints "
    "ORDER BY tenant, stream, lane",
    "lanes": "SELECT lane, {columns} FROM {s}.checkpoints "
    "WHERE tenant = %(tenant)s AND stream = %(stream)s ORDER BY lane",
    "status": "SELECT state, error FROM {s}.stream_status "
    "WHERE tenant = %(tenant)s AND stream = %(stream)s",
    "seen": "SELECT row_key, statuses FROM {s}.seen WHERE row_key = ANY(%(keys)b::bytea[])",
    "expire": "DELETE FROM {s}.seen WHERE expires_at < %(now)s",
    "expire_scope": "DELETE FROM {s}.seen WHERE expires_at < %(now)s AND scope = %(scope)s",
    "markers": "SELECT tenant, stream, marker FROM {s}.stream_resets",
}
_WRITES: dict[str, LiteralString] = {
    "save_inflight": "WITH lease AS ({lease}) {upsert} {inflight_set}",
    "commit_window": "WITH lease AS ({lease}) {upsert} {commit_set}",
    # A page's commit in one statement (one round trip): its facts, then its lane's step.
    "page_inflight": "WITH lease AS ({lease}), r AS ({remember}), "
    "c AS ({upsert} {inflight_set}) SELECT count(*) FROM lease",
    "page_window": "WITH lease AS ({lease}), r AS ({remember}), "
    "c AS ({upsert} {commit_set}) SELECT count(*) FROM lease",
    # The existing watermark comes from the statement's snapshot when the upsert skips it.
    "ensure_watermark": "WITH lease AS ({lease}), ins AS ({upsert} "
    "watermark = EXCLUDED.watermark, updated_at = EXCLUDED.updated_at "
    "WHERE c.watermark IS NULL RETURNING c.watermark) "
    "SELECT (SELECT count(*) FROM lease), COALESCE((SELECT watermark FROM ins), "
    "(SELECT watermark FROM {s}.checkpoints WHERE {key}))",
    "set_status": "WITH lease AS ({lease}) INSERT INTO {s}.stream_status "
    "(tenant, stream, state, error, updated_at) "
    "SELECT %(tenant)s, %(stream)s, %(state)s, %(error)s, %(now)s::timestamptz FROM lease "
    "ON CONFLICT (tenant, stream) DO UPDATE SET state = EXCLUDED.state, "
    "error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
    "remember": "WITH lease AS ({lease}) {remember}",
    "record_reset_marker": "WITH lease AS ({lease}) INSERT INTO {s}.stream_resets "
    "(tenant, stream, marker, applied_at) "
    "SELECT %(tenant)s, %(stream)s, %(marker)s, %(now)s::timestamptz FROM lease "
    "ON CONFLICT (tenant, stream) DO UPDATE SET marker = EXCLUDED.marker, "
    "applied_at = EXCLUDED.applied_at",
    # One statement, so a fenced reset is all or nothing: a tenant's facts are its scopes.
    "reset": "WITH lease AS ({lease}), "
    "cp AS (DELETE FROM {s}.checkpoints WHERE EXISTS (SELECT 1 FROM lease) AND {scope} "
    "RETURNING 1), "
    "st AS (DELETE FROM {s}.stream_status WHERE EXISTS (SELECT 1 FROM lease) AND {scope}), "
    "se AS (DELETE FROM {s}.seen WHERE EXISTS (SELECT 1 FROM lease) AND "
    "(%(tenant)s::text IS NULL OR CASE WHEN %(stream)s::text IS NULL "
    "THEN starts_with(scope, %(prefix)s) ELSE scope = %(scope)s END)) "
    "SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM cp)",
}


def statements(schema: str, *, fenced: bool) -> dict[str, sql.Composed]:
    """Every statement of the store, composed for ``schema`` (fenced writes or not)."""
    ident = sql.Identifier(schema)
    parts: dict[str, sql.Composable] = {
        "s": ident,
        "lease": sql.SQL(FENCE_CHECK if fenced else "SELECT 1").format(s=ident),
    }
    parts |= {name: sql.SQL(text).format(**parts) for name, text in _FRAGMENTS.items()}
    return {name: sql.SQL(text).format(**parts) for name, text in (_READS | _WRITES).items()}
