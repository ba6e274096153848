"""The ECS 9.4 field checker: every field of a document is ECS with the right type, or sits
under the product namespaces (``o365collector.*``, ``o365.*``).

``load_ecs()`` reads ``../shared/fixtures/ecs-9.4.0/ecs_flat.yml`` (skipping the test when
the shared fixtures are not checked out); ``ecs_problems(doc, ecs)`` lists what is wrong
with one document: a field ECS does not define, a value of the wrong type, a scalar where
ECS normalises to an array, or a value outside the field's ``allowed_values``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

import yaml

from o365collector.dates import parse_date
from support.shared import FIXTURES, shared_or_skip

ECS_FLAT = FIXTURES / "ecs-9.4.0" / "ecs_flat.yml"
PRODUCT_PREFIXES = ("o365collector.", "o365.")
STRING_TYPES = {"keyword", "wildcard", "constant_keyword", "match_only_text", "text", "flattened"}
INT_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}

EcsFields = dict[str, dict[str, Any]]


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def type_ok(ecs_type: str, value: Any) -> bool:
    """Whether ``value`` (one item of a field) is a JSON value of the ECS type."""
    if ecs_type in STRING_TYPES:
        return isinstance(value, str)
    if ecs_type in INT_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if ecs_type in {"float", "double", "scaled_float", "half_float"}:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ecs_type == "ip":
        try:
            return isinstance(value, str) and ipaddress.ip_address(value) is not None
        except ValueError:
            return False
    if ecs_type == "date":
        return isinstance(value, str) and value.endswith("Z") and parse_date(value) is not None
    if ecs_type == "boolean":
        return isinstance(value, bool)
    return False


@functools.cache
def _read_ecs() -> EcsFields | None:
    if not ECS_FLAT.is_file():
        return None
    fields: EcsFields = yaml.safe_load(ECS_FLAT.read_text())
    return fields


def load_ecs() -> EcsFields:
    """The ECS 9.4.0 flat field list (read once); skips the test when it is absent."""
    shared_or_skip(ECS_FLAT)
    fields = _read_ecs()
    assert fields is not None
    return fields


def ecs_problems(doc: dict[str, Any], ecs: EcsFields, checked: set[str] | None = None) -> list[str]:
    """What is wrong with ``doc``'s fields (empty: every field is fine).

    Fields under :data:`PRODUCT_PREFIXES` are not checked. ``checked``, when given,
    collects the ECS fields seen.
    """
    problems: list[str] = []
    for key, value in flatten(doc).items():
        if key.startswith(PRODUCT_PREFIXES):
            continue
        field = ecs.get(key)
        if field is None:
            problems.append(f"{key} is not an ECS 9.4 field")
            continue
        if "array" in field.get("normalize", []) and not isinstance(value, list):
            problems.append(f"{key} must be an array")
        values: Iterable[Any] = value if isinstance(value, list) else [value]
        allowed = {entry["name"] for entry in field.get("allowed_values", [])}
        for item in values:
            if not type_ok(field["type"], item):
                problems.append(f"{key}={item!r} is not {field['type']}")
            elif allowed and item not in allowed:
                problems.append(f"{key}={item!r} not in {sorted(allowed)}")
        if checked is not None:
            checked.add(key)
    return problems
