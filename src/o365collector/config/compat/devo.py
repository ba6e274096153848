"""Devo's ``config.yaml`` (globals / outputs / inputs) and its cloud-collector JSON parameters."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from o365collector.config.compat.catalog import SERVICES
from o365collector.config.compat.draft import (
    CERTS_FOLDER,
    Context,
    Draft,
    MappedService,
    MappedSink,
)
from o365collector.config.compat.values import EMAIL, Reader, join

INPUT = "office365_reporting_message"
DEVO_KEYS = ("globals", "outputs", "inputs")
_DEVO_HOST = re.compile(r"^collector-[a-z0-9]+\.devo\.io$")
_SINK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_REQUESTS_PER_SECOND = 100_000
DEFAULT_PERIOD_SECS = 60
DEFAULT_DELAY_SECS = 90_000
MAX_DELAY_SECS = 90_000
MAX_PERIOD_SECS = 864_000  # the native poll_interval_secs cap (Graph's 10-day window)
START_TIME_LIMIT = timedelta(days=11)
SERVICE_KEYS = (
    "request_period_in_seconds",
    "reset_persistence_auth",
    "override_time_delay_in_seconds",
    "start_time",
)


def translate_devo(data: dict[str, Any], ctx: Context) -> Draft | None:
    """Map Devo's ``config.yaml`` layout (``globals``/``outputs``/``inputs``) onto a draft."""
    top = Reader(data, "", ctx.problems)
    top.only((*DEVO_KEYS, "o365collector"))
    state_dir, debug = _globals(top.child("globals", required=True), ctx)
    sinks = _outputs(top.child("outputs"), ctx)
    inputs = top.child("inputs", required=True)
    if inputs is None:
        return None
    inputs.only((INPUT, "services"))
    draft = translate_input(inputs, ctx, layout="devo config.yaml", services_beside=True)
    if draft is not None:
        draft.state_dir = state_dir
        draft.debug = debug
        draft.sinks = sinks
        for index, sink in enumerate(sinks):
            draft.paths.update(_sink_paths(index, sink))
    return draft


def translate_cloud(data: dict[str, Any], ctx: Context) -> Draft | None:
    """Map the cloud collector's JSON parameters (``{"office365_reporting_message": …}``)."""
    top = Reader(data, "", ctx.problems)
    top.only((INPUT, "o365collector"))
    return translate_input(top, ctx, layout="devo cloud collector", services_beside=False)


def translate_input(
    inputs: Reader, ctx: Context, *, layout: str, services_beside: bool
) -> Draft | None:
    """The ``office365_reporting_message`` input under ``inputs``: one tenant, its services.

    ``services_beside``: ``services`` may also sit beside the input, under ``inputs`` (as
    the seed's config.yaml example indents it).
    """
    node = inputs.child(INPUT, required=True)
    if node is None:
        return None
    node.only(("id", "enabled", "requests_per_second", "credentials", "services", "start_time"))
    node.identifier("id")
    enabled = node.boolean("enabled", required=True, default=True)
    rps = node.integer("requests_per_second", low=1)
    tenant = _tenant(node, ctx)
    if not enabled:
        tenant["enabled"] = False
    if rps is not None:
        tenant["budget"] = {"requests_per_second": rps}
    draft = Draft(layout, node.path, tenant, [])
    if not enabled:
        draft.notes.append(
            f"{join(node.path, 'enabled')} is false: nothing is collected from this input "
            "(set it to true to collect)"
        )
    draft.sources["enabled"] = join(node.path, "enabled")
    draft.sources["budget.requests_per_second"] = (
        join(node.path, "requests_per_second")
        if rps is not None
        else f"default of requests_per_second (seed 004: {DEFAULT_REQUESTS_PER_SECOND}/s, "
        "no cap below the budget)"
    )
    draft.paths.update(
        {
            "tenants[0]": node.path,
            "tenants[0].tenant_id": join(join(node.path, "credentials"), "username"),
            "tenants[0].credential": join(node.path, "credentials"),
            "tenants[0].enabled": join(node.path, "enabled"),
            "tenants[0].budget": join(node.path, "requests_per_second"),
        }
    )
    _services(node, inputs if services_beside else None, draft, ctx)
    return draft


