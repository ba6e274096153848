"""The native settings a foreign configuration maps to, plus what only that layout has."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, Field

from o365collector.config.base import Strict
from o365collector.config.model import Settings


class ServiceReset(Strict):
    """A service's ``reset_persistence_auth`` value, for the streams that may collect it."""

    # Built when a foreign file is validated: a native one (and `validate` of it) never is.
    model_config = ConfigDict(defer_build=True)

    tenant: int = Field(ge=0)  # index in ``tenants``
    streams: list[str]
    marker: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    parameter: str  # the seed's key path, for logs


@dataclass(frozen=True, slots=True)
class ResetMarker:
    """Reset ``stream`` of ``tenant`` (its label) once, when ``marker`` differs from the last."""

    tenant: str
    stream: str
    marker: str
    parameter: str


def source_key(stream: str, option: str) -> str:
    """The key of a stream option in :attr:`CompatSettings.compat_sources`."""
    return f"{stream}:{option}"


class CompatSettings(Settings):
    """Settings loaded from a Devo or Sekoia configuration (``compat_*`` are set by the mapper).

    ``compat_sources``: where a mapped setting came from, for ``validate`` and ``state
    show``: the foreign parameter's key path, or which of the product's defaults it is.
    Keyed by :func:`source_key` for stream options, else by native key
    (``collection.poll_interval_secs``, ``budget.requests_per_second``, ``enabled``).
    Its validator is built on first use: for a native file it serves ``isinstance`` only.
    """

    model_config = ConfigDict(defer_build=True)

    compat_layout: str
    compat_resets: list[ServiceReset] = Field(default_factory=list)
    compat_sources: dict[str, str] = Field(default_factory=dict)
    compat_debug: bool = False  # Devo's globals.debug: debug logs unless --log-level is given

    def reset_markers(self) -> list[ResetMarker]:
        """Each configured reset, for every stream of its tenant that collects the service."""
        markers: list[ResetMarker] = []
        for reset in self.compat_resets:
            tenant = self.tenants[reset.tenant]
            markers.extend(
                ResetMarker(tenant.label, stream, reset.marker, reset.parameter)
                for stream in reset.streams
                if stream in tenant.streams
            )
        return markers
