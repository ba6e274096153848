"""Checks of the ``--stream`` option shared by ``backfill`` and ``state reset``."""

from __future__ import annotations

from collections.abc import Sequence

from o365collector.config.model import TenantSettings
from o365collector.config.streams import ConfiguredStream, configured
from o365collector.errors import ConfigError


def configured_streams(tenants: Sequence[TenantSettings]) -> dict[str, ConfiguredStream]:
    """The streams configured for ``tenants`` by name, in the order first configured.

    A name several tenants configure keeps the last one's options.
    """
    streams: dict[str, ConfiguredStream] = {}
    for tenant in tenants:
        for entry in tenant.streams:
            stream = configured(entry)
            streams[str(stream)] = stream
    return streams


def stream_names(tenants: Sequence[TenantSettings]) -> list[str]:
    """The streams configured for ``tenants``, in configuration order, each named once."""
    return list(configured_streams(tenants))


def require_stream(stream: str, tenants: Sequence[TenantSettings]) -> None:
    """Accept ``stream`` if one of ``tenants`` has it configured.

    Raises:
        ConfigError: naming the streams that are configured, so the fix is a copy away.
    """
    names = stream_names(tenants)
    if stream in names:
        return
    owners = ", ".join(t.label for t in tenants)
    msg = (
        f"--stream {stream!r}: no such stream is configured for tenant(s) {owners}; "
        f"valid names: {', '.join(names)} (the tenants' `streams` in the config)"
    )
    raise ConfigError(msg)
