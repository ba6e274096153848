"""The settings each stream runs with, and where each came from (``validate``, ``state show``).

A migrating user compares these with what the Devo collector did: every value names the
key that set it (the seed parameter of a Devo file, a native key), or the default it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o365collector.config.compat.settings import CompatSettings, source_key
from o365collector.config.model import Settings, TenantSettings
from o365collector.config.streams import ConfiguredStream, DetailOptions
from o365collector.config.timing import (
    STREAM_KEY,
    Effective,
    initial_lookback,
    poll_interval,
    settle_delay,
)

# (row key, stream option, label)
_TIMINGS = (
    ("poll_interval", "poll_interval_secs", "poll interval"),
    ("settle_delay", "settle_delay_secs", "settle delay"),
    ("initial_lookback", "initial_lookback_secs", "first lookback"),
)


@dataclass(frozen=True, slots=True)
class Sourced:
    """A value and where it came from."""

    value: Any
    source: str
    note: str = ""


def stream_settings(settings: Settings) -> list[dict[str, Any]]:
    """One row per (tenant, stream): its effective pace and reset marker, with sources.

    Keys: ``tenant``, ``stream``, ``enabled``, ``reading`` (how it is read), then
    ``poll_interval_secs``, ``settle_delay_secs``, ``initial_lookback_secs`` and
    ``reset_marker``, each with a ``…_from`` (its source) and, where the value was
    adjusted, a ``…_note``.
    """
    rows: list[dict[str, Any]] = []
    for t, tenant in enumerate(settings.tenants):
        for s, stream in enumerate(tenant.streams):
            row: dict[str, Any] = {
                "tenant": tenant.label,
                "stream": str(stream),
                "enabled": tenant.enabled,
                "reading": _reading(stream, settings.collection.mode),
            }
            resolved = {
                "poll_interval": poll_interval(stream, settings.collection),
                "settle_delay": settle_delay(stream, settings.collection),
                "initial_lookback": initial_lookback(stream, settings.collection),
            }
            for name, option, _ in _TIMINGS:
                found = _sourced(settings, (t, s, stream), option, resolved[name])
                row[f"{name}_secs"] = found.value
                row[f"{name}_from"] = found.source
                if found.note:
                    row[f"{name}_note"] = found.note
            marker = _reset(settings, tenant, stream)
            row["reset_marker"] = marker.value
            row["reset_marker_from"] = marker.source
            rows.append(row)
    return rows


def tenant_settings(settings: Settings) -> list[dict[str, Any]]:
    """One row per tenant: whether it is collected, its request budget, and their sources."""
    compat = settings.compat_sources if isinstance(settings, CompatSettings) else {}
    rows = []
    for t, tenant in enumerate(settings.tenants):
        budget = tenant.budget
        per_second = budget.requests_per_second
        rows.append(
            {
                "tenant": tenant.label,
                "enabled": tenant.enabled,
                "enabled_from": compat.get("enabled") or _native(settings, t, "enabled", tenant),
                "budget": f"{budget.requests} requests / {budget.window_secs:g} s",
                "budget_from": _budget_source(settings, t, tenant),
                "requests_per_second": per_second,
                "requests_per_second_from": compat.get("budget.requests_per_second")
                or (
                    f"tenants[{t}].budget.requests_per_second"
                    if per_second is not None
                    else "default of tenants[].budget.requests_per_second (no cap)"
                ),
            }
        )
    return rows


def describe(settings: Settings) -> list[str]:
    """The rows of :func:`tenant_settings` and :func:`stream_settings` as text lines."""
    lines = ["Effective settings (value ← where it came from):"]
    streams = stream_settings(settings)
    for tenant in tenant_settings(settings):
        state = "collected" if tenant["enabled"] else "NOT collected (enabled: false)"
        lines.append(f"  tenant {tenant['tenant']}: {state} ← {tenant['enabled_from']}")
        lines.append(f"    request budget  {tenant['budget']} ← {tenant['budget_from']}")
        cap = tenant["requests_per_second"]
        shown = f"at most {cap:g} requests/s" if cap is not None else "no cap"
        lines.append(f"    request rate    {shown} ← {tenant['requests_per_second_from']}")
        for row in (r for r in streams if r["tenant"] == tenant["tenant"]):
            lines.append(f"    stream {row['stream']} ({row['reading']})")
            for name, _, label in _TIMINGS:
                note = row.get(f"{name}_note")
                extra = f" ({note})" if note else ""
                value = f"{row[f'{name}_secs']:g} s"
                lines.append(f"      {label:<15} {value} ← {row[f'{name}_from']}{extra}")
            if row["reset_marker"] is not None:
                reset = f"{row['reset_marker']} ← {row['reset_marker_from']}"
                lines.append(f"      {'reset marker':<15} {reset}")
    return lines


def _reading(stream: ConfiguredStream, mode: str) -> str:
    spec = stream.report
    if spec is not None and spec.aggregated:
        return "aggregated: each whole bucket read once, once settled"
    if isinstance(stream.options, DetailOptions):
        return "detail of rows once settled"
    if mode == "fixed_delay":
        return "collection.mode fixed_delay: each window read once, at the settle delay"
    return "collection.mode fresh: live at the settle delay, then re-sweeps and a final pass"


def _sourced(
    settings: Settings,
    where: tuple[int, int, ConfiguredStream],
    option: str,
    found: Effective,
) -> Sourced:
    t, s, stream = where
    compat = isinstance(settings, CompatSettings)
    sources = settings.compat_sources if isinstance(settings, CompatSettings) else {}
    if found.key == STREAM_KEY:
        native = f"tenants[{t}].streams[{s}].{option}"
        mapped = sources.get(source_key(stream, option))
        source = mapped or (f"o365collector.{native}" if compat else native)
        return Sourced(found.value, source, found.note)
    if found.key.startswith("collection."):
        mapped = sources.get(found.key)
        if mapped is not None:
            return Sourced(found.value, mapped, found.note)
        if found.given:
            source = f"o365collector.{found.key}" if compat else found.key
            return Sourced(found.value, source, found.note)
        return Sourced(found.value, f"default of {found.key}", found.note)
    return Sourced(found.value, found.key, found.note)


def _reset(settings: Settings, tenant: TenantSettings, stream: str) -> Sourced:
    if isinstance(settings, CompatSettings):
        for marker in settings.reset_markers():
            if marker.tenant == tenant.label and marker.stream == stream:
                return Sourced(marker.marker, marker.parameter)
    return Sourced(None, "none (o365collector state reset resets on demand)")


def _budget_source(settings: Settings, index: int, tenant: TenantSettings) -> str:
    given = tenant.budget.model_fields_set & {"requests", "window_secs"}
    if not given:
        return "default of tenants[].budget (Microsoft allows 100 per 300 s per tenant)"
    where = f"tenants[{index}].budget"
    return "o365collector.tenant.budget" if isinstance(settings, CompatSettings) else where


def _native(settings: Settings, index: int, key: str, tenant: TenantSettings) -> str:
    if key in tenant.model_fields_set:
        where = f"tenants[{index}].{key}"
        return f"o365collector.tenant.{key}" if isinstance(settings, CompatSettings) else where
    return f"default of tenants[].{key}"
