"""Load the YAML configuration: ``${ENV}`` expansion, ``*_file`` secrets, and clear errors."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from o365collector.config.compat import detect_layout, translate_foreign
from o365collector.config.model import Settings
from o365collector.config.sinks import sink_types
from o365collector.errors import ConfigError
from o365collector.observability.redact import SECRET_KEYS, register_secret

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PYDANTIC_PREFIX = re.compile(r"\b(?:Value error|Assertion failed), ")  # also nested


def load_settings(path: Path) -> Settings:
    """Read, expand and validate the configuration file at ``path``.

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks a rule; the message names
            each key path, what is wrong with its value, and how to fix it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = (
            f"{path}: cannot read the configuration file ({exc.strerror}); check the --config path"
        )
        raise ConfigError(msg) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_settings(data, source=str(path), base_dir=path.parent)


def parse_settings(data: Any, *, source: str = "config", base_dir: Path | None = None) -> Settings:
    """Validate an already-parsed mapping (see :func:`load_settings`)."""
    if not isinstance(data, dict):
        msg = f"{source}: the top level must be a mapping with `tenants` and `sinks` keys"
        raise ConfigError(msg)
    # Every problem is gathered before failing: unset ${VAR}s and unreadable *_file
    # secrets first, then the layout's and the model's rules, each on its own line.
    problems: list[str] = []
    spoiled: set[str] = set()  # key paths already reported: no second problem about them
    expanded = _expand(data, (), _Found(problems, spoiled), base_dir or Path.cwd())
    first = len(problems)
    foreign = translate_foreign(expanded, base_dir=base_dir or Path.cwd(), problems=problems)
    if foreign is None and detect_layout(expanded) is not None:  # not translated: stop here
        raise ConfigError(_format(source, _unique(problems, spoiled, first)))
    model, checked = (Settings, expanded) if foreign is None else (foreign.model, foreign.data)
    try:
        settings = model.model_validate(checked)
    except ValidationError as exc:
        found = _describe(exc, checked)
        problems += foreign.rename(found) if foreign else found
    if problems:
        raise ConfigError(_format(source, _unique(problems, spoiled, first)))
    _register_secrets(settings)
    return settings


