"""Apply the ``o365collector:`` block to a draft, choose streams and sinks, rename error paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from o365collector.clouds import CLOUDS, CloudName
from o365collector.config.compat.draft import (
    STATE_FOLDER,
    Context,
    Draft,
    MappedService,
    deep_merge,
)
from o365collector.config.compat.settings import CompatSettings, source_key
from o365collector.config.compat.values import Reader, join
from o365collector.config.model import CollectionSettings, Settings, TenantSettings
from o365collector.streams.catalog import devo_table

HORIZON_DEFAULT_SECS = CollectionSettings.model_fields["horizon_secs"].default

NATIVE_BLOCK = "o365collector"
BLOCK_KEYS = ("state_dir", "collection", "observability", "tenant", "outputs", "sinks")


@dataclass
class Translation:
    """A foreign configuration as native data for :class:`CompatSettings`."""

    data: dict[str, Any]
    paths: dict[str, str]
    notes: list[str] = field(default_factory=list)
    model: type[Settings] = CompatSettings

    def rename(self, problems: list[str]) -> list[str]:
        """Rewrite ``native.path: message`` lines to quote the foreign parameter instead."""
        out = []
        for problem in problems:
            path, sep, rest = problem.partition(": ")
            out.append(f"{self.foreign_path(path)}{sep}{rest}")
        return out

    def foreign_path(self, path: str) -> str:
        """The foreign key path of a native one (longest known prefix; unchanged if none)."""
        best = ""
        for native in self.paths:
            boundary = path[len(native) : len(native) + 1]
            if path.startswith(native) and boundary in {"", ".", "["} and len(native) > len(best):
                best = native
        if not best:
            return path
        foreign = self.paths[best] + path[len(best) :]
        return foreign.lstrip(".") or "(top level)"


@cache
def _streams_adapter() -> TypeAdapter[Any]:
    annotation: Any = TenantSettings.model_fields["streams"].annotation
    return TypeAdapter(annotation)


def stream_supported(stream: str) -> bool:
    """Whether this build's native model accepts ``stream`` in ``tenants[].streams``."""
    try:
        _streams_adapter().validate_python([stream])
    except ValidationError:
        return False
    return True


def finish(draft: Draft, block: Any, ctx: Context) -> Translation:
    """Merge the native block over ``draft`` and build the native data (problems to ``ctx``)."""
    notes = list(draft.notes)
    paths = dict(draft.paths)
    over: dict[str, Any] = {}
    if block is not None:
        if isinstance(block, dict):
            reader = Reader({str(k): v for k, v in block.items()}, NATIVE_BLOCK, ctx.problems)
            reader.only(BLOCK_KEYS)
            over = reader.node
        else:
            ctx.problems.add(NATIVE_BLOCK, "must be a mapping of native keys", block)
    for key in ("state_dir", "collection", "observability"):
        if key in over:
            paths[key] = join(NATIVE_BLOCK, key)
            if isinstance(over[key], dict):
                for sub in over[key]:
                    paths[f"{key}.{sub}"] = join(join(NATIVE_BLOCK, key), str(sub))
    collection = deep_merge(draft.collection, _mapping(over, "collection", ctx))
    sources = {k: v for k, v in draft.sources.items() if not _overridden(k, over)}
    tenant = _tenant(draft, over, collection, (paths, sources, notes), ctx)
    streams = tenant.get("streams")
    sinks = _sinks(draft, over, streams if isinstance(streams, list) else [], paths, notes, ctx)
    data: dict[str, Any] = {
        "compat_layout": draft.layout,
        "compat_sources": sources,
        "compat_debug": draft.debug,
        "compat_resets": [
            {
                "tenant": 0,
                "streams": list(svc.service.candidate_streams()),
                "marker": svc.reset_marker,
                "parameter": join(svc.path, "reset_persistence_auth"),
            }
            for svc in draft.services
            if svc.reset_marker is not None
        ],
        "state_dir": over.get("state_dir", str(draft.state_dir or ctx.root / STATE_FOLDER)),
        "tenants": [tenant],
        "collection": collection,
        "sinks": sinks,
    }
    if "observability" in over:
        data["observability"] = over["observability"]
    return Translation(data, paths, notes)


def _tables(streams: list[Any]) -> dict[str, str]:
    """The Devo table of each stream that Devo's collector has one for."""
    tables: dict[str, str] = {}
    for entry in streams:
        name = entry.get("name") if isinstance(entry, dict) else entry
        table = devo_table(name) if isinstance(name, str) else None
        if isinstance(name, str) and table is not None:
            tables[name] = table
    return tables


def _mapping(over: dict[str, Any], key: str, ctx: Context) -> dict[str, Any]:
    value = over.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        ctx.problems.add(join(NATIVE_BLOCK, key), "must be a mapping", value)
        return {}
    return value


