"""Issue 2 acceptance: emulator and collector as real processes over loopback HTTP."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from harness import (
    EmulatorProcess,
    collector_config,
    count_output_lines,
    emulator_settings,
    key,
    kill,
    now,
    output_lines,
    parse_time,
    run_collector,
    start_collector,
    statuses_visible_between,
    visible_by,
    watermark,
)

pytestmark = pytest.mark.integration

ROWS = 50_000


@pytest.fixture(scope="module")
def big_emulator(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("emulator")
    emulator = EmulatorProcess(
        workdir,
        emulator_settings(
            ROWS,
            multi_recipient_fraction=0.3,
            late_fraction=0.05,
            late_delay_secs=[120.0, 86400.0],
            status_change_fraction=0.3,
            tenant={"quota_requests": 10_000},
        ),
    ).start()
    yield emulator
    emulator.stop()


def _check_exactly_once(workdir: Path, emulator: EmulatorProcess, started, finished, config):
    truth = emulator.ground_truth()
    assert len(truth) >= ROWS
    assert any(len(row["history"]) > 1 for row in truth), "no status changes in the data"
    mark = watermark(config)
    delivered = list(output_lines(workdir))
    facts = Counter((*key(e["record"]), e["record"]["status"].lower()) for e in delivered)
    repeated = [k for k, n in facts.items() if n > 1]
    assert not repeated, f"{len(repeated)} facts delivered more than once, e.g. {repeated[:3]}"
    keys = Counter(key(e["record"]) for e in delivered)
    truth_by_key = {(r["id"], r["recipientAddress"].lower()): r for r in truth}
    in_scope = {
        k
        for k, r in truth_by_key.items()
        if visible_by(r, started) and parse_time(r["receivedDateTime"]) < mark
    }
    missing = in_scope - set(keys)
    assert not missing, f"{len(missing)} visible rows missing, e.g. {sorted(missing)[:3]}"
    unknown = set(keys) - set(truth_by_key)
    assert not unknown, f"rows not in the ground truth: {sorted(unknown)[:3]}"
    for event in delivered:
        row = truth_by_key[key(event["record"])]
        status = event["record"]["status"].lower()
        assert status in statuses_visible_between(row, started, finished), (row, status)
        assert event["tenant"] == "itest"
        assert event["stream"] == "message_trace"
        assert len(event["event_id"]) == 32
    multi = Counter(e["record"]["id"] for e in delivered)
    assert max(multi.values()) >= 2, "multi-recipient messages were not delivered as rows"
    return delivered


def test_run_once_delivers_every_visible_row_exactly_once(big_emulator, tmp_path):
    config = collector_config(tmp_path, big_emulator.url, page_size=5000)
    started = now()
    first = run_collector(config, "--once")
    finished = now()
    assert first.returncode == 0, first.stderr[-3000:]
    delivered = _check_exactly_once(tmp_path, big_emulator, started, finished, config)
    assert len(delivered) >= ROWS * 0.9

    second = run_collector(config, "--once")
    assert second.returncode == 0, second.stderr[-3000:]
    ids = Counter(e["event_id"] for e in output_lines(tmp_path))
    assert all(n == 1 for n in ids.values()), "the second run delivered an event again"


def test_sigkill_mid_run_loses_nothing_and_repeats_keep_their_event_id(big_emulator, tmp_path):
    # Small pages make the run long enough to be killed several times in the middle.
    config = collector_config(tmp_path, big_emulator.url, page_size=500)
    started = now()
    kills = 0
    for threshold in (3_000, 15_000, 30_000):
        proc = start_collector(config, "--once")
        deadline = time.monotonic() + 300
        while count_output_lines(tmp_path) < threshold and proc.poll() is None:
            assert time.monotonic() < deadline, "collector made no progress"
            time.sleep(0.05)
        if proc.poll() is None:
            kill(proc)
            kills += 1
    assert kills >= 2, "the run finished before it could be killed"
    final = run_collector(config, "--once")
    finished = now()
    assert final.returncode == 0, final.stderr[-3000:]

    truth = {(r["id"], r["recipientAddress"].lower()): r for r in big_emulator.ground_truth()}
    mark = watermark(config)
    delivered = list(output_lines(tmp_path))
    keys = {key(e["record"]) for e in delivered}
    in_scope = {
        k
        for k, r in truth.items()
        if visible_by(r, started) and parse_time(r["receivedDateTime"]) < mark
    }
    assert not in_scope - keys, f"{len(in_scope - keys)} rows lost across kills"
    ids_by_fact: dict[tuple[str, str, str], set[str]] = {}
    for event in delivered:
        fact = (*key(event["record"]), event["record"]["status"].lower())
        ids_by_fact.setdefault(fact, set()).add(event["event_id"])
        assert event["record"]["status"].lower() in statuses_visible_between(
            truth[key(event["record"])], started, finished
        )
    assert all(len(ids) == 1 for ids in ids_by_fact.values()), "a repeat got a new event id"
