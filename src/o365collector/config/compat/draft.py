"""What a foreign layout maps to before the override block and the stream choice are applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from o365collector.config.compat.catalog import DevoService
from o365collector.config.compat.values import Problems

STATE_FOLDER = "state"
CERTS_FOLDER = "certs"


def collector_root(base_dir: Path) -> Path:
    """The folder holding ``certs/``, ``config/`` and ``state/`` (the seed's layout).

    The parent of the configuration file's folder when that folder is named ``config``
    (``<product>/config/config.yaml``), else the file's own folder.
    """
    return base_dir.parent if base_dir.name == "config" else base_dir


@dataclass
class Context:
    """Where the file lives, the time ranges are checked against, and the problems found."""

    base_dir: Path
    now: datetime
    problems: Problems

    @property
    def root(self) -> Path:
        """See :func:`collector_root`."""
        return collector_root(self.base_dir)


@dataclass
class MappedSink:
    """A sink made from a foreign output; ``path`` is the output's key path."""

    name: str
    settings: dict[str, Any]
    path: str


@dataclass
class MappedService:
    """A Devo service of the tenant (or the only stream of a flat layout)."""

    service: DevoService
    path: str
    reset_marker: str | None = None
    # The stream's own options (poll_interval_secs, settle_delay_secs, initial_lookback_secs)
    # and, per option, the seed parameter it came from or the seed default it is.
    options: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)  # options the file itself gives


@dataclass
class Draft:
    """A foreign configuration mapped onto native keys, awaiting :func:`finish`.

    ``paths`` maps native key paths (``tenants[0].credential.password``) to the foreign
    parameters they came from, so that native validation errors quote the seed's names.
    """

    layout: str
    input_path: str
    tenant: dict[str, Any]
    services: list[MappedService]
    collection: dict[str, Any] = field(default_factory=dict)
    sinks: list[MappedSink] = field(default_factory=list)
    state_dir: Path | None = None
    debug: bool = False  # Devo's globals.debug
    paths: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # tenant-level: see CompatSettings


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out
