"""The reports' Action table: every known action, case, unknown and absent values, and the
OCSF 1.8.0 captions it uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from o365collector.normalize.status import (
    ACTION_TABLE,
    OCSF_ACTION,
    OCSF_DISPOSITION,
    ActionMapping,
    EcsActionType,
    action_of,
)

OCSF_DIR = Path(__file__).parents[2] / ".." / "shared" / "fixtures" / "ocsf-schema-1.8.0"

# action → (ECS event.type with info, blocked, disposition_id, action_id). Written out here,
# not derived from the module, so a changed table fails.
EXPECTED: dict[str, tuple[EcsActionType | None, bool, int, int]] = {
    "Allow": ("allowed", False, 1, 1),
    "Allowed": ("allowed", False, 1, 1),
    "ClickedEvenBlocked": ("allowed", False, 1, 1),  # the user clicked through the warning
    "ClickedDuringScan": ("allowed", False, 1, 1),
    "Block": ("denied", True, 2, 2),
    "Blocked": ("denied", True, 2, 2),
    "BlockAccess": ("denied", True, 2, 2),
    "Quarantine": ("denied", True, 3, 2),
    "DeleteMessage": ("denied", True, 5, 2),
    "Reject": ("denied", True, 25, 2),
    "RejectMessage": ("denied", True, 25, 2),
    "MoveToJmf": (None, False, 18, 4),
    "DeliverToJunk": (None, False, 18, 4),
    "Junk": (None, False, 18, 4),
    "PrependSubject": (None, False, 18, 4),
    "SetSpamConfidenceLevel": (None, False, 18, 4),
    "NotifyUser": (None, False, 19, 3),
    "GenerateIncidentReport": (None, False, 17, 3),
    "None": (None, False, 16, 3),
}
# Every Action value the emulator's reports use (reporting_rows.py, reporting_aggregates.py).
EMULATOR_ACTIONS = (
    "MoveToJmf",
    "DeleteMessage",
    "Quarantine",
    "BlockAccess",
    "NotifyUser",
    "GenerateIncidentReport",
    "Allowed",
    "Blocked",
    "ClickedEvenBlocked",
    "PrependSubject",
    "RejectMessage",
)


def test_the_table_holds_exactly_the_documented_actions() -> None:
    assert set(ACTION_TABLE) == {name.lower() for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
@pytest.mark.parametrize("spell", [str, str.lower, str.upper], ids=["as-is", "lower", "upper"])
def test_every_known_action_in_any_case(name: str, spell: Callable[[str], str]) -> None:
    raw = spell(name)
    ecs_type, blocked, disposition_id, action_id = EXPECTED[name]
    mapping = action_of(raw)
    assert mapping == ActionMapping(
        raw=raw,
        known=True,
        name=name,
        ecs_type=ecs_type,
        ecs_action=name.lower(),
        blocked=blocked,
        ocsf_disposition_id=disposition_id,
        ocsf_disposition=OCSF_DISPOSITION[disposition_id],
        ocsf_action_id=action_id,
        ocsf_action=OCSF_ACTION[action_id],
    )


def test_every_emulator_action_is_known() -> None:
    assert all(action_of(action).known for action in EMULATOR_ACTIONS)


def test_an_unknown_action_is_kept_as_other() -> None:
    mapping = action_of("Vaporize")
    assert mapping.raw == mapping.name == mapping.ocsf_disposition == mapping.ocsf_action
    assert mapping.raw == "Vaporize"
    assert not mapping.known and not mapping.blocked
    assert (mapping.ecs_type, mapping.ecs_action) == (None, "vaporize")
    assert (mapping.ocsf_disposition_id, mapping.ocsf_action_id) == (99, 99)


@pytest.mark.parametrize("raw", [None, ""])
def test_an_absent_action_is_unknown(raw: str | None) -> None:
    mapping = action_of(raw)
    assert mapping.raw == raw
    assert not mapping.known and mapping.name is None and mapping.ecs_action is None
    assert (mapping.ecs_type, mapping.blocked) == (None, False)
    assert (mapping.ocsf_disposition_id, mapping.ocsf_disposition) == (0, "Unknown")
    assert (mapping.ocsf_action_id, mapping.ocsf_action) == (0, "Unknown")


def test_blocked_goes_with_denied_and_denied_with_ocsf_denied() -> None:
    for mapping in ACTION_TABLE.values():
        assert mapping.blocked == (mapping.ecs_type == "denied") == (mapping.ocsf_action_id == 2)
        if mapping.ecs_type == "allowed":
            assert (mapping.ocsf_disposition_id, mapping.ocsf_action_id) == (1, 1)


def test_lookups_are_cached() -> None:
    assert action_of("MoveToJmf") is action_of("MoveToJmf")
    assert action_of("something new") is action_of("something new")


def test_the_captions_are_ocsf_1_8_0s() -> None:
    dictionary = OCSF_DIR / "dictionary.json"
    profile = OCSF_DIR / "profiles" / "security_control.json"
    if not dictionary.is_file() or not profile.is_file():
        pytest.skip(f"OCSF 1.8.0 schema not found at {OCSF_DIR.resolve()}")
    attributes = orjson.loads(dictionary.read_bytes())["attributes"]
    dispositions = attributes["disposition_id"]["enum"]
    actions = orjson.loads(profile.read_bytes())["attributes"]["action_id"]["enum"]
    assert {int(k): v["caption"] for k, v in dispositions.items()} == OCSF_DISPOSITION
    assert {int(k): v["caption"] for k, v in actions.items()} == OCSF_ACTION
