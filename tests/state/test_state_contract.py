"""What every state backend must do, as the pipeline relies on it (see ``state/store.py``).

Each test runs against every implementation the ``opener`` fixture yields (SQLite today;
PostgreSQL is added to its params with its backend). Backend specifics (schema versions,
corrupt files, read-only opens) are tested beside each backend, e.g. test_state_sqlite.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pg_support import PG_DSN, new_schema

from o365collector.state.postgresql import PostgresStateStore
from o365collector.state.sqlite import SqliteStateStore
from o365collector.state.store import Checkpoint, LaneStep, StateStore, dedup_scope
from o365collector.windows import TimeWindow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 8, 30, 15, 123456, tzinfo=UTC)
W1 = TimeWindow(T0, T0 + timedelta(hours=1))
W2 = TimeWindow(T0 + timedelta(hours=1), T0 + timedelta(hours=2))
LINK = "https://graph.microsoft.com/v1.0/admin/exchange/tracing/messageTraces?$skiptoken=a%3D"
MT = "message_trace"
FAR = 2**40  # an expiry no test reaches

Opener = Callable[[], StateStore]


def _sqlite(tmp_path: Path) -> Opener:
    return lambda: SqliteStateStore(tmp_path / "state" / "state.db")


def _postgresql(tmp_path: Path) -> Opener:
    """A schema of its own on the machine's PostgreSQL (pg_support.py), dropped at exit."""
    schema = new_schema()
    return lambda: PostgresStateStore(PG_DSN, schema=schema)