def _globals(node: Reader | None, ctx: Context) -> tuple[Path | None, bool]:
    """The state folder and ``debug`` (debug logs unless ``--log-level`` says otherwise)."""
    if node is None:
        return None, False
    node.only(("debug", "id", "name", "persistence", "multiprocessing"))
    debug = node.boolean("debug")
    node.identifier("id")
    node.text("name", max_len=10, required=True)
    node.boolean("multiprocessing")
    persistence = node.child("persistence")
    if persistence is None:
        return None, debug
    persistence.only(("type", "config"))
    kind = persistence.text("type", required=True)
    if kind is not None and kind != "filesystem":
        ctx.problems.add(
            join(persistence.path, "type"),
            "must be filesystem (o365collector keeps its state in a folder)",
            kind,
        )
    config = persistence.child("config")
    if config is None:
        return None, debug
    config.only(("directory_name",))
    folder = config.text("directory_name")
    return (ctx.root / folder if folder is not None else None), debug


def _outputs(node: Reader | None, ctx: Context) -> list[MappedSink]:
    if node is None:
        return []
    sinks = []
    for name in node.node:
        output = node.child(name, required=True)
        if output is None:
            continue
        if not _SINK_NAME.match(name):
            ctx.problems.add(output.path, "output names may use only A-Z a-z 0-9 _ . - (≤ 64)")
        output.only(("type", "config"))
        kind = output.text("type", required=True)
        if kind is not None and kind != "devo_platform":
            ctx.problems.add(join(output.path, "type"), "must be devo_platform", kind)
        config = output.child("config", required=True)
        if config is not None:
            sinks.append(MappedSink(name, _devo_sink(name, config, ctx), config.path))
    return sinks


def _devo_sink(name: str, config: Reader, ctx: Context) -> dict[str, Any]:
    config.only(("address", "port", "type", "chain", "cert", "key"))
    kind = (config.text("type", default="SSL") or "SSL").upper()
    if kind not in {"SSL", "TCP"}:
        ctx.problems.add(join(config.path, "type"), "must be SSL (or TCP for a Devo relay)", kind)
    address = config.text("address", required=True)
    if kind == "SSL" and address is not None and not _DEVO_HOST.match(address):
        ctx.problems.add(
            join(config.path, "address"),
            "must be a Devo collector address: collector-us.devo.io or collector-eu.devo.io "
            "(or another collector-<region>.devo.io)",
            address,
        )
    port = config.integer("port", low=1, high=65535, default=443)
    sink: dict[str, Any] = {"type": "devo", "name": name, "host": address, "port": port}
    if kind == "TCP":
        sink["transport"] = "tcp"
        for key in ("chain", "cert", "key"):
            if config.raw(key) is not None:
                ctx.problems.add(join(config.path, key), "applies to type SSL only; remove it")
        return sink
    certs = ctx.root / CERTS_FOLDER
    for key, native in (("chain", "ca_file"), ("cert", "cert_file"), ("key", "key_file")):
        file_name = config.text(key, min_len=4, max_len=20, required=True)
        if file_name is not None:
            sink[native] = str(certs / file_name)
    return sink


def _sink_paths(index: int, sink: MappedSink) -> dict[str, str]:
    native = {"host": "address", "port": "port", "transport": "type"}
    native |= {"ca_file": "chain", "cert_file": "cert", "key_file": "key"}
    return {f"sinks[{index}].{k}": join(sink.path, v) for k, v in native.items()}


def _tenant(node: Reader, ctx: Context) -> dict[str, Any]:
    creds = node.child("credentials", required=True)
    if creds is None:
        return {}
    creds.only(("username", "password"))
    username = creds.text("username", required=True)
    password = creds.raw("password", required=True)
    tenant: dict[str, Any] = {}
    if username is not None:
        match = EMAIL.match(username)
        if match is None:
            ctx.problems.add(
                join(creds.path, "username"), "must be an email address: user@domain.com", username
            )
        else:
            tenant["tenant_id"] = match.group(1).lower()  # Entra accepts a domain as tenant
    if password is not None and not isinstance(password, str):
        ctx.problems.add(join(creds.path, "password"), "must be a string")
    tenant["credential"] = {"type": "password", "username": username, "password": password}
    return tenant


