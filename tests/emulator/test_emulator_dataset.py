"""Generated dataset: determinism, exact counts, the delay model, and 1,000,000 rows."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from emulator_support import ANCHOR, TENANT_ID, make_settings, ticks_of

from o365emulator import Emulator
from o365emulator.filters import TraceFilter
from o365emulator.ticks import to_ticks
from o365emulator.traces import compile_filter, select_page


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = Emulator(make_settings(2000))
    b = Emulator(make_settings(2000))
    c = Emulator(make_settings(2000, seed=43))
    truth_a = a.ground_truth(TENANT_ID)
    assert truth_a == b.ground_truth(TENANT_ID)
    data_a, data_b = a.dataset(TENANT_ID), b.dataset(TENANT_ID)
    assert [data_a.render(i, 2) for i in range(0, 2000, 97)] == [
        data_b.render(i, 2) for i in range(0, 2000, 97)
    ]
    ids_c = {r["id"] for r in c.ground_truth(TENANT_ID)}
    assert not ids_c & {r["id"] for r in truth_a}


@pytest.mark.parametrize("rows", [0, 1, 7, 1234])
def test_exact_row_count(rows: int) -> None:
    assert len(Emulator(make_settings(rows)).ground_truth(TENANT_ID)) == rows


def test_delay_model_and_fractions() -> None:
    settings = make_settings(20_000)
    truth = Emulator(settings).ground_truth(TENANT_ID)
    start = ANCHOR - timedelta(seconds=settings.history_secs)
    assert all(start <= when(r["receivedDateTime"]) <= ANCHOR for r in truth)
    late = 0
    for r in truth:
        delay = (when(r["history"][0]["visible_at"]) - when(r["receivedDateTime"])).total_seconds()
        if delay >= 300 - 1e-6:
            late += 1
            assert delay <= 86400 + 1e-6
        else:
            assert 5 - 1e-6 <= delay <= 60 + 1e-6
    assert 0.04 < late / len(truth) < 0.06
    changed = sum(1 for r in truth if len(r["history"]) > 1)
    assert 0.27 < changed / len(truth) < 0.33
    per_message = Counter(r["id"] for r in truth)
    multi = sum(1 for n in per_message.values() if n > 1)
    assert 0.17 < multi / len(per_message) < 0.23
    assert max(per_message.values()) <= 5
    assert (
        sorted(
            truth, key=lambda r: (ticks_of(r["receivedDateTime"]), r["id"], r["recipientAddress"])
        )
        == truth
    )


def test_quiet_model_has_no_late_rows_or_changes() -> None:
    settings = make_settings(
        3000, late_fraction=0.0, status_change_fraction=0.0, multi_recipient_fraction=0.0
    )
    truth = Emulator(settings).ground_truth(TENANT_ID)
    assert all(len(r["history"]) == 1 for r in truth)
    assert len({r["id"] for r in truth}) == len(truth)
    assert all(r["history"][0]["status"] not in ("gettingStatus", "pending") for r in truth)


@pytest.mark.timeout(120)
def test_one_million_rows_are_generated_and_served_from_memory() -> None:
    emulator = Emulator(make_settings(1_000_000))
    data = emulator.dataset(TENANT_ID)
    assert len(data) == 1_000_000
    assert data.ticks[0] >= to_ticks(ANCHOR - timedelta(days=3))
    assert data.ticks[-1] <= to_ticks(ANCHOR)
    now = to_ticks(ANCHOR + timedelta(hours=1))
    window = (to_ticks(ANCHOR - timedelta(days=3)), now)
    page, more = select_page(data, compile_filter(data, TraceFilter()), window, None, 5000, now)
    assert len(page) == 5000 and more
    rendered = [data.render(i, status) for i, status in page]
    assert rendered[0]["receivedDateTime"] >= rendered[-1]["receivedDateTime"]
