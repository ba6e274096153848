"""The base of every settings model: unknown keys are errors, values are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Settings base: ``extra="forbid"`` so a misspelt key fails at start, and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
