"""Faithful, seeded fake of Entra ID's token endpoint and the Graph message trace API."""

from __future__ import annotations

from .server import Emulator
from .settings import EmulatorSettings, TenantSpec, default_settings, settings_from_mapping

__all__ = [
    "Emulator",
    "EmulatorSettings",
    "TenantSpec",
    "default_settings",
    "settings_from_mapping",
]