def _register_secrets(node: object) -> None:
    """Register every SecretStr in the validated settings, wherever it sits, for redaction."""
    if isinstance(node, SecretStr):
        register_secret(node.get_secret_value())
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _register_secrets(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for item in node:
            _register_secrets(item)
    elif isinstance(node, dict):
        for item in node.values():
            _register_secrets(item)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's snippet of the line (it may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}; fix the YAML syntax there"


def _format(source: str, problems: list[str]) -> str:
    head = f"{source}: invalid configuration ({len(problems)} problem(s)):"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


def _key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass
class _Found:
    """Problems of the expansion, and the key paths they spoil (left unexpanded or empty)."""

    problems: list[str]
    spoiled: set[str]

    def add(self, loc: tuple[str | int, ...], problem: str, *also: str) -> None:
        path = _key_path(loc)
        self.problems.append(f"{path}: {problem}")
        self.spoiled.update((path, *also))


def _unique(problems: list[str], spoiled: set[str], first: int) -> list[str]:
    """``problems`` without repeats, nor later ones about a key an early one already spoilt.

    An unset variable (kept as ``${NAME}``) or an unreadable file (empty) spoils its key: a
    rule that then fails (required, not a GUID, ...) is the same problem, already reported
    with its fix.
    """
    out: list[str] = []
    for index, problem in enumerate(problems):
        path = problem.partition(": ")[0]
        if problem in out or (index >= first and _under(path, spoiled)):
            continue
        out.append(problem)
    return out


def _under(path: str, spoiled: set[str]) -> bool:
    return any(path == top or (path.startswith(top) and path[len(top)] in ".[") for top in spoiled)


def _expand(
    node: Any,
    loc: tuple[str | int, ...],
    found: _Found,
    base_dir: Path,
    parents: tuple[int, ...] = (),
) -> Any:
    if isinstance(node, dict | list):
        if id(node) in parents:  # a YAML alias inside its own anchor: endless nesting
            found.add(loc, "contains itself (a YAML alias inside its own anchor); write it out")
            return None
        parents = (*parents, id(node))
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_s = str(key)
            if key_s.endswith("_file") and key_s[: -len("_file")] in SECRET_KEYS:
                target = key_s[: -len("_file")]
                if target in node:
                    found.add((*loc, key_s), f"give either {target} or {key_s}, not both")
                    continue
                out[target] = _read_secret_file(value, (*loc, key_s), found, base_dir)
                continue
            out[key_s] = _expand(value, (*loc, key_s), found, base_dir, parents)
        return out
    if isinstance(node, list):
        return [_expand(v, (*loc, i), found, base_dir, parents) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _expand_env(node, loc, found)
    return node


def _expand_env(text: str, loc: tuple[str | int, ...], found: _Found, *also: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            found.add(
                loc,
                f"environment variable {name} is not set; export {name}=... before "
                "starting, or write the value in the file",
                *also,
            )
            return match.group(0)  # kept as written, so the layout and the rules still apply
        return value

    return _ENV_REF.sub(replace, text)


def _read_secret_file(value: Any, loc: tuple[str | int, ...], found: _Found, base_dir: Path) -> str:
    target = _key_path((*loc[:-1], str(loc[-1])[: -len("_file")]))  # the key it stands for
    if not isinstance(value, str) or not value:
        found.add(loc, "must be the path of a file holding the secret", target)
        return ""
    spoiled = len(found.problems)
    path = Path(_expand_env(value, loc, found, target))
    if len(found.problems) > spoiled:
        return ""  # the unset variable is the problem, not a file named after ""
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        found.add(loc, f"cannot read {path} ({exc.strerror}); fix the path", target)
        return ""


_HINTS = {
    "missing": "required; add this key",
    "extra_forbidden": "unknown key; remove it or fix its spelling",
    "union_tag_invalid": "unknown type",
}


def _describe(exc: ValidationError, data: Any) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        path = _key_path(loc)
        message = _PYDANTIC_PREFIX.sub("", str(err["msg"]))  # "Value error, required; …"
        hint = _HINTS.get(err["type"])
        if err["type"] == "union_tag_not_found":
            hint = f"add `type:` (one of {', '.join(sink_types())})"
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1], data)
            message = hint or message
            if known:
                message += f" (expected one of: {', '.join(known)})"
        elif err["type"] == "union_tag_invalid":
            # pydantic's message quotes the tag, which may be a whole mapping (a block
            # indented under `type:`) and its secrets: name the tag only when it is text.
            tag = err["input"].get("type") if isinstance(err["input"], dict) else None
            got = f"`type: {tag[:40]}`" if isinstance(tag, str) else "`type:` is not a name"
            message = f"unknown sink type ({got}); use one of: {', '.join(sink_types())}"
        elif hint:
            message = hint
        quiet = _is_secret_path(loc) or err["type"] in {
            "missing",
            "extra_forbidden",
            "union_tag_invalid",
        }
        shown = "" if quiet else _shown(err.get("input"))
        problems.append(f"{path}: {message}{shown}")
    return problems


def _is_union_tag(part: str | int) -> bool:
    return isinstance(part, str) and part in sink_types()


def _is_secret_path(loc: tuple[str | int, ...]) -> bool:
    return any(isinstance(p, str) and p in SECRET_KEYS for p in loc)


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return ""
    text = repr(value)
    return f" (got {text[:80]})"


def _known_keys(loc: tuple[str | int, ...], data: Any) -> list[str]:
    """The keys the model at ``loc`` accepts (the union member chosen by its ``type``)."""
    model: type[BaseModel] | None = Settings
    node = data
    for part in loc:
        if model is None:
            return []
        node = _child(node, part)
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = _model_of(field.annotation, _child_type(node))
    if model is not None and _child_type(node) is not None:
        model = _model_of(model, _child_type(node))
    return sorted(model.model_fields) if model is not None else []


def _child(node: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return node[part] if isinstance(node, list) and part < len(node) else None
    return node.get(part) if isinstance(node, dict) else None


def _child_type(node: Any) -> str | None:
    if isinstance(node, list) and node:
        node = node[0]
    value = node.get("type") if isinstance(node, dict) else None
    return value if isinstance(value, str) else None


def _model_of(annotation: Any, type_tag: str | None) -> type[BaseModel] | None:
    """The model inside ``annotation``; in a tagged union, the member whose ``type`` matches."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        tag_field = annotation.model_fields.get("type")
        tags = getattr(tag_field.annotation, "__args__", ()) if tag_field else ()
        if type_tag is None or not tags or type_tag in tags:
            return annotation
        return None
    first: type[BaseModel] | None = None
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg, type_tag)
        if found is not None and type_tag is not None:
            return found
        first = first or found
    return first
