"""The validated configuration model: tenants, streams, collection, sinks and state."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from o365collector.clouds import CLOUDS, GLOBAL_CLOUDS, CloudName, endpoint_defaults
from o365collector.config.base import Strict as _Strict
from o365collector.config.credentials import (
    OFFICE_PUBLIC_CLIENT_ID,
    ClientSecretCredentialSettings,
    CredentialSettings,
    PasswordCredentialSettings,
    normalise_credentials,
)
from o365collector.config.sinks import SinkSettings, sink_name
from o365collector.config.streams import (
    GRAPH_RETENTION_SECS,
    ConfiguredStream,
    StreamEntry,
    default_streams,
)
from o365collector.config.timing import timing_problems
from o365collector.observability.redact import register_secret, shorten

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_LABEL = r"(?!-)(?:[^\W_]|-){1,63}(?<!-)"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+")  # a.b, IDNs as xn--

EXAMPLE_GUID = "00000000-1111-2222-3333-444444444444"  # shown in the fix of a bad id
STREAMS: tuple[str, ...] = ("message_trace",)  # the default; see config/streams.py for all
GRAPH_MAX_WINDOW_SECS = 10 * 86400
_VIA_CREDENTIAL = object()  # client_secret's value when a credential block signs in instead


class EndpointSettings(_Strict):
    """Microsoft endpoints: the tenant's ``cloud`` fills them in; any key overrides its host.

    Overrides serve unverified sovereign-cloud hosts, proxies and the emulator.
    """

    authority: AnyHttpUrl = AnyHttpUrl("https://login.microsoftonline.com")
    graph: AnyHttpUrl = AnyHttpUrl("https://graph.microsoft.com")
    reporting: AnyHttpUrl = AnyHttpUrl(
        "https://reports.office365.com/ecp/reportingwebservice/reporting.svc"
    )
    graph_scope: str = "https://graph.microsoft.com/.default"
    reporting_scope: str = "https://outlook.office365.com/.default"
    login_version: Literal["v1", "v2"] = "v2"

    def graph_base(self) -> str:
        """Graph root without a trailing slash."""
        return str(self.graph).rstrip("/")

    def authority_base(self) -> str:
        """Authority host root without a trailing slash."""
        return str(self.authority).rstrip("/")

    def reporting_base(self) -> str:
        """Reporting Web Service root (``…/reporting.svc``) without a trailing slash."""
        return str(self.reporting).rstrip("/")

    def scope_for_graph(self) -> str:
        """The v2 scope of Graph tokens: the resource's identifier, not the URL it is reached at."""
        return self.graph_scope

    def scope_for_reporting(self) -> str:
        """The v2 scope of Reporting Web Service tokens (Exchange Online's resource)."""
        return self.reporting_scope


class BudgetSettings(_Strict):
    """Requests this collector may spend per tenant; the tenant's quota is shared with others."""

    requests: int = Field(80, ge=1, le=100_000)
    window_secs: float = Field(300.0, gt=0)
    reserve_share: float = Field(0.25, ge=0, lt=1)  # kept for live reads and re-sweeps
    requests_per_second: float | None = Field(None, gt=0)  # a cap on top (Devo's key)


class RetrySettings(_Strict):
    """Backoff for transient failures: exponential with full jitter, honouring Retry-After."""

    initial_interval_secs: float = Field(1.0, gt=0)
    multiplier: float = Field(2.0, ge=1)
    max_interval_secs: float = Field(60.0, gt=0)
    max_elapsed_secs: float = Field(900.0, gt=0)
    request_timeout_secs: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _intervals_ordered(self) -> RetrySettings:
        if self.max_interval_secs < self.initial_interval_secs:
            raise ValueError("max_interval_secs must be at least initial_interval_secs")
        return self


