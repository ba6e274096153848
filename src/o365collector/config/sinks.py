"""Sink settings: one model per sink type, discriminated by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field

from o365collector.config.base import Strict as _Strict


class _SinkBase(_Strict):
    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    batch_max_events: int = Field(5000, ge=1)
    queue_max_batches: int = Field(8, ge=1)


class JsonlSinkSettings(_SinkBase):
    """JSON-lines file: one event per line, fsynced before acknowledging, rotated by size."""

    type: Literal["jsonl"]
    path: Path
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    keep_files: int = Field(10, ge=1)


class StdoutSinkSettings(_SinkBase):
    """Standard output: one JSON event per line."""

    type: Literal["stdout"]


SinkSettings = Annotated[JsonlSinkSettings | StdoutSinkSettings, Field(discriminator="type")]


def sink_name(sink: SinkSettings) -> str:
    """The sink's configured name, or its type."""
    return sink.name or sink.type


def sink_types() -> list[str]:
    """Every accepted ``type`` value, for error messages."""
    members = get_args(get_args(SinkSettings)[0])
    return [get_args(m.model_fields["type"].annotation)[0] for m in members]
