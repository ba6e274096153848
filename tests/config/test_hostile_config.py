"""Hostile configuration files: any YAML is settings or one ConfigError, never a traceback.

Generated files start from a valid native file or the seed's Devo file and have random
leaves replaced by hostile values (wrong types, huge numbers, unicode, ``${VAR}``
references to unset variables or to variables that refer to each other), random keys
added, or are not mappings at all; some are YAML with self-referencing anchors. Proven:

- ``load_settings`` on each file returns settings or raises ``ConfigError`` with a
  message; nothing else escapes (the test counts the files tried);
- ``o365collector validate`` on a few such files exits 2 and prints no traceback.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from o365collector.config.loader import load_settings
from o365collector.errors import ConfigError
from support.auth import cli
from support.compat import seed_yaml

FILES = 1000
HOSTILE = settings(
    max_examples=FILES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Variables the files refer to: a cycle (A -> B -> A), a self reference, and unset ones.
ENV = {
    "HOSTILE_A": "${HOSTILE_B}",
    "HOSTILE_B": "${HOSTILE_A}",
    "HOSTILE_SELF": "x${HOSTILE_SELF}",
    "HOSTILE_NUM": "99999999999999999999999999",
}
NATIVE: dict[str, Any] = {
    "tenants": [
        {
            "name": "contoso",
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "c0ffee00-0000-0000-0000-000000000001",
            "client_secret": "${HOSTILE_SECRET}",
            "streams": ["message_trace"],
        }
    ],
    "sinks": [{"type": "jsonl", "name": "file", "path": "out/e.jsonl"}],
    "collection": {"initial_lookback_secs": 3600, "poll_interval_secs": 60},
}
DEVO: dict[str, Any] = yaml.safe_load(seed_yaml())

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(),  # inf and nan included
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=12),
    st.sampled_from(
        [
            "${HOSTILE_A}",
            "${HOSTILE_SELF}",
            "${HOSTILE_UNSET_VAR}",
            "${HOSTILE_NUM}",
            "${",
            "$${HOSTILE_A}}",
            "${HOSTILE_A}${HOSTILE_UNSET_VAR}",
            "-1",
            "1e309",
            "0x10",
            "2026-13-45",
        ]
    ),
    st.lists(st.integers() | st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=5), max_size=3),
    st.dates(),
)
keys = st.text(max_size=12) | st.sampled_from(["tenants", "sinks", "type", "streams", "inputs"])


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in ``node``, containers included."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replace(node[head], rest, value)}
    copy = list(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A YAML file: a layout with hostile leaves and keys, or something that is no layout."""
    kind = draw(st.sampled_from(["native", "devo", "other", "anchors"]))
    if kind == "other":
        return yaml.safe_dump(draw(hostile_values), allow_unicode=True)
    if kind == "anchors":  # a node that contains itself
        return draw(
            st.sampled_from(
                [
                    "tenants: &t [*t]\nsinks: []\n",
                    "a: &a {b: *a}\n",
                    "tenants:\n- &t {name: x, tenant_id: *t}\nsinks: []\n",
                    "globals: &g {debug: *g}\noutputs: {}\ninputs: {}\n",
                ]
            )
        )
    data: Any = NATIVE if kind == "native" else DEVO
    paths = list(_leaves(data))
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 4))):
        path = rng.choice(paths[1:])
        data = _replace(data, path, draw(hostile_values))
        paths = list(_leaves(data))
    if draw(st.booleans()):
        data = {**data, draw(keys): draw(hostile_values)}
    return yaml.safe_dump(data, allow_unicode=True)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOSTILE_SECRET", "s3cr3t-hostile-config")
    monkeypatch.delenv("HOSTILE_UNSET_VAR", raising=False)
    return {**ENV, "HOSTILE_SECRET": "s3cr3t-hostile-config"}


def test_any_yaml_file_is_settings_or_a_config_error(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    tried: list[str] = []
    path = tmp_path / "config.yaml"

    @HOSTILE
    @given(text=documents())
    @example(text="tenants: &t [*t]\nsinks: []\n")
    @example(text="collection: {poll_interval_secs: 1e400}\n")
    @example(text=yaml.safe_dump({**NATIVE, "collection": {"initial_lookback_secs": 10**400}}))
    def one(text: str) -> None:
        path.write_text(text, encoding="utf-8")
        tried.append(text)
        try:
            load_settings(path)
        except ConfigError as exc:
            assert str(exc).strip()

    one()
    with capsys.disabled():
        print(f"\nhostile config: {len(tried)} files tried")
    assert len(tried) >= FILES // 2


@pytest.mark.parametrize(
    "text",
    [
        "tenants: &t [*t]\nsinks: []\n",
        "- just\n- a list\n",
        yaml.safe_dump({**NATIVE, "collection": {"initial_lookback_secs": 10**400}}),
        yaml.safe_dump({**NATIVE, "tenants": [{**NATIVE["tenants"][0], "name": "${HOSTILE_A}"}]}),
        yaml.safe_dump({**DEVO, "globals": "${HOSTILE_UNSET_VAR}"}, allow_unicode=True),
    ],
    ids=["self-anchor", "list-root", "huge-int", "var-cycle", "devo-unset-var"],
)
def test_validate_exits_2_without_a_traceback(
    text: str, tmp_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("validate", "--config", str(path), env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert str(path) in output or "config" in output
