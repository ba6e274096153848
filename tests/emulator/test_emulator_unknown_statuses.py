"""Issue 13.4: the emulator serves enum members Microsoft adds after a client was written.

``extra_statuses`` makes a share of rows show one of them first (for ``extra_status_secs``),
then their own history. Graph serves such a member as ``unknownFutureValue`` unless the
request sends ``Prefer: include-unknown-enum-members`` (then under its name, with
``Preference-Applied``). Without ``extra_statuses`` the dataset is exactly the default one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from emulator_support import (
    ANCHOR,
    CLIENT_ID,
    SECRET,
    TENANT_ID,
    TRACES,
    Graph,
    make_settings,
    window_filter,
)

from o365emulator import EmulatorSettings
from o365emulator.dataset import STATUSES
from o365emulator.settings import EmulatorSettingsError, settings_from_mapping
from support import FakeClock

ROWS = 600
PREFER = {"Prefer": "include-unknown-enum-members"}
# Four hours of rows, none late: at the clock (anchor + 1 h) every row is visible and
# still within the ten hours it shows its extra status.
DATA = {"rows": ROWS, "history_secs": 4 * 3600.0, "late_fraction": 0.0}
EXTRA = {
    "extra_statuses": ["recalled"],
    "extra_status_fraction": 0.5,
    "extra_status_secs": (36_000.0, 36_000.0),
}
HISTORY = window_filter(ANCHOR - timedelta(hours=4), ANCHOR)


def _rows(graph: Graph, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """Every response of the whole history, following next links verbatim."""
    sent = {**graph.bearer(), **(headers or {})}
    responses = [graph.client.get(TRACES, headers=sent, params={"$filter": HISTORY})]
    while (link := responses[-1].json().get("@odata.nextLink")) is not None:
        responses.append(graph.client.get(link, headers=sent))
    assert all(r.status_code == 200 for r in responses), responses[-1].text
    return responses


def _by_key(responses: list[httpx.Response]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["id"], r["recipientAddress"]): r for resp in responses for r in resp.json()["value"]}


def test_default_settings_serve_only_known_statuses(serve: Callable[..., Graph]) -> None:
    rows = _by_key(_rows(serve(**DATA), PREFER))
    assert len(rows) == ROWS
    assert {r["status"] for r in rows.values()} <= set(STATUSES)
    assert EmulatorSettings().extra_statuses == []


def test_extra_statuses_come_as_unknown_future_value_without_the_header(
    serve: Callable[..., Graph],
) -> None:
    responses = _rows(serve(**DATA, **EXTRA))
    statuses = [r["status"] for r in _by_key(responses).values()]
    assert statuses.count("unknownFutureValue") > ROWS * 0.3
    assert "recalled" not in statuses
    assert all("preference-applied" not in r.headers for r in responses)


@pytest.mark.parametrize(
    "prefer", ["include-unknown-enum-members", "odata.maxpagesize=50, Include-Unknown-Enum-Members"]
)
def test_the_prefer_header_reveals_the_member_name(
    serve: Callable[..., Graph], prefer: str
) -> None:
    graph = serve(**DATA, **EXTRA)
    plain = _by_key(_rows(graph))
    revealed_responses = _rows(graph, {"Prefer": prefer})
    revealed = _by_key(revealed_responses)
    assert plain.keys() == revealed.keys()
    for key, row in plain.items():
        expected = "recalled" if row["status"] == "unknownFutureValue" else row["status"]
        assert revealed[key]["status"] == expected
    assert all(
        r.headers["preference-applied"] == "include-unknown-enum-members"
        for r in revealed_responses
    )


def test_other_rows_are_those_of_the_default_dataset(serve: Callable[..., Graph]) -> None:
    default = _by_key(_rows(serve(**DATA)))
    mixed = _by_key(_rows(serve(**DATA, **EXTRA), PREFER))
    assert default.keys() == mixed.keys()
    changed = 0
    for key, row in default.items():
        if mixed[key]["status"] == "recalled":
            changed += 1
            assert {**mixed[key], "status": row["status"]} == row
        else:
            assert mixed[key] == row
    assert changed > ROWS * 0.3


def test_after_its_time_a_row_shows_its_own_status_again(
    serve: Callable[..., Graph], clock: FakeClock
) -> None:
    graph = serve(**DATA, **EXTRA)
    reference = serve(**DATA)
    assert any(r["status"] == "recalled" for r in _by_key(_rows(graph, PREFER)).values())
    clock.advance(hours=11)
    assert _by_key(_rows(graph, PREFER)) == _by_key(_rows(reference, PREFER))


def test_status_filter_finds_rows_showing_an_extra_member(serve: Callable[..., Graph]) -> None:
    graph = serve(**DATA, **EXTRA)
    response = graph.list(**{"$filter": f"{HISTORY} and status eq 'recalled'"})
    assert response.status_code == 200, response.text
    rows = response.json()["value"]
    assert rows and {r["status"] for r in rows} == {"unknownFutureValue"}


def test_extra_statuses_from_a_mapping_and_their_rules() -> None:
    tenant = {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET}
    settings = settings_from_mapping({"tenants": [tenant], **EXTRA, "extra_status_secs": [60, 120]})
    assert settings.extra_statuses == ["recalled"]
    assert settings.extra_status_secs == (60.0, 120.0)
    for bad, field in (
        ({"extra_statuses": ["Delivered"]}, "extra_statuses"),
        ({"extra_statuses": ["unknownFutureValue"]}, "extra_statuses"),
        ({"extra_statuses": [""]}, "extra_statuses"),
        ({"extra_status_fraction": 1.5}, "extra_status_fraction"),
        ({"extra_status_secs": (5.0, 1.0)}, "extra_status_secs"),
    ):
        with pytest.raises(EmulatorSettingsError, match=field):
            make_settings(rows=10, **bad)
