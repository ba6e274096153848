"""Start times of foreign configurations: ISO-8601 via the standard library, seeds' forms too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from o365collector.config.compat.values import Problems, Reader


def _read(value: object) -> tuple[datetime | None, list[str]]:
    problems = Problems()
    moment = Reader({"start_time": value}, "inputs.x", problems).timestamp("start_time")
    return moment, problems.items


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-07T15:35:24.133642", datetime(2024, 5, 7, 15, 35, 24, 133642, tzinfo=UTC)),
        ("2024-05-07T15:35:24", datetime(2024, 5, 7, 15, 35, 24, tzinfo=UTC)),
        ("2024-05-07T15:35:24Z", datetime(2024, 5, 7, 15, 35, 24, tzinfo=UTC)),
        ("2024-05-07T15:35:24.1234567Z", datetime(2024, 5, 7, 15, 35, 24, 123456, tzinfo=UTC)),
        (
            "2024-05-07T15:35:24+02:00",
            datetime(2024, 5, 7, 15, 35, 24, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2024-5-7T9:05:04.5", datetime(2024, 5, 7, 9, 5, 4, 500000, tzinfo=UTC)),  # strptime's
        ("2024-05-07t15:35:24", datetime(2024, 5, 7, 15, 35, 24, tzinfo=UTC)),
        (" 2024-05-07T15:35:24 ", datetime(2024, 5, 7, 15, 35, 24, tzinfo=UTC)),
    ],
)
def test_start_times_the_seeds_accept_are_read(text: str, expected: datetime) -> None:
    moment, problems = _read(text)
    assert problems == []
    assert moment == expected and moment.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["yesterday", "2024-05-07", "2024-05-07 15:35:24", "15:35"])
def test_other_values_name_the_parameter_the_value_and_the_form(text: str) -> None:
    moment, problems = _read(text)
    assert moment is None
    assert problems == [
        f"inputs.x.start_time: must be an RFC 3339 time like 2024-05-07T15:35:24.133642 "
        f"(got {text!r})"
    ]
