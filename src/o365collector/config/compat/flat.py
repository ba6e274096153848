"""Flat parameters: Sekoia's Message Trace trigger and seed 000's tenant_id/client_id/secret."""

from __future__ import annotations

from typing import Any

from o365collector.config.compat.catalog import MESSAGE_TRACE_SERVICE
from o365collector.config.compat.draft import Context, Draft, MappedService, MappedSink
from o365collector.config.compat.values import EMAIL, Reader

SEKOIA_KEYS = ("account_name", "account_password", "intake_key", "intake_server")
APP_KEYS = ("tenant_id", "client_id", "client_secret")
TUNING_KEYS = ("frequency", "timedelta", "start_time", "chunk_size")
FLAT_KEYS = (*SEKOIA_KEYS, *APP_KEYS, *TUNING_KEYS)
MAX_FREQUENCY_SECS = 864_000
MAX_TIMEDELTA_MINUTES = 1440
MAX_START_HOURS = 90 * 24  # Graph keeps 90 days


def translate_flat(data: dict[str, Any], ctx: Context) -> Draft:
    """Map flat trigger parameters: one tenant, message trace, a Sekoia sink if keyed."""
    top = Reader(data, "", ctx.problems)
    top.only((*FLAT_KEYS, "o365collector"))
    sekoia = any(top.node.get(k) is not None for k in SEKOIA_KEYS)
    layout = "sekoia" if sekoia else "tenant_id/client_id/client_secret"
    draft = Draft(layout, "", _tenant(top, ctx), [MappedService(MESSAGE_TRACE_SERVICE, "")])
    draft.paths.update(
        {
            "tenants[0]": "",
            "tenants[0].tenant_id": "tenant_id",
            "tenants[0].client_id": "client_id",
            "tenants[0].client_secret": "client_secret",
            "tenants[0].credential": "account_name",
            "tenants[0].credential.username": "account_name",
            "tenants[0].credential.password": "account_password",
            "tenants[0].streams": "",
        }
    )
    _collection(top, draft)
    intake_key = top.raw("intake_key")
    server = top.text("intake_server")
    chunk = top.integer("chunk_size", low=1, high=1_000_000)
    if intake_key is not None:
        sink: dict[str, Any] = {"type": "sekoia", "name": "sekoia", "intake_key": intake_key}
        if server is not None:
            sink["base_url"] = server
        if chunk is not None:
            sink["batch_max_events"] = chunk
        draft.sinks.append(MappedSink("sekoia", sink, "intake_key"))
        draft.paths.update(
            {
                "sinks[0]": "",
                "sinks[0].intake_key": "intake_key",
                "sinks[0].base_url": "intake_server",
                "sinks[0].batch_max_events": "chunk_size",
            }
        )
    elif server is not None or chunk is not None:
        key = "intake_server" if server is not None else "chunk_size"
        ctx.problems.add(key, "goes with intake_key (the Sekoia intake); add intake_key")
    return draft


def _tenant(top: Reader, ctx: Context) -> dict[str, Any]:
    user = top.node.get("account_name") is not None or top.node.get("account_password") is not None
    app = top.node.get("client_secret") is not None
    tenant_id = top.text("tenant_id")
    client_id = top.text("client_id")
    if user and app:
        ctx.problems.add(
            "client_secret",
            "give account_name/account_password or client_id/client_secret, not both",
        )
        return {}
    if user:
        username = top.text("account_name", required=True)
        password = top.raw("account_password", required=True)
        tenant: dict[str, Any] = {
            "credential": {"type": "password", "username": username, "password": password}
        }
        match = EMAIL.match(username or "")
        if username is not None and match is None:
            ctx.problems.add("account_name", "must be an email address: user@domain.com", username)
        tenant_id = tenant_id or (match.group(1).lower() if match else None)
        if tenant_id is not None:
            tenant["tenant_id"] = tenant_id
        if client_id is not None:  # a public client of the tenant's own
            tenant["client_id"] = client_id
        return tenant
    if not app and client_id is None and tenant_id is None:
        ctx.problems.add(
            "(top level)",
            "give account_name and account_password (Sekoia), or tenant_id, client_id and "
            "client_secret (an app registration)",
        )
        return {}
    for key, value in (("tenant_id", tenant_id), ("client_id", client_id)):
        if value is None and top.node.get(key) is None:
            top.raw(key, required=True)
    secret = top.raw("client_secret", required=True)
    return {"tenant_id": tenant_id, "client_id": client_id, "client_secret": secret}


def _collection(top: Reader, draft: Draft) -> None:
    frequency = top.integer("frequency", low=1, high=MAX_FREQUENCY_SECS)
    delta = top.integer("timedelta", low=0, high=MAX_TIMEDELTA_MINUTES)
    hours = top.integer("start_time", low=1, high=MAX_START_HOURS)
    if frequency is not None:
        draft.collection["poll_interval_secs"] = frequency
        draft.paths["collection.poll_interval_secs"] = "frequency"
        draft.sources["collection.poll_interval_secs"] = "frequency"
    if delta is not None:
        draft.collection["settle_delay_secs"] = delta * 60
        draft.paths["collection.settle_delay_secs"] = "timedelta"
        draft.sources["collection.settle_delay_secs"] = "timedelta (minutes × 60)"
    if hours is not None:
        draft.collection["initial_lookback_secs"] = hours * 3600
        draft.paths["collection.initial_lookback_secs"] = "start_time"
        draft.sources["collection.initial_lookback_secs"] = "start_time (hours × 3600)"
    draft.paths.setdefault("collection", "")
