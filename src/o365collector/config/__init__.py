"""Configuration: the validated model and the YAML loader."""

from o365collector.config.loader import load_settings, parse_settings
from o365collector.config.model import (
    BudgetSettings,
    CollectionSettings,
    EndpointSettings,
    RetrySettings,
    Settings,
    TenantSettings,
)
from o365collector.config.sinks import JsonlSinkSettings, SinkSettings, StdoutSinkSettings

__all__ = [
    "BudgetSettings",
    "CollectionSettings",
    "EndpointSettings",
    "JsonlSinkSettings",
    "RetrySettings",
    "Settings",
    "SinkSettings",
    "StdoutSinkSettings",
    "TenantSettings",
    "load_settings",
    "parse_settings",
]