def _services(node: Reader, inputs: Reader | None, draft: Draft, ctx: Context) -> None:
    services = node.child("services")
    beside = inputs.child("services") if inputs is not None else None
    if services is not None and beside is not None:
        ctx.problems.add(beside.path, f"give services once, under {node.path} or here")
    services = services or beside
    if services is None:  # none listed: every service with its defaults
        every: dict[str, Any] = dict.fromkeys(SERVICES)
        services = Reader(every, join(node.path, "services"), ctx.problems)
    first = _start(node, "start_time", ctx)
    for name, value in services.node.items():
        path = join(services.path, name)
        service = SERVICES.get(name)
        if service is None:
            ctx.problems.add(path, f"unknown service (expected one of: {', '.join(SERVICES)})")
            continue
        reader = services.child(name) if value is not None else Reader({}, path, ctx.problems)
        if reader is None:
            continue
        reader.only(SERVICE_KEYS)
        mapped = MappedService(service, path, reader.day("reset_persistence_auth"))
        period = reader.integer("request_period_in_seconds", low=1, high=MAX_PERIOD_SECS)
        delay = reader.integer("override_time_delay_in_seconds", low=1, high=MAX_DELAY_SECS)
        for key, given, default, option in (
            ("request_period_in_seconds", period, DEFAULT_PERIOD_SECS, "poll_interval_secs"),
            ("override_time_delay_in_seconds", delay, DEFAULT_DELAY_SECS, "settle_delay_secs"),
        ):
            mapped.options[option] = given if given is not None else default
            if given is not None:
                mapped.given.add(option)
                mapped.sources[option] = join(path, key)
            else:
                mapped.sources[option] = f"default of {key} (seed 004: {default} s)"
        start = _start(reader, "start_time", ctx)
        if start is not None:
            mapped.options["initial_lookback_secs"] = _lookback(start, ctx)
            mapped.given.add("initial_lookback_secs")
            mapped.sources["initial_lookback_secs"] = join(path, "start_time")
        draft.services.append(mapped)
    _collection(draft, node.path, first, ctx)


def _start(node: Reader, key: str, ctx: Context) -> datetime | None:
    start = node.timestamp(key)
    if start is None:
        return None
    if start > ctx.now:
        ctx.problems.add(join(node.path, key), "must not be in the future", start)
        return None
    if ctx.now - start > START_TIME_LIMIT:
        ctx.problems.add(join(node.path, key), "must not be older than 11 days", start)
        return None
    return start


def _lookback(start: datetime, ctx: Context) -> float:
    return max(1.0, (ctx.now - start).total_seconds())


def _collection(draft: Draft, input_path: str, start: datetime | None, ctx: Context) -> None:
    """The seed's defaults, for streams without their own (services set theirs per stream)."""
    draft.collection = {
        "mode": "fixed_delay",
        "fixed_delay_secs": DEFAULT_DELAY_SECS,
        "poll_interval_secs": DEFAULT_PERIOD_SECS,
    }
    draft.sources["collection.mode"] = "seed 004 (each window read once, once it is delayed)"
    draft.sources["collection.fixed_delay_secs"] = (
        f"default of override_time_delay_in_seconds (seed 004: {DEFAULT_DELAY_SECS} s)"
    )
    draft.sources["collection.poll_interval_secs"] = (
        f"default of request_period_in_seconds (seed 004: {DEFAULT_PERIOD_SECS} s)"
    )
    if start is not None:
        draft.collection["initial_lookback_secs"] = _lookback(start, ctx)
        draft.sources["collection.initial_lookback_secs"] = join(input_path, "start_time")
        draft.paths["collection.initial_lookback_secs"] = join(input_path, "start_time")
    draft.paths["collection"] = input_path