class TenantSettings(_Strict):
    """One Microsoft 365 tenant and the credentials of its app registration."""

    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    tenant_id: str = Field(min_length=1)
    credential: CredentialSettings | None = None  # before client_id: its validator reads it
    client_id: str = Field(None, min_length=1, validate_default=True)
    client_secret: SecretStr | None = Field(None, min_length=1, validate_default=True)
    cloud: CloudName = "commercial"
    enabled: bool = True  # false: validated, but nothing is collected from it
    endpoints: EndpointSettings = EndpointSettings()
    ca_bundle: Path | None = None
    streams: list[StreamEntry] = Field(default_factory=default_streams)
    budget: BudgetSettings = BudgetSettings()
    local_domains: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """The tenant's name in events, logs, metrics and state.

        Without a ``name``, a GUID tenant id is shown shortened (first and last characters,
        as the seeds obfuscate it); a domain tenant id (``contoso.onmicrosoft.com``) is
        public and shown as is.
        """
        if self.name:
            return self.name
        if _GUID.fullmatch(self.tenant_id):
            return shorten(self.tenant_id)
        return self.tenant_id

    def effective_credential(self) -> CredentialSettings:
        """The credential to sign in with; the flat ``client_secret`` form is one too."""
        if self.credential is not None:
            return self.credential
        assert self.client_secret is not None  # guaranteed by the client_secret validator
        return ClientSecretCredentialSettings(
            type="client_secret", client_secret=self.client_secret
        )

    @model_validator(mode="before")
    @classmethod
    def _cloud_and_seed_keys(cls, data: Any) -> Any:
        """Fill ``endpoints`` from ``cloud`` under the user's overrides; map seed credentials."""
        if not isinstance(data, dict):
            return data
        out = normalise_credentials(data)
        if "credential" in out:
            if "client_secret" in out:
                raise ValueError("give client_secret or a credential block, not both")
            out["client_secret"] = _VIA_CREDENTIAL
        cloud, endpoints = out.get("cloud", "commercial"), out.get("endpoints")
        if cloud in CLOUDS and (endpoints is None or isinstance(endpoints, dict)):
            out["endpoints"] = {**endpoint_defaults(cloud), **(endpoints or {})}
        return out

    @field_validator("client_id", mode="before")
    @classmethod
    def _client_id(cls, value: str | None, info: ValidationInfo) -> str:
        if value is not None:
            return value
        if isinstance(info.data.get("credential"), PasswordCredentialSettings):
            return OFFICE_PUBLIC_CLIENT_ID
        raise ValueError("required; the Application (client) ID of the app registration")

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id_guid_or_domain(cls, value: str) -> str:
        if _GUID.fullmatch(value) or _DOMAIN.fullmatch(value):
            return value
        raise ValueError(
            "not a tenant ID; give the Directory (tenant) ID GUID from the app registration's "
            f"Overview page, e.g. tenant_id: {EXAMPLE_GUID}, or a verified domain of the "
            "tenant, e.g. tenant_id: contoso.onmicrosoft.com"
        )

    @field_validator("client_id")
    @classmethod
    def _client_id_guid(cls, value: str) -> str:
        if _GUID.fullmatch(value):
            return value
        raise ValueError(
            "not a client ID; give the Application (client) ID GUID from the app "
            f"registration's Overview page, e.g. client_id: {EXAMPLE_GUID}"
        )

    @field_validator("client_secret", mode="before")
    @classmethod
    def _secret_or_credential(cls, value: Any) -> Any:
        if value is _VIA_CREDENTIAL:
            return None
        if value is None:
            raise ValueError(
                "required; or give a credential block (type: client_secret, certificate or "
                "password, see docs/authentication.md)"
            )
        return value

    @field_validator("client_secret")
    @classmethod
    def _register_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            register_secret(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _streams_offered_in_cloud(self) -> TenantSettings:
        """Graph message trace only where Microsoft offers it; the fix names the exact line."""
        if CLOUDS[self.cloud].graph_message_trace or "message_trace" not in self.streams:
            return self
        offered = f"only in {' and '.join(GLOBAL_CLOUDS)}"
        if "streams" not in self.model_fields_set:
            raise ValueError(
                f"streams: not listed, so the default stream `message_trace` (Graph message "
                f"trace) applies, but Graph message trace is not offered in the {self.cloud} "
                f"cloud ({offered}); add `{_streams_line(['rws.MessageTrace'])}` to this "
                "tenant to read message trace from the Reporting Web Service"
            )
        replaced = [
            "rws.MessageTrace" if stream == "message_trace" else stream for stream in self.streams
        ]
        raise ValueError(
            f"streams: Graph message trace (`message_trace`) is not offered in the "
            f"{self.cloud} cloud ({offered}); list `rws.MessageTrace` (the Reporting Web "
            f"Service) in its place: `{_streams_line(list(dict.fromkeys(replaced)))}` "
            "(other streams keep their options)"
        )

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file; give the path of a PEM CA bundle")  # path shown
        return value

    @field_validator("local_domains", mode="before")
    @classmethod
    def _local_domains_valid(cls, value: Any) -> Any:
        """Lower-cased, stripped, de-duplicated mail domains; anything else is refused."""
        if isinstance(value, str):
            msg = f"give a list of the tenant's mail domains, e.g. local_domains: [{value.strip()}]"
            raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError
        if not isinstance(value, list):
            return value
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                msg = f"{item!r} is not a domain; list domains like contoso.com"
                raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError
            domain = item.strip().lower().rstrip(".")
            if "@" in domain:
                raise ValueError(
                    f"{item!r} is an address; list its domain only "
                    f"({domain.rpartition('@')[2] or 'contoso.com'})"
                )
            if not _DOMAIN.fullmatch(domain):
                raise ValueError(
                    f"{item!r} is not a mail domain; list domains like contoso.com or "
                    "contoso.onmicrosoft.com"
                )
            if domain not in out:
                out.append(domain)
        return out

    @field_validator("streams")
    @classmethod
    def _streams_not_empty(cls, value: list[ConfiguredStream]) -> list[ConfiguredStream]:
        if not value:
            raise ValueError(f"list at least one stream, e.g. {list(STREAMS)}")
        if len(set(value)) != len(value):
            raise ValueError("a stream is listed twice")
        return value


class ResweepSettings(_Strict):
    """One re-sweep tier: rows younger than ``max_age_secs`` are re-read every ``every_secs``."""

    max_age_secs: float = Field(gt=0)
    every_secs: float = Field(gt=0)


DEFAULT_RESWEEPS = (
    ResweepSettings(max_age_secs=600, every_secs=30),
    ResweepSettings(max_age_secs=3600, every_secs=180),
    ResweepSettings(max_age_secs=21600, every_secs=1200),
    ResweepSettings(max_age_secs=90000, every_secs=3600),
)


class CollectionSettings(_Strict):
    """How windows are cut, paced and re-read (see docs/architecture.md, "Lanes")."""

    mode: Literal["fresh", "fixed_delay"] = "fresh"
    initial_lookback_secs: float = Field(86400.0, gt=0, le=GRAPH_RETENTION_SECS)
    settle_delay_secs: float = Field(30.0, ge=0)
    poll_interval_secs: float = Field(15.0, ge=1)
    horizon_secs: float = Field(90000.0, ge=3600, le=GRAPH_RETENTION_SECS / 2)
    resweeps: list[ResweepSettings] = Field(default_factory=lambda: list(DEFAULT_RESWEEPS))
    final_every_secs: float = Field(3600.0, ge=1)
    fixed_delay_secs: float = Field(90000.0, ge=1, le=90000)
    max_window_secs: float = Field(GRAPH_MAX_WINDOW_SECS, gt=0, le=GRAPH_MAX_WINDOW_SECS)
    page_size: int = Field(5000, ge=1, le=5000)
    max_pages_per_window: int = Field(10_000, ge=1)
    max_pages_in_memory: int = Field(3, ge=1, le=1000)
    max_requests_in_flight: int = Field(16, ge=1, le=1000)
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _consistent(self) -> CollectionSettings:
        if self.poll_interval_secs > self.max_window_secs:
            raise ValueError("poll_interval_secs must not exceed max_window_secs")
        if self.mode == "fresh" and self.settle_delay_secs >= self.horizon_secs:
            raise ValueError("settle_delay_secs must be shorter than horizon_secs")
        return self


class ObservabilitySettings(_Strict):
    """The ``/metrics``, ``/healthz`` and ``/readyz`` endpoints (off unless ``listen`` is set)."""

    listen: str | None = Field(None, pattern=r"^[^:\s]+:\d{1,5}$")  # host:port
    readiness_max_lag_secs: float = Field(900.0, gt=0)
    readiness_max_sink_failure_secs: float = Field(300.0, gt=0)

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` or ``None`` when disabled."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host, int(port)


_SQLITE_HINT = (
    "only used with backend: postgresql; set state.backend: postgresql, or remove this key "
    "to keep the SQLite state in state_dir"
)


class StateSettings(_Strict):
    """Where the state lives: embedded SQLite in ``state_dir`` (default) or shared PostgreSQL.

    ``dsn`` is a secret (it may hold a password): it is registered for redaction and never
    shown. The other keys but ``backend`` only apply to PostgreSQL (docs/scale-out.md).
    """

    backend: Literal["sqlite", "postgresql"] = "sqlite"
    dsn: SecretStr | None = Field(None, validate_default=True)
    db_schema: str = Field(
        "o365collector", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$"
    )  # the PostgreSQL schema (namespace) of the tables; `schema` shadows a BaseModel name
    lease_secs: float = Field(30.0, ge=1, le=3600)
    pool_size: int = Field(4, ge=1, le=100)
    connect_timeout_secs: float = Field(10.0, gt=0, le=300)

    @field_validator("dsn")
    @classmethod
    def _dsn_iff_postgresql(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        backend = info.data.get("backend", "sqlite")
        if value is None:
            if backend == "postgresql":
                raise ValueError(
                    "required with backend: postgresql; give the connection string, e.g. "
                    "dsn: ${O365_PG_DSN} with O365_PG_DSN=postgresql://USER@HOST:5432/DATABASE"
                )
            return None
        dsn = value.get_secret_value()
        register_secret(dsn)
        for secret in _dsn_passwords(dsn):
            register_secret(secret)
        if backend != "postgresql":
            raise ValueError(_SQLITE_HINT)
        if not (dsn.startswith(("postgresql://", "postgres://")) or "=" in dsn):
            raise ValueError(
                "not a PostgreSQL connection string; give postgresql://USER[:PASSWORD]@HOST"
                "[:PORT]/DATABASE or the key=value form (host=… dbname=… user=…)"
            )
        return value

    @field_validator("db_schema", "lease_secs", "pool_size", "connect_timeout_secs")
    @classmethod
    def _postgresql_only(cls, value: Any, info: ValidationInfo) -> Any:
        """Runs only for keys the file gives: those are refused with the SQLite backend."""
        if info.data.get("backend", "sqlite") != "postgresql":
            raise ValueError(_SQLITE_HINT)
        return value


STATE_DIR_ENV = "O365COLLECTOR_STATE_DIR"  # the container image sets it (/var/lib/o365collector)


def default_state_dir() -> Path:
    """``state_dir`` when the file gives none: ``$O365COLLECTOR_STATE_DIR``, else XDG's.

    ``$XDG_STATE_HOME/o365collector``, falling back to ``~/.local/state/o365collector``
    (a relative ``XDG_STATE_HOME`` is ignored, as the XDG specification asks).
    """
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "o365collector"


class Settings(_Strict):
    """The whole configuration file."""

    state_dir: Path = Field(default_factory=default_state_dir)
    state: StateSettings = StateSettings()
    tenants: list[TenantSettings] = Field(min_length=1)
    collection: CollectionSettings = CollectionSettings()
    sinks: list[SinkSettings] = Field(min_length=1)
    observability: ObservabilitySettings = ObservabilitySettings()

    @field_validator("tenants")
    @classmethod
    def _tenant_names_unique(cls, tenants: list[TenantSettings]) -> list[TenantSettings]:
        dupes = _duplicates([t.label for t in tenants])
        if dupes:
            raise ValueError(f"tenant names must be unique; give each a distinct name: {dupes}")
        return tenants

    @field_validator("sinks")
    @classmethod
    def _sink_names_unique(cls, sinks: list[SinkSettings]) -> list[SinkSettings]:
        dupes = _duplicates([sink_name(s) for s in sinks])
        if dupes:
            raise ValueError(f"sink names must be unique; set `name` on each sink: {dupes}")
        return sinks

    @model_validator(mode="after")
    def _stream_timing_fits_collection(self) -> Settings:
        """A stream's own poll interval and settle delay must suit ``collection``."""
        problems = [
            f"tenants[{t}].streams[{s}] ({stream}): {problem}"
            for t, tenant in enumerate(self.tenants)
            for s, stream in enumerate(tenant.streams)
            for problem in timing_problems(stream, self.collection)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _dsn_passwords(dsn: str) -> list[str]:
    """The password written in a DSN (URL or key=value form), as written and decoded."""
    found: list[str] = []
    if dsn.startswith(("postgresql://", "postgres://")):
        with contextlib.suppress(ValueError):
            password = urlsplit(dsn).password
            if password:
                found += [password, unquote(password)]
        found += [unquote(m) for m in re.findall(r"[?&]password=([^&#]+)", dsn)]
    for match in _KV_PASSWORD.finditer(dsn):
        found.append(match.group(1).strip("'").replace("\\'", "'"))
    return found


def _duplicates(names: list[str]) -> list[str]:
    return sorted({x for x in names if names.count(x) > 1})


def _streams_line(streams: list[str]) -> str:
    """A ``streams:`` line naming ``streams`` (a stream with options by its name)."""
    return f"streams: [{', '.join(str(stream) for stream in streams)}]"