BACKENDS: dict[str, Callable[[Path], Opener]] = {"sqlite": _sqlite, "postgresql": _postgresql}


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same (initially empty) state again on every call; closes what it opened."""
    opened: list[StateStore] = []
    make = BACKENDS[request.param](tmp_path)

    def open_state() -> StateStore:
        store = make()
        opened.append(store)
        return store

    yield open_state
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> StateStore:
    return opener()


# --- checkpoints and resume links -----------------------------------------------------------


def test_a_lane_that_never_ran_is_empty(store: StateStore) -> None:
    assert store.load("contoso", MT) == Checkpoint()
    assert store.load("contoso", MT, "final") == Checkpoint()
    assert store.all() == []
    assert store.lanes("contoso", MT) == []


def test_inflight_window_and_resume_link_round_trip(store: StateStore) -> None:
    store.save_inflight("contoso", MT, W1, LINK, NOW)
    checkpoint = store.load("contoso", MT)
    assert checkpoint == Checkpoint(watermark=None, inflight=W1, next_link=LINK, updated_at=NOW)
    assert checkpoint.inflight is not None
    assert checkpoint.inflight.start.utcoffset() == timedelta(0)


def test_commit_moves_the_watermark_and_clears_the_window_and_link(store: StateStore) -> None:
    store.save_inflight("contoso", MT, W1, LINK, NOW)
    store.commit_window("contoso", MT, W1, NOW + timedelta(seconds=5))
    assert store.load("contoso", MT) == Checkpoint(
        watermark=W1.end, updated_at=NOW + timedelta(seconds=5)
    )


def test_inflight_after_a_commit_keeps_the_watermark(store: StateStore) -> None:
    store.commit_window("contoso", MT, W1, NOW)
    store.save_inflight("contoso", MT, W2, LINK, NOW)
    checkpoint = store.load("contoso", MT)
    assert (checkpoint.watermark, checkpoint.inflight, checkpoint.next_link) == (W1.end, W2, LINK)


def test_the_watermark_never_moves_back(store: StateStore) -> None:
    store.commit_window("contoso", MT, W2, NOW)
    store.commit_window("contoso", MT, W1, NOW)
    assert store.load("contoso", MT).watermark == W2.end


def test_times_come_back_in_utc(store: StateStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    window = TimeWindow(W1.start.astimezone(plus2), W1.end.astimezone(plus2))
    store.save_inflight("contoso", MT, window, LINK, NOW.astimezone(plus2))
    checkpoint = store.load("contoso", MT)
    assert checkpoint.inflight == W1
    assert checkpoint.inflight is not None
    assert checkpoint.inflight.start.utcoffset() == timedelta(0)
    assert checkpoint.updated_at == NOW
    assert checkpoint.updated_at is not None
    assert checkpoint.updated_at.utcoffset() == timedelta(0)


def test_tenants_streams_and_lanes_are_separate(store: StateStore) -> None:
    store.commit_window("contoso", MT, W1, NOW)
    store.commit_window("fabrikam", MT, W2, NOW)
    store.save_inflight("contoso", MT, W2, LINK, NOW, lane="final")
    assert store.load("contoso", MT).watermark == W1.end
    assert store.load("contoso", MT).inflight is None
    assert store.load("fabrikam", MT).watermark == W2.end
    assert store.load("contoso", MT, "final") == Checkpoint(
        inflight=W2, next_link=LINK, updated_at=NOW
    )
    assert store.load("contoso", "other_stream") == Checkpoint()


def test_ensure_watermark_sets_the_first_and_keeps_an_existing_one(store: StateStore) -> None:
    assert store.ensure_watermark("contoso", MT, "live", W1.start, NOW) == W1.start
    assert store.load("contoso", MT).watermark == W1.start
    later = NOW + timedelta(hours=1)
    assert store.ensure_watermark("contoso", MT, "live", W2.end, later) == W1.start
    assert store.load("contoso", MT) == Checkpoint(watermark=W1.start, updated_at=NOW)


def test_ensure_watermark_keeps_the_inflight_window_and_link(store: StateStore) -> None:
    store.save_inflight("contoso", MT, W2, LINK, NOW, lane="final")
    assert store.ensure_watermark("contoso", MT, "final", W1.start, NOW) == W1.start
    checkpoint = store.load("contoso", MT, "final")
    assert (checkpoint.watermark, checkpoint.inflight, checkpoint.next_link) == (
        W1.start,
        W2,
        LINK,
    )


def test_lanes_lists_one_streams_lanes_backfills_included(store: StateStore) -> None:
    backfill = "backfill:20240501T000000Z-20240501T020000Z"
    store.commit_window("contoso", MT, W2, NOW, lane="live")
    store.commit_window("contoso", MT, W1, NOW, lane=backfill)
    store.save_inflight("contoso", MT, W1, LINK, NOW, lane="final")
    store.commit_window("contoso", "other_stream", W1, NOW)
    store.commit_window("fabrikam", MT, W1, NOW)
    lanes = store.lanes("contoso", MT)
    assert [name for name, _ in lanes] == [backfill, "final", "live"]
    assert dict(lanes)[backfill].watermark == W1.end
    assert dict(lanes)["final"].next_link == LINK


def test_all_lists_every_checkpoint_in_order(store: StateStore) -> None:
    store.commit_window("fabrikam", MT, W1, NOW)
    store.commit_window("contoso", MT, W2, NOW, lane="live")
    store.commit_window("contoso", MT, W1, NOW, lane="final")
    store.commit_window("contoso", "mail_reports", W1, NOW)
    assert [key for *key, _ in store.all()] == [
        ["contoso", "mail_reports", "live"],
        ["contoso", MT, "final"],
        ["contoso", MT, "live"],
        ["fabrikam", MT, "live"],
    ]
    assert store.all()[2][3] == Checkpoint(watermark=W2.end, updated_at=NOW)


def test_state_survives_reopening(opener: Opener) -> None:
    first = opener()
    first.commit_window("contoso", MT, W1, NOW)
    first.save_inflight("contoso", MT, W2, LINK, NOW)
    first.set_status("contoso", MT, "ok", "", NOW)
    first.remember(dedup_scope("contoso", MT), [(b"k1", "delivered", FAR)])
    first.record_reset_marker("contoso", MT, "2024-05-01", NOW)
    first.close()
    second = opener()
    assert second.load("contoso", MT) == Checkpoint(W1.end, W2, LINK, NOW)
    assert second.status("contoso", MT) == ("ok", "")
    assert second.seen_statuses([b"k1"]) == {b"k1": "delivered"}
    assert second.reset_markers() == {("contoso", MT): "2024-05-01"}


# --- resets ---------------------------------------------------------------------------------


def _fill(store: StateStore) -> None:
    """Two tenants × two streams, each with a checkpoint, a health and one delivered fact."""
    for tenant in ("contoso", "fabrikam"):
        for stream in (MT, "mail_reports"):
            store.commit_window(tenant, stream, W1, NOW)
            store.set_status(tenant, stream, "ok", "", NOW)
            store.remember(dedup_scope(tenant, stream), [(_key(tenant, stream), "delivered", FAR)])


def _key(tenant: str, stream: str) -> bytes:
    return f"{tenant}/{stream}".encode()


def _kept(store: StateStore) -> set[tuple[str, str]]:
    """The (tenant, stream) pairs that still hold a checkpoint, a health and a fact."""
    pairs = [(t, s) for t in ("contoso", "fabrikam") for s in (MT, "mail_reports")]
    seen = store.seen_statuses(sorted(_key(t, s) for t, s in pairs))
    kept = set()
    for tenant, stream in pairs:
        parts = (
            store.load(tenant, stream).watermark is not None,
            store.status(tenant, stream) is not None,
            _key(tenant, stream) in seen,
        )
        assert len(set(parts)) == 1, (tenant, stream, parts)  # all three kept or all gone
        if parts[0]:
            kept.add((tenant, stream))
    return kept


def test_reset_one_stream_of_one_tenant(store: StateStore) -> None:
    _fill(store)
    assert store.reset("contoso", MT) == 1
    assert store.load("contoso", MT) == Checkpoint()
    assert _kept(store) == {
        ("contoso", "mail_reports"),
        ("fabrikam", MT),
        ("fabrikam", "mail_reports"),
    }


def test_reset_one_tenant(store: StateStore) -> None:
    _fill(store)
    assert store.reset("fabrikam") == 2
    assert _kept(store) == {("contoso", MT), ("contoso", "mail_reports")}


def test_reset_one_stream_of_every_tenant(store: StateStore) -> None:
    _fill(store)
    assert store.reset(stream="mail_reports") == 2
    assert store.load("contoso", "mail_reports") == Checkpoint()
    assert store.load("fabrikam", "mail_reports") == Checkpoint()
    assert store.load("contoso", MT).watermark == W1.end
    assert store.status("contoso", MT) == ("ok", "")


def test_reset_all(store: StateStore) -> None:
    _fill(store)
    assert store.reset() == 4
    assert store.reset() == 0
    assert _kept(store) == set()
    assert store.all() == []


@pytest.mark.parametrize("other", ["Contoso", "contosX", "contos%"])
def test_reset_one_tenant_forgets_no_fact_of_a_tenant_with_a_like_name(
    store: StateStore, other: str
) -> None:
    """Tenant names are compared exactly: no case folding, no wildcard (``_``, ``%``)."""
    tenants = ("contos_", other)
    for tenant in tenants:
        store.remember(dedup_scope(tenant, MT), [(_key(tenant, MT), "delivered", FAR)])
    store.reset("contos_")
    seen = store.seen_statuses(sorted(_key(t, MT) for t in tenants))
    assert set(seen) == {_key(other, MT)}


def test_reset_keeps_reset_markers(store: StateStore) -> None:
    _fill(store)
    store.record_reset_marker("contoso", MT, "m1", NOW)
    store.reset()
    assert store.reset_markers() == {("contoso", MT): "m1"}


# --- stream health --------------------------------------------------------------------------


def test_status_round_trip(store: StateStore) -> None:
    assert store.status("contoso", MT) is None
    store.set_status("contoso", MT, "failed", "403: consent missing", NOW)
    assert store.status("contoso", MT) == ("failed", "403: consent missing")
    store.set_status("contoso", MT, "ok", "", NOW + timedelta(minutes=1))
    assert store.status("contoso", MT) == ("ok", "")
    assert store.status("contoso", "mail_reports") is None
    assert store.status("fabrikam", MT) is None


# --- dedup keys -----------------------------------------------------------------------------


def test_remember_then_seen_statuses(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    assert store.seen_statuses([b"a", b"b"]) == {}
    store.remember(scope, [(b"a", "pending", FAR), (b"b", "delivered", FAR)])
    assert store.seen_statuses([b"a", b"b", b"c"]) == {b"a": "pending", b"b": "delivered"}
    assert store.seen_statuses([]) == {}


def test_a_facts_statuses_are_joined_once_each(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    store.remember(scope, [(b"a", "pending", FAR)])
    store.remember(scope, [(b"a", "delivered", FAR)])
    store.remember(scope, [(b"a", "pending", FAR)])  # a replay adds nothing
    assert store.seen_statuses([b"a"]) == {b"a": "pending|delivered"}


def test_remember_nothing_is_a_no_op(store: StateStore) -> None:
    store.remember(dedup_scope("contoso", MT), [])
    assert store.expire_seen(FAR) == 0


# --- a page's commit: its facts and its lane's step together ---------------------------------


def test_commit_page_remembers_the_facts_and_saves_the_next_link(store: StateStore) -> None:
    store.commit_window("contoso", MT, TimeWindow(T0 - timedelta(hours=1), T0), NOW)
    step = LaneStep("contoso", MT, "live", W1, LINK, NOW)
    store.commit_page(dedup_scope("contoso", MT), [(b"a", "pending", FAR)], step)
    assert store.seen_statuses([b"a"]) == {b"a": "pending"}
    assert store.load("contoso", MT) == Checkpoint(T0, W1, LINK, NOW)


def test_commit_page_of_a_windows_last_page_moves_the_watermark(store: StateStore) -> None:
    store.save_inflight("contoso", MT, W1, LINK, NOW)
    scope = dedup_scope("contoso", MT)
    store.commit_page(
        scope, [(b"a", "delivered", FAR)], LaneStep("contoso", MT, "live", W1, None, NOW)
    )
    assert store.load("contoso", MT) == Checkpoint(W1.end, None, None, NOW)
    assert store.seen_statuses([b"a"]) == {b"a": "delivered"}
    # The watermark never moves back, as with commit_window.
    store.commit_page(
        scope,
        [],
        LaneStep("contoso", MT, "live", TimeWindow(T0 - timedelta(hours=1), T0), None, NOW),
    )
    assert store.load("contoso", MT).watermark == W1.end


def test_commit_page_with_only_facts_or_only_a_step(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    store.commit_page(scope, [(b"a", "pending", FAR)], None)  # a lane without checkpoint
    assert store.seen_statuses([b"a"]) == {b"a": "pending"}
    assert store.all() == []
    store.commit_page(scope, [], LaneStep("contoso", MT, "final", W1, LINK, NOW))  # nothing new
    assert store.load("contoso", MT, "final").next_link == LINK
    store.commit_page(scope, [], None)  # nothing at all
    assert store.seen_statuses([b"a"]) == {b"a": "pending"}


def test_a_large_page_merges_its_facts_as_one_by_one_commits_would(store: StateStore) -> None:
    # 700 facts: more than one multi-row statement's worth, and a rest. Within the page a
    # key comes with two statuses (a status change), the same fact comes twice (a replay)
    # and a key stored earlier gets a new status; the latest expiry wins throughout.
    scope = dedup_scope("contoso", MT)
    store.remember(scope, [(b"k0005", "pending", 1000), (b"k0650", "delivered", 9000)])
    facts = [(f"k{i:04d}".encode(), "delivered", 5000) for i in range(700)]
    facts += [(b"k0007", "pending", 5000), (b"k0400", "pending", 6000)]  # status changes
    facts += [(b"k0300", "delivered", 7000), (b"k0699", "delivered", 5000)]  # replays
    store.commit_page(scope, facts, None)
    keys = [f"k{i:04d}".encode() for i in range(700)]
    found = store.seen_statuses(keys)
    assert set(found) == set(keys)
    several = {key: sorted(found[key].split("|")) for key in keys if "|" in found[key]}
    assert several == {
        b"k0005": ["delivered", "pending"],
        b"k0007": ["delivered", "pending"],
        b"k0400": ["delivered", "pending"],
    }
    # Expiries: 5,000 for most, the latest of each key's facts for the others.
    assert store.expire_seen(5000) == 0
    assert store.expire_seen(5001) == 700 - 3
    assert set(store.seen_statuses(keys)) == {b"k0300", b"k0400", b"k0650"}
    assert store.expire_seen(6001) == 1
    assert set(store.seen_statuses(keys)) == {b"k0300", b"k0650"}


def test_seen_statuses_answers_for_pages_of_any_size(store: StateStore) -> None:
    keys = [i.to_bytes(4, "big") for i in range(2500)]
    store.remember(dedup_scope("contoso", MT), [(k, "delivered", FAR) for k in keys[::2]])
    found = store.seen_statuses(keys)
    assert set(found) == set(keys[::2])


def test_expire_seen_removes_only_expired_facts(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    store.remember(scope, [(b"old", "delivered", 1000), (b"edge", "delivered", 2000)])
    store.remember(scope, [(b"new", "delivered", 3000)])
    assert store.expire_seen(1999) == 1
    assert store.seen_statuses([b"old", b"edge", b"new"]) == {
        b"edge": "delivered",
        b"new": "delivered",
    }
    assert store.expire_seen(2000) == 0  # expires_at == now is kept
    assert store.expire_seen(2001) == 1
    assert store.seen_statuses([b"edge", b"new"]) == {b"new": "delivered"}


def test_expire_seen_of_one_scope_keeps_every_other_streams_facts(store: StateStore) -> None:
    mine, other = dedup_scope("contoso", MT), dedup_scope("contoso", "rws.MailTraffic")
    store.remember(mine, [(b"mine", "delivered", 1000)])
    store.remember(other, [(b"other", "delivered", 1000)])
    store.remember(dedup_scope("fabrikam", MT), [(b"theirs", "delivered", 1000)])
    assert store.expire_seen(2000, mine) == 1
    assert store.seen_statuses([b"mine", b"other", b"theirs"]) == {
        b"other": "delivered",
        b"theirs": "delivered",
    }


def test_a_fact_keeps_its_latest_expiry(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    store.remember(scope, [(b"a", "pending", 5000)])
    store.remember(scope, [(b"a", "delivered", 1000)])  # an older window's read
    assert store.expire_seen(4000) == 0
    assert store.seen_statuses([b"a"]) == {b"a": "pending|delivered"}


def _hour_key(hour: str, n: int) -> bytes:
    """A row key as the pipeline makes them: the receive hour, then a 16-byte hash."""
    return hour.encode() + n.to_bytes(16, "big")


H1, H2 = "2024-05-01T05", "2024-05-01T06"


def test_expire_seen_with_row_keys_led_by_their_receive_hour(store: StateStore) -> None:
    """Keys as the pipeline makes them (hour + hash) and hashes alone (no receive time)."""
    scope = dedup_scope("contoso", MT)
    store.remember(
        scope, [(_hour_key(H1, 1), "delivered", 1000), (_hour_key(H1, 2), "delivered", 3000)]
    )
    store.remember(
        scope, [(_hour_key(H2, 3), "delivered", 1000), ((4).to_bytes(16, "big"), "x", 1000)]
    )
    store.remember(scope, [(_hour_key(H2, 5), "delivered", 3000)])
    assert store.expire_seen(2000) == 3
    keys = [
        _hour_key(H1, 1),
        _hour_key(H1, 2),
        _hour_key(H2, 3),
        (4).to_bytes(16, "big"),
        _hour_key(H2, 5),
    ]
    assert set(store.seen_statuses(keys)) == {_hour_key(H1, 2), _hour_key(H2, 5)}
    assert store.expire_seen(2999) == 0
    assert store.expire_seen(3000) == 0  # expires_at == now is kept
    assert store.expire_seen(3001) == 2
    assert store.seen_statuses(keys) == {}
    store.remember(scope, [(_hour_key(H1, 1), "delivered", 5000)])  # an hour known before
    assert store.expire_seen(4000) == 0
    assert store.expire_seen(5001) == 1


def test_expire_seen_of_one_scope_in_an_hour_other_scopes_share(store: StateStore) -> None:
    mine, other = dedup_scope("contoso", MT), dedup_scope("fabrikam", MT)
    store.remember(mine, [(_hour_key(H1, 1), "delivered", 1000)])
    store.remember(other, [(_hour_key(H1, 2), "delivered", 1000)])
    # SQLite reads an hour for one scope an hour after its cutoff (it forgets every
    # tenant's facts of that hour at once): a fact goes no earlier than its expiry.
    assert store.expire_seen(1000 + 3601, mine) == 1
    assert set(store.seen_statuses([_hour_key(H1, 1), _hour_key(H1, 2)])) == {_hour_key(H1, 2)}
    assert store.expire_seen(2000) == 1
    assert store.seen_statuses([_hour_key(H1, 2)]) == {}


def test_a_fact_of_an_hour_keeps_its_latest_expiry_across_expiries(store: StateStore) -> None:
    scope = dedup_scope("contoso", MT)
    store.remember(
        scope, [(_hour_key(H1, 1), "pending", 1000), (_hour_key(H1, 2), "pending", 1000)]
    )
    store.remember(scope, [(_hour_key(H1, 1), "delivered", 5000)])  # read again by a later window
    assert store.expire_seen(2000) == 1
    assert store.seen_statuses([_hour_key(H1, 1)]) == {_hour_key(H1, 1): "pending|delivered"}
    assert store.expire_seen(4000) == 0
    assert store.expire_seen(6000) == 1


def test_reset_forgets_facts_of_an_hour_for_good(store: StateStore) -> None:
    """Facts remembered again after a reset expire on their own expiry, not an older one."""
    scope = dedup_scope("contoso", MT)
    store.remember(scope, [(_hour_key(H1, 1), "delivered", 1000)])
    store.reset("contoso", MT)
    store.remember(scope, [(_hour_key(H1, 2), "delivered", 5000)])
    assert store.expire_seen(2000) == 0
    assert set(store.seen_statuses([_hour_key(H1, 1), _hour_key(H1, 2)])) == {_hour_key(H1, 2)}
    store.reset()
    assert store.expire_seen(6000) == 0


# --- reset markers --------------------------------------------------------------------------


def test_reset_markers_round_trip(store: StateStore) -> None:
    assert store.reset_markers() == {}
    store.record_reset_marker("contoso", MT, "2024-05-01", NOW)
    store.record_reset_marker("contoso", "mail_reports", "x", NOW)
    store.record_reset_marker("contoso", MT, "2024-06-01", NOW + timedelta(days=1))
    assert store.reset_markers() == {
        ("contoso", MT): "2024-06-01",
        ("contoso", "mail_reports"): "x",
    }