def _overridden(source: str, over: dict[str, Any]) -> bool:
    """Whether the ``o365collector:`` block sets the native key a source describes."""
    section, _, key = source.partition(".")
    block = over.get("tenant" if section in {"enabled", "budget"} else section)
    if section == "enabled":
        return isinstance(block, dict) and "enabled" in block
    if section == "budget":
        budget = block.get("budget") if isinstance(block, dict) else None
        return isinstance(budget, dict) and key in budget
    return isinstance(block, dict) and key in block


def _tenant(
    draft: Draft,
    over: dict[str, Any],
    collection: dict[str, Any],
    out: tuple[dict[str, str], dict[str, str], list[str]],
    ctx: Context,
) -> dict[str, Any]:
    paths, sources, notes = out
    block = _mapping(over, "tenant", ctx)
    tenant = deep_merge(draft.tenant, block)
    for key in block:
        paths[f"tenants[0].{key}"] = join(join(NATIVE_BLOCK, "tenant"), key)
    if "streams" in block:
        return tenant
    cloud_value = tenant.get("cloud", "commercial")
    cloud: CloudName = cloud_value if cloud_value in CLOUDS else "commercial"
    streams: list[str | dict[str, Any]] = []
    for svc in draft.services:
        stream = svc.service.stream(cloud)
        if not stream_supported(stream):
            notes.append(
                f"{svc.path}: its stream {stream} is not collected by this version of "
                "o365collector; the service is skipped"
            )
            continue
        options = _stream_options(svc, collection, ctx)
        streams.append({"name": stream, **options} if options else stream)
        for option in options:
            sources[source_key(stream, option)] = svc.sources[option]
    if not streams and draft.services:
        ctx.problems.add(
            join(draft.input_path, "services"),
            "none of these services can be collected by this version of o365collector "
            "(see docs/migrating.md); enable office365_reporting_MessageTrace_service",
        )
    tenant["streams"] = streams
    paths.setdefault("tenants[0].streams", join(draft.input_path, "services"))
    return tenant


def _stream_options(
    svc: MappedService, collection: dict[str, Any], ctx: Context
) -> dict[str, float]:
    """The service's own pace as stream options.

    Under ``o365collector.collection.mode: fresh`` a per-row stream reads within seconds
    and re-sweeps late rows: Devo's default 25-hour delay is dropped there, a delay the
    file gives is kept and must be shorter than the horizon.
    """
    options = dict(svc.options)
    if svc.service.aggregated or collection.get("mode") != "fresh":
        return options
    if "settle_delay_secs" not in svc.given:
        del options["settle_delay_secs"]
        return options
    horizon = collection.get("horizon_secs", HORIZON_DEFAULT_SECS)
    delay = options["settle_delay_secs"]
    if isinstance(horizon, (int, float)) and delay >= horizon:
        ctx.problems.add(
            svc.sources["settle_delay_secs"],
            f"must be shorter than collection.horizon_secs ({horizon:g}) under "
            "o365collector.collection.mode: fresh (re-sweeps read late rows); lower it or "
            "remove it (fresh reads within seconds), or drop mode: fresh",
            delay,
        )
    return options


def _sinks(
    draft: Draft,
    over: dict[str, Any],
    streams: list[Any],
    paths: dict[str, str],
    notes: list[str],
    ctx: Context,
) -> list[dict[str, Any]]:
    outputs = _mapping(over, "outputs", ctx)
    known = [s.name for s in draft.sinks]
    for name in outputs:
        if name not in known:
            ctx.problems.add(
                join(join(NATIVE_BLOCK, "outputs"), str(name)),
                f"no mapped output of that name (outputs: {', '.join(known) or 'none'})",
            )
    sinks: list[dict[str, Any]] = []
    for index, sink in enumerate(draft.sinks):
        settings = dict(sink.settings)
        if settings.get("type") == "devo":
            settings["tables"] = _tables(streams)
        extra = outputs.get(sink.name)
        if isinstance(extra, dict):
            settings = deep_merge(settings, extra)
            for key in extra:
                paths[f"sinks[{index}].{key}"] = join(
                    join(join(NATIVE_BLOCK, "outputs"), sink.name), key
                )
        elif extra is not None:
            ctx.problems.add(join(join(NATIVE_BLOCK, "outputs"), sink.name), "must be a mapping")
        paths.setdefault(f"sinks[{index}]", sink.path)
        sinks.append(settings)
    added = over.get("sinks") or []
    if not isinstance(added, list):
        ctx.problems.add(join(NATIVE_BLOCK, "sinks"), "must be a list of sinks")
        added = []
    for index, sink_value in enumerate(added):
        paths[f"sinks[{len(sinks)}]"] = join(join(NATIVE_BLOCK, "sinks"), index)
        if isinstance(sink_value, dict) and sink_value.get("type") == "devo":
            sink_value = deep_merge({"tables": _tables(streams)}, sink_value)
        sinks.append(sink_value)
    if not sinks:
        notes.append(
            "no output configured: events go to standard output; add "
            "o365collector.sinks to deliver them elsewhere"
        )
        sinks.append({"type": "stdout", "name": "stdout"})
    return sinks
