"""Issue 13.4: a status Microsoft adds is delivered as it comes, and its later status too.

The emulator (in this process, on a clock the test moves, serving real HTTP on loopback)
gives half of its rows the Graph-only member ``recalled`` for two hours after they appear;
the collector runs as a real process. A first ``run --once`` must deliver every row, the
new member exactly as Graph spelled it; once the rows show their own status again, a second
``run --once`` (its re-sweep bands) must deliver that status as a new fact of the same row.
The collector has no notion of a "final" status: every row is re-read by the bands within
the horizon, whatever its status, so nothing holds a row back or treats it as settled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from harness import (
    TENANT_ID,
    collector_config,
    emulator_settings,
    iso,
    key,
    output_lines,
    run_collector,
)

from o365collector.sources.graph.statuses import KNOWN_STATUSES
from o365emulator import Emulator
from o365emulator.settings import settings_from_mapping
from support import FakeClock

pytestmark = pytest.mark.integration

ROWS = 400
# Graph spells a member it added as ``unknownFutureValue`` unless the request sends
# ``Prefer: include-unknown-enum-members``; the collector sends it, so users see the name.


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[Emulator]:
    settings = emulator_settings(
        ROWS,
        history_secs=3600,
        anchor=iso(clock.now() - timedelta(minutes=5)),
        late_fraction=0.0,
        status_change_fraction=0.0,
        extra_statuses=["recalled"],
        extra_status_fraction=0.5,
        extra_status_secs=[7200.0, 7200.0],
        tenant={"quota_requests": 10_000},
    )
    emulator = Emulator(settings_from_mapping(settings), clock=clock.now)
    emulator.start()
    yield emulator
    emulator.stop()


def test_unknown_status_is_delivered_untouched_then_its_known_status_as_a_new_fact(
    emulator: Emulator, clock: FakeClock, tmp_path
) -> None:
    config = collector_config(tmp_path, emulator.base_url)
    first = run_collector(config, "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    early = list(output_lines(tmp_path))
    truth = {key(row) for row in emulator.ground_truth(TENANT_ID)}
    assert {key(e["record"]) for e in early} == truth, "a row was dropped"
    unknown = [e for e in early if e["record"]["status"].lower() not in KNOWN_STATUSES]
    assert len(unknown) > ROWS * 0.3
    assert {e["record"]["status"] for e in unknown} == {"recalled"}  # as Graph spelled it

    clock.advance(hours=3)  # every row shows its own status again
    second = run_collector(config, "--once")
    assert second.returncode == 0, second.stderr[-3000:]

    facts: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for event in output_lines(tmp_path):
        facts[key(event["record"])].append(event)
    for event in unknown:
        row = facts[key(event["record"])]
        assert len(row) == 2, row
        later = next(e for e in row if e["event_id"] != event["event_id"])
        assert later["record"]["status"].lower() in KNOWN_STATUSES
        assert {**later["record"], "status": event["record"]["status"]} == event["record"]
    known_first = [e for e in early if e["record"]["status"].lower() in KNOWN_STATUSES]
    assert all(len(facts[key(e["record"])]) == 1 for e in known_first), "a fact repeated"
