"""Backoff: Retry-After obeyed, full jitter bounded and capped, bounded in total time."""

from __future__ import annotations

import random

import pytest

from o365collector.http.backoff import Backoff, parse_retry_after


class _MaxRandom(random.Random):
    """Always draws the top of the range, so the jitter bound itself is observable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_retry_after_is_obeyed_above_half_the_backoff_bound() -> None:
    backoff = Backoff(initial_interval_secs=1, max_interval_secs=2, rng=random.Random(1))
    assert backoff.next_delay(37.5) == 37.5
    assert backoff.next_delay(0) == 1.0  # half of this attempt's bound, 2
    assert backoff.attempts == 2
    assert backoff.waited_secs == 38.5


def test_negative_retry_after_is_the_floor() -> None:
    assert Backoff().next_delay(-5) == 0.5


def test_retry_after_zero_on_every_attempt_still_gives_up() -> None:
    """A server answering ``Retry-After: 0`` forever is not asked again forever."""
    backoff = Backoff(max_elapsed_secs=900)
    delays = []
    for _ in range(1000):
        if (delay := backoff.next_delay(0)) is None:
            break
        delays.append(delay)
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert len(delays) < 40, "never gave up"  # 0.5 s doubling to 30 s, 900 s in all
    assert backoff.waited_secs <= 900


def test_jitter_bound_grows_and_caps() -> None:
    backoff = Backoff(
        initial_interval_secs=1,
        multiplier=2,
        max_interval_secs=10,
        max_elapsed_secs=1e9,
        rng=_MaxRandom(),
    )
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [1, 2, 4, 8, 10, 10, 10]


def test_seeded_jitter_stays_within_bound() -> None:
    backoff = Backoff(
        initial_interval_secs=0.5,
        multiplier=3,
        max_interval_secs=20,
        max_elapsed_secs=1e9,
        rng=random.Random(1234),
    )
    delays = []
    for attempt in range(40):
        bound = min(20, 0.5 * 3**attempt)
        delay = backoff.next_delay()
        assert delay is not None
        assert 0 <= delay <= bound
        delays.append(delay)
    assert len(set(delays)) > 30  # jittered, not constant
    assert max(delays) > 10  # the cap is reached, not just the first intervals
    # Same seed, same delays: the policy is deterministic given its rng.
    again = Backoff(
        initial_interval_secs=0.5,
        multiplier=3,
        max_interval_secs=20,
        max_elapsed_secs=1e9,
        rng=random.Random(1234),
    )
    assert [again.next_delay() for _ in range(40)] == delays


def test_gives_up_past_max_elapsed() -> None:
    backoff = Backoff(max_elapsed_secs=25, rng=random.Random(0))
    assert backoff.next_delay(10) == 10
    assert backoff.next_delay(10) == 10
    assert backoff.next_delay(10) is None
    assert backoff.attempts == 2
    assert backoff.waited_secs == 20
    # Exactly reaching the limit is still allowed.
    assert backoff.next_delay(5) == 5
    assert backoff.next_delay(0.001) is None


def test_gives_up_with_jitter_too() -> None:
    backoff = Backoff(
        initial_interval_secs=1,
        max_interval_secs=4,
        max_elapsed_secs=30,
        rng=random.Random(7),
    )
    total = 0.0
    for _ in range(1000):
        delay = backoff.next_delay()
        if delay is None:
            break
        total += delay
    else:
        pytest.fail("never gave up")
    assert total <= 30
    assert backoff.waited_secs == pytest.approx(total)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (None, None),
        ("", None),
        ("-1", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected
