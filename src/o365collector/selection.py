"""Checks of the ``--stream`` option shared by ``backfill`` and ``state reset``."""

from __future__ import annotations

from collections.abc import Sequence

from o365collector.config.model import TenantSettings
from o365collector.config.streams import configured
from o365collector.errors import ConfigError


def stream_names(tenants: Sequence[TenantSettings]) -> list[str]:
    """The streams configured for ``tenants``, in configuration order, each named once."""
    names: dict[str, None] = {}
    for tenant in tenants:
        names.update((str(configured(entry)), None) for entry in tenant.streams)
    return list(names)


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
