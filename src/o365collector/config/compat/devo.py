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
from o365collector.config.model import BudgetSettings

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
    state_dir = _globals(top.child("globals", required=True), ctx)
    sinks = _outputs(top.child("outputs"), ctx)
    inputs = top.child("inputs", required=True)
    if inputs is None:
        return None
    inputs.only((INPUT, "services"))
    draft = translate_input(inputs, ctx, layout="devo config.yaml", services_beside=True)
    if draft is not None:
        draft.state_dir = state_dir
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
    if not node.boolean("enabled", required=True, default=True):
        ctx.problems.add(
            join(node.path, "enabled"),
            "false: this input, the only one, collects nothing; set it to true",
        )
    rps = node.integer("requests_per_second", low=1, default=DEFAULT_REQUESTS_PER_SECOND)
    tenant = _tenant(node, ctx)
    budget = BudgetSettings()
    paced = min(budget.requests, int((rps or DEFAULT_REQUESTS_PER_SECOND) * budget.window_secs))
    if paced < budget.requests:  # never with rps >= 1: the budget is the tighter limit
        tenant["budget"] = {"requests": paced, "window_secs": budget.window_secs}
    draft = Draft(layout, node.path, tenant, [])
    draft.paths.update(
        {
            "tenants[0]": node.path,
            "tenants[0].tenant_id": join(join(node.path, "credentials"), "username"),
            "tenants[0].credential": join(node.path, "credentials"),
            "tenants[0].budget": join(node.path, "requests_per_second"),
        }
    )
    _services(node, inputs if services_beside else None, draft, ctx)
    return draft


def _globals(node: Reader | None, ctx: Context) -> Path | None:
    if node is None:
        return None
    node.only(("debug", "id", "name", "persistence", "multiprocessing"))
    node.boolean("debug")
    node.identifier("id")
    node.text("name", max_len=10, required=True)
    node.boolean("multiprocessing")
    persistence = node.child("persistence")
    if persistence is None:
        return None
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
        return None
    config.only(("directory_name",))
    folder = config.text("directory_name")
    return ctx.root / folder if folder is not None else None


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
    periods: list[int] = []
    delays: list[int] = []
    starts: list[datetime] = []
    first = _start(node, "start_time", ctx)
    if first is not None:
        starts.append(first)
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
        period = reader.integer("request_period_in_seconds", low=1, high=MAX_PERIOD_SECS)
        delay = reader.integer("override_time_delay_in_seconds", low=1, high=MAX_DELAY_SECS)
        periods.append(period or DEFAULT_PERIOD_SECS)
        if not service.aggregated:
            delays.append(delay or DEFAULT_DELAY_SECS)
        start = _start(reader, "start_time", ctx)
        if start is not None:
            starts.append(start)
        mapped = MappedService(service, path, reader.day("reset_persistence_auth"))
        if service.aggregated:
            mapped.settle_delay_secs = delay or DEFAULT_DELAY_SECS
        draft.services.append(mapped)
    _collection(draft, services.path, periods, delays, starts, ctx)


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


def _collection(
    draft: Draft,
    path: str,
    periods: list[int],
    delays: list[int],
    starts: list[datetime],
    ctx: Context,
) -> None:
    period = min(periods, default=DEFAULT_PERIOD_SECS)
    delay = max(delays, default=DEFAULT_DELAY_SECS)
    if len(set(periods)) > 1:
        draft.notes.append(
            f"{path}: request_period_in_seconds differs between services; every stream "
            f"polls every {period} s (the shortest)"
        )
    if len(set(delays)) > 1:
        draft.notes.append(
            f"{path}: override_time_delay_in_seconds differs between services read per row; "
            f"each of them waits {delay} s (the longest, which loses nothing)"
        )
    draft.collection = {
        "mode": "fixed_delay",
        "fixed_delay_secs": delay,
        "poll_interval_secs": period,
    }
    if starts:
        lookback = (ctx.now - min(starts)).total_seconds()
        draft.collection["initial_lookback_secs"] = max(1.0, lookback)
    draft.paths.update(
        {
            "collection": path,
            "collection.fixed_delay_secs": f"{path}.*.override_time_delay_in_seconds",
            "collection.poll_interval_secs": f"{path}.*.request_period_in_seconds",
            "collection.initial_lookback_secs": f"{path}.*.start_time",
        }
    )
