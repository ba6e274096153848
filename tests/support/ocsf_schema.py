"""A small OCSF validator over the schema source tree, for any event class.

The schema check reads the OCSF 1.8.0 source tree in ``../shared/fixtures`` (tests skip when
it is absent). ``ocsf-lib`` 0.10.4 compiles that tree, but its output takes
``network_endpoint``'s constraint from ``_entity`` (``name``/``uid``), keeps the osint
profile's ``osint`` required whatever profiles are selected, and unions class enums with the
dictionary's (``direction_id`` 4), so it would reject valid events and accept some invalid
ones. This one resolves a class as the schema server does for the checks that matter here:

- the class is chosen from the event's ``class_uid`` (category uid × 1000 + class uid; the
  Base Event is 0) among the concrete classes of ``events/``, and its ``extends`` chain is
  followed to ``base_event`` (``data_security_finding`` → ``finding`` → ``base_event``);
- ``$include``d profiles count only when the event declares them in ``metadata.profiles``
  (``security_control`` brings ``action_id``, ``disposition_id``, ``malware``…);
- every required attribute must be present, every present attribute must exist at that
  place, have its type (objects recursively, arrays as arrays, ``email_t`` / ``ip_t`` …
  checked), and an enum value must be one of the enum (a class's or object's own enum
  replaces the dictionary's); a sibling caption must match its ``_id`` except for 99;
- ``at_least_one`` / ``just_one`` constraints hold, no empty value is emitted;
- the classification is consistent: ``category_uid``, ``class_uid``, ``type_uid`` =
  ``class_uid`` × 100 + ``activity_id``, and the names when present;
- ``metadata.version`` is the tree's version.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from support.shared import FIXTURES, shared_or_skip

SCHEMA_DIR = FIXTURES / "ocsf-schema-1.8.0"

PRIMITIVES: dict[str, tuple[type, ...]] = {
    "string_t": (str,),
    "integer_t": (int,),
    "long_t": (int,),
    "float_t": (int, float),
    "boolean_t": (bool,),
}
# Checked against the computed classification, not the base event's placeholder enums.
CLASSIFICATION = {"class_uid", "category_uid", "type_uid"}
BASE_EVENT = "base_event"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


class OcsfSchema:
    """Class and object definitions of one schema tree, with the given profiles enabled."""

    def __init__(self, root: Path, profiles: frozenset[str]) -> None:
        self.root = root
        self.profiles = profiles
        dictionary = _load(root / "dictionary.json")
        self.dictionary: dict[str, Any] = dictionary["attributes"]
        self.types: dict[str, Any] = dictionary["types"]["attributes"]
        self.objects = {
            raw["name"]: raw for raw in map(_load, sorted((root / "objects").glob("*.json")))
        }
        self.categories: dict[str, Any] = _load(root / "categories.json")["attributes"]
        self.version: str = _load(root / "version.json")["version"]
        self.events: dict[str, dict[str, Any]] = {}
        self.class_files: dict[int, Path] = {}
        paths = {}
        for path in sorted((root / "events").rglob("*.json")):
            raw = _load(path)
            self.events[raw["name"]] = raw
            paths[raw["name"]] = path
        for name, raw in self.events.items():
            if name == BASE_EVENT:
                self.class_files[0] = paths[name]
            elif "uid" in raw and self.category_of(raw) in self.categories:
                category_uid = self.categories[self.category_of(raw)]["uid"]
                self.class_files[category_uid * 1000 + raw["uid"]] = paths[name]

    def _level(self, raw: dict[str, Any]) -> dict[str, Any]:
        """One definition's attributes, with ``$include``d enabled profiles."""
        attributes = dict(raw.get("attributes", {}))
        merged: dict[str, Any] = {}
        for include in attributes.pop("$include", []):
            part = _load(self.root / include)
            if part.get("meta") == "profile" and part["name"] not in self.profiles:
                continue
            merged.update(part.get("attributes", {}))
        merged.update(attributes)
        return merged

    def resolve(self, chain: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Attributes (dictionary + every level, leaf last) and constraints of a chain."""
        attributes: dict[str, dict[str, Any]] = {}
        enums: dict[str, dict[str, Any]] = {}
        constraints: dict[str, Any] = {}
        for raw in chain:
            for name, override in self._level(raw).items():
                attributes[name] = {**attributes.get(name, {}), **override}
                if "enum" in override:
                    enums[name] = {**enums.get(name, {}), **override["enum"]}
            constraints = raw.get("constraints", constraints)
        resolved = {}
        for name, override in attributes.items():
            definition = {**self.dictionary[name], **override}
            if name in enums:
                definition["enum"] = enums[name]
            resolved[name] = definition
        return resolved, constraints

    def object_chain(self, name: str) -> list[dict[str, Any]]:
        chain: list[dict[str, Any]] = []
        raw: dict[str, Any] | None = self.objects[name]
        while raw is not None:
            chain.insert(0, raw)
            raw = self.objects.get(raw["extends"]) if "extends" in raw else None
        return chain

    def category_of(self, leaf: dict[str, Any]) -> str | None:
        """A class's category: its own, or the one of the class it extends."""
        for raw in reversed(self.event_chain(leaf)):
            if "category" in raw:
                category: str = raw["category"]
                return category
        return None

    def event_chain(self, leaf: dict[str, Any]) -> list[dict[str, Any]]:
        """``leaf`` and every class it extends, base first."""
        chain = [leaf]
        while "extends" in chain[0]:
            chain.insert(0, self.events[chain[0]["extends"]])
        return chain

    def class_file(self, class_uid: object) -> Path | None:
        """The source file of the concrete class ``class_uid``, if the tree has one."""
        return self.class_files.get(class_uid) if isinstance(class_uid, int) else None

    def validate_event(self, event: dict[str, Any], class_file: Path | None = None) -> list[str]:
        """Every problem of ``event`` as an instance of its class (or of ``class_file``)."""
        if class_file is None:
            class_file = self.class_file(event.get("class_uid"))
            if class_file is None:
                return [f"class_uid={event.get('class_uid')!r} is no class of the schema"]
        leaf = _load(class_file)
        attributes, constraints = self.resolve(self.event_chain(leaf))
        errors = self._check(event, attributes, constraints, "")
        # The Base Event's category ("other") is no entry of categories.json: its own
        # category_uid enum names it (0 Uncategorized).
        placeholder = attributes["category_uid"].get("enum", {}).get("0", {})
        category = self.categories.get(
            self.category_of(leaf) or "", {"uid": 0, "caption": placeholder.get("caption")}
        )
        category_uid = category["uid"]
        class_uid = 0 if leaf["name"] == BASE_EVENT else category_uid * 1000 + leaf["uid"]
        activity_id = event.get("activity_id")
        activity = attributes["activity_id"]["enum"].get(str(activity_id), {})
        expected = {
            "category_uid": category_uid,
            "class_uid": class_uid,
            "type_uid": class_uid * 100 + (activity_id if isinstance(activity_id, int) else -1),
            "category_name": category.get("caption"),
            "class_name": leaf["caption"],
            "type_name": f"{leaf['caption']}: {activity.get('caption')}",
        }
        for key, value in expected.items():
            if key in event and event[key] != value:
                errors.append(f"{key}={event[key]!r}, expected {value!r}")
        if event.get("metadata", {}).get("version") != self.version:
            errors.append(f"metadata.version is not {self.version}")
        return errors

    def _check(
        self,
        value: dict[str, Any],
        attributes: dict[str, Any],
        constraints: dict[str, Any],
        path: str,
    ) -> list[str]:
        errors = [
            f"{path}{name}: required attribute missing"
            for name, definition in attributes.items()
            if definition.get("requirement") == "required" and name not in value
        ]
        for group in constraints.get("at_least_one", []) and [constraints["at_least_one"]]:
            if not any(name in value for name in group):
                errors.append(f"{path}: needs at least one of {group}")
        for group in constraints.get("just_one", []) and [constraints["just_one"]]:
            if sum(name in value for name in group) != 1:
                errors.append(f"{path}: needs exactly one of {group}")
        for name, item in value.items():
            definition = attributes.get(name)
            if definition is None:
                errors.append(f"{path}{name}: not an attribute here")
                continue
            errors += self._check_attribute(name, item, definition, value, f"{path}{name}")
        return errors

    def _check_attribute(
        self, name: str, item: Any, definition: dict[str, Any], parent: dict[str, Any], path: str
    ) -> list[str]:
        if item is None or item == "" or item == [] or item == {}:
            return [f"{path}: empty value emitted"]
        if definition.get("is_array"):
            if not isinstance(item, list):
                return [f"{path}: must be an array"]
            errors = []
            for index, element in enumerate(item):
                errors += self._check_value(element, definition, f"{path}[{index}]")
                errors += self._check_enum(name, element, definition, None, f"{path}[{index}]")
            return errors
        if isinstance(item, list):
            return [f"{path}: must not be an array"]
        errors = self._check_value(item, definition, path)
        return errors + self._check_enum(name, item, definition, parent, path)

    def _check_enum(
        self,
        name: str,
        item: Any,
        definition: dict[str, Any],
        parent: dict[str, Any] | None,
        path: str,
    ) -> list[str]:
        enum = definition.get("enum")
        if not enum or name in CLASSIFICATION:
            return []
        if str(item) not in enum:
            return [f"{path}={item!r} not in enum {sorted(enum, key=int)}"]
        sibling = definition.get("sibling")
        if parent is not None and sibling in parent and item != 99:
            caption = enum[str(item)]["caption"]
            if parent[sibling] != caption:
                return [f"{sibling}={parent[sibling]!r}, caption is {caption!r}"]
        return []

    def _check_value(self, item: Any, definition: dict[str, Any], path: str) -> list[str]:
        kind = definition["type"]
        if kind == "object":  # a free-form object (unmapped)
            return [] if isinstance(item, dict) else [f"{path}: must be an object"]
        if kind in self.objects:
            if not isinstance(item, dict):
                return [f"{path}: must be a {kind} object"]
            attributes, constraints = self.resolve(self.object_chain(kind))
            return self._check(item, attributes, constraints, f"{path}.")
        type_def = self.types[kind]
        primitive = type_def.get("type", kind)
        if not _is_primitive(item, primitive):
            return [f"{path}={item!r} is not {kind}"]
        errors = []
        if "regex" in type_def and not re.search(type_def["regex"], item):
            errors.append(f"{path}={item!r} does not match {kind}")
        if kind == "ip_t":
            try:
                ipaddress.ip_address(item)
            except ValueError:
                errors.append(f"{path}={item!r} is not an IP address")
        if "max_len" in type_def and len(item) > type_def["max_len"]:
            errors.append(f"{path}: longer than {type_def['max_len']}")
        if primitive in {"integer_t", "long_t"} and not -(2**63) <= item < 2**63:
            errors.append(f"{path}={item} does not fit a long")
        return errors


def _is_primitive(item: Any, primitive: str) -> bool:
    """Whether ``item`` is a JSON value of the OCSF primitive type (a bool is no number)."""
    return isinstance(item, bool) == (primitive == "boolean_t") and isinstance(
        item, PRIMITIVES[primitive]
    )


def schema_or_skip() -> Path:
    """The schema source tree, or skip the test: it is not shipped with the repo."""
    shared_or_skip(SCHEMA_DIR / "dictionary.json")
    return SCHEMA_DIR


@cache
def ocsf_schema(profiles: frozenset[str]) -> OcsfSchema:
    return OcsfSchema(schema_or_skip(), profiles)


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems of ``doc`` as an OCSF 1.8.0 event of its ``class_uid``, with its profiles."""
    schema_or_skip()
    profiles = frozenset(doc.get("metadata", {}).get("profiles", []))
    return ocsf_schema(profiles).validate_event(doc)
