"""The one status table: every known status in both spellings, unknown values, case."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from o365collector.normalize.status import (
    OCSF_ACTION,
    OCSF_DISPOSITION,
    OCSF_STATUS,
    STATUS_TABLE,
    StatusMapping,
    status_of,
)

OCSF_DIR = Path(__file__).parents[2] / ".." / "shared" / "fixtures" / "ocsf-schema-1.8.0"

# (RWS spelling, Graph spelling) → outcome, action, status_id, OCSF status, disposition_id,
# action_id: normalization.md §2.3 (Elastic 1.21 outcome) and §4.3 (proposal). Written out
# here, not derived from the module, so a changed table fails.
EXPECTED: dict[tuple[str, str], tuple[str, str, int, str, int, int]] = {
    ("Delivered", "delivered"): ("success", "delivered", 1, "Success", 1, 1),
    ("Failed", "failed"): ("failure", "failed", 2, "Failure", 25, 2),
    ("Quarantined", "quarantined"): ("unknown", "quarantined", 99, "Quarantined", 3, 2),
    ("FilteredAsSpam", "filteredAsSpam"): (
        "unknown",
        "filteredasspam",
        99,
        "FilteredAsSpam",
        18,
        4,
    ),
    ("Expanded", "expanded"): ("unknown", "expanded", 99, "Expanded", 16, 1),
    ("Resolved", "resolved"): ("unknown", "resolved", 99, "Resolved", 16, 1),
    ("Recalled", "recalled"): ("unknown", "recalled", 99, "Recalled", 5, 0),
    ("Pending", "pending"): ("unknown", "pending", 0, "Unknown", 14, 0),
    ("GettingStatus", "gettingStatus"): ("unknown", "gettingstatus", 0, "Unknown", 0, 0),
    ("None", "none"): ("unknown", "none", 0, "Unknown", 0, 0),
    ("UnknownFutureValue", "unknownFutureValue"): (
        "unknown",
        "unknownfuturevalue",
        0,
        "Unknown",
        0,
        0,
    ),
}
SPELLINGS = [(spelling, row) for pair, row in EXPECTED.items() for spelling in pair]


def _summary(mapping: StatusMapping) -> tuple[str, str | None, int, str, int, int]:
    return (
        mapping.ecs_outcome,
        mapping.ecs_action,
        mapping.ocsf_status_id,
        mapping.ocsf_status,
        mapping.ocsf_disposition_id,
        mapping.ocsf_action_id,
    )


@pytest.mark.parametrize(("raw", "expected"), SPELLINGS, ids=[raw for raw, _ in SPELLINGS])
def test_every_known_status_maps_in_both_spellings(raw: str, expected: tuple) -> None:
    mapping = status_of(raw)
    assert mapping.known
    assert mapping.raw == raw
    assert _summary(mapping) == expected
    assert mapping.ocsf_disposition == OCSF_DISPOSITION[mapping.ocsf_disposition_id]
    assert mapping.ocsf_action == OCSF_ACTION[mapping.ocsf_action_id]


def test_the_table_holds_exactly_the_documented_statuses() -> None:
    assert set(STATUS_TABLE) == {graph.lower() for _, graph in EXPECTED}


@pytest.mark.parametrize("raw", ["DELIVERED", "dElIvErEd", "FILTEREDASSPAM", "gettingstatus"])
def test_matching_is_case_insensitive_and_keeps_the_raw_spelling(raw: str) -> None:
    mapping = status_of(raw)
    canonical = STATUS_TABLE[raw.lower()]
    assert mapping.raw == raw
    assert _summary(mapping) == _summary(canonical)
    assert mapping.name == canonical.name


@pytest.mark.parametrize("raw", ["Bounced", "someNewValue", "Deferred"])
def test_an_unknown_status_maps_to_unknown_and_keeps_the_raw_value(raw: str) -> None:
    mapping = status_of(raw)
    assert not mapping.known
    assert mapping.raw == raw
    assert mapping.name == raw
    assert mapping.ecs_outcome == "unknown"
    assert mapping.ecs_action == raw.lower()
    assert (mapping.ocsf_status_id, mapping.ocsf_status) == (99, raw)
    assert (mapping.ocsf_disposition_id, mapping.ocsf_disposition) == (0, "Unknown")
    assert (mapping.ocsf_action_id, mapping.ocsf_action) == (0, "Unknown")


@pytest.mark.parametrize("raw", [None, ""])
def test_a_missing_status_maps_to_unknown_without_an_action(raw: str | None) -> None:
    mapping = status_of(raw)
    assert not mapping.known
    assert mapping.raw == raw
    assert mapping.ecs_outcome == "unknown"
    assert mapping.ecs_action is None
    assert (mapping.ocsf_status_id, mapping.ocsf_disposition_id, mapping.ocsf_action_id) == (
        0,
        0,
        0,
    )


def test_ocsf_status_agrees_with_the_ecs_outcome() -> None:
    by_outcome = {"success": {1}, "failure": {2}, "unknown": {0, 99}}
    for mapping in STATUS_TABLE.values():
        assert mapping.ocsf_status_id in by_outcome[mapping.ecs_outcome], mapping.name


def test_mappings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        status_of("Delivered").ecs_outcome = "failure"  # type: ignore[misc]


def test_ocsf_captions_are_the_1_8_0_schema_captions() -> None:
    if not OCSF_DIR.is_dir():
        pytest.skip(f"OCSF 1.8.0 schema fixture not found at {OCSF_DIR.resolve()}")
    attributes = orjson.loads((OCSF_DIR / "dictionary.json").read_bytes())["attributes"]
    profile = orjson.loads((OCSF_DIR / "profiles" / "security_control.json").read_bytes())
    enums = {
        "status_id": (OCSF_STATUS, attributes["status_id"]["enum"]),
        "disposition_id": (OCSF_DISPOSITION, attributes["disposition_id"]["enum"]),
        "action_id": (OCSF_ACTION, profile["attributes"]["action_id"]["enum"]),
    }
    for name, (ours, schema) in enums.items():
        for number, caption in ours.items():
            assert schema[str(number)]["caption"] == caption, (name, number)
