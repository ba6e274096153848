"""Emulator configuration: tenants and dataset settings, validation, mapping loader, demo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MESSAGE_TRACE_ROLE = "ExchangeMessageTrace.Read.All"
RWS_DELEGATED_SCOPE = "ReportingWebService.Read"
REPORTING_ROLE = "ReportingWebService.Read.All"  # Office 365 Exchange Online app permission
# Directory roles whose members (or service principals) may read RWS reports (api-facts §2.2).
READER_ROLES = frozenset(
    {"Global Reader", "Security Reader", "Global Administrator", "Exchange Administrator"}
)
OFFICE_PUBLIC_CLIENT_ID = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
SIGN_IN_REFUSALS = frozenset({50076, 50079, 50158, 53003})


class EmulatorSettingsError(ValueError):
    """Invalid emulator settings; the message names the key path and the rule."""


@dataclass
class TenantSpec:
    """One emulated Microsoft 365 tenant and its single registered application.

    Attributes:
        tenant_id: Directory (tenant) id; the token endpoint also accepts ``domain``.
        client_id: Application (client) id of the collector's app registration.
        client_secret: The app's client secret value. Never echoed or logged.
        domain: Accepted (recipient) domain of the tenant.
        rows: Number of message-trace rows in the history span (exact).
        quota_requests: Accepted Graph message-trace requests per running window.
        quota_window_secs: Length of the running quota window in seconds.
        roles: Application roles put in issued tokens; without
            ``ExchangeMessageTrace.Read.All`` the Graph API answers 403.
        service_principal: False emulates a tenant that lacks the service principal of
            app 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373: the Graph API answers 401.
        secret_expired: The client secret is right but expired (AADSTS7000222).
        certificate: PEM certificate uploaded to the app: client assertions signed by its
            key are accepted.
        username: A user who may sign in with the password flow (with ``password``).
        password: That user's password. Never echoed or logged.
        public_client_id: The public client the password flow must use.
        sign_in_refusal: AADSTS code refusing every password sign-in after the password
            check: 50076 / 50079 (MFA), 50158 (external challenge), 53003 (conditional
            access).
        delegated_scopes: The ``scp`` of tokens issued to the user.
        directory_roles: Entra ID roles of the app's service principal; without one of
            ``READER_ROLES`` the Reporting Web Service answers 403 "No permission…".
        rws_reports: Reports the tenant's RWS service document lists (None: all); others
            answer 404.
    """

    tenant_id: str
    client_id: str
    client_secret: str
    domain: str = "contoso.com"
    rows: int = 10_000
    quota_requests: int = 100
    quota_window_secs: float = 300.0
    roles: list[str] = field(default_factory=lambda: [MESSAGE_TRACE_ROLE, REPORTING_ROLE])
    service_principal: bool = True
    secret_expired: bool = False
    certificate: str | None = None
    username: str | None = None
    password: str | None = None
    public_client_id: str = OFFICE_PUBLIC_CLIENT_ID
    sign_in_refusal: int | None = None
    delegated_scopes: list[str] = field(
        default_factory=lambda: [MESSAGE_TRACE_ROLE, RWS_DELEGATED_SCOPE]
    )
    directory_roles: list[str] = field(default_factory=lambda: ["Global Reader"])
    rws_reports: list[str] | None = None

    def __post_init__(self) -> None:
        """Validate the spec; raises EmulatorSettingsError naming the field."""
        if self.sign_in_refusal is not None and self.sign_in_refusal not in SIGN_IN_REFUSALS:
            raise EmulatorSettingsError(
                f"tenants[].sign_in_refusal: one of {sorted(SIGN_IN_REFUSALS)} (AADSTS codes)"
            )
        for name in ("tenant_id", "client_id", "client_secret", "domain"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise EmulatorSettingsError(f"tenants[].{name}: must be a non-empty string")
        if self.rows < 0:
            raise EmulatorSettingsError("tenants[].rows: must be >= 0")
        if self.quota_requests < 1:
            raise EmulatorSettingsError("tenants[].quota_requests: must be >= 1")
        if self.quota_window_secs <= 0:
            raise EmulatorSettingsError("tenants[].quota_window_secs: must be > 0")


def _check_range(name: str, value: tuple[float, float]) -> None:
    low, high = value
    if low < 0 or high < low:
        raise EmulatorSettingsError(
            f"{name}: must be (low, high) with 0 <= low <= high, got {value!r}"
        )


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise EmulatorSettingsError(f"{name}: must be within [0, 1], got {value!r}")


@dataclass
class EmulatorSettings:
    """Everything that determines the emulated dataset and API limits.

    The dataset is a pure function of these settings (and ``anchor``): the same seed
    always produces the same rows, visibility times and status histories.

    Attributes:
        seed: Seed of the per-tenant random generators.
        tenants: Emulated tenants (at least one; ids unique).
        history_secs: Rows' receivedDateTime spread over [anchor - history_secs, anchor].
        live_rows_per_sec: Rows per second per tenant received after the anchor.
        live_secs: How long after the anchor live rows keep arriving (pre-generated).
        multi_recipient_fraction: Share of messages with 2-5 recipients (one row each).
        visible_delay_secs: Normal visibility delay after receivedDateTime (uniform).
        late_fraction: Share of rows that become visible late.
        late_delay_secs: Late rows' visibility delay (uniform).
        status_change_fraction: Share of rows first visible as gettingStatus/pending.
        status_change_delay_secs: Delay before each status change (uniform).
        token_lifetime_secs: Lifetime of issued access tokens.
        anchor: UTC end of the history span; None means the clock at construction.
        max_top: Largest accepted ``$top``.
        default_top: Page size when ``$top`` is absent.
        rws_aggregate_delay_secs: How long after its end an RWS aggregate bucket appears.
        rws_max_top: Largest RWS ``$top`` (and the RWS page size without one).
        rws_skiptoken_ceiling: RWS ``$skiptoken`` from which the service answers 500.
        rws_page_size: The service's own RWS page size (server-driven paging), or None
            for pages of the asked ``$top`` with a next link (same ``$top``) while rows
            remain. With a size, a page holds at most that many rows; with
            ``rws_next_links`` a full page of a larger ``$top`` carries a link asking for
            the *remaining* ``$top`` (OData v3), and a page that completes its ``$top``
            carries none, whatever rows remain.
        rws_next_links: False: the service never sends next links (the client steps
            ``$skiptoken`` itself); with ``rws_page_size`` below the asked ``$top`` it
            cuts pages short without saying so.
        extra_statuses: Status members Graph added after the client was written (e.g.
            ``recalled``). A share of rows shows one of them first, then its own history;
            Graph serves it as ``unknownFutureValue`` unless the request sends
            ``Prefer: include-unknown-enum-members``. RWS and details never show them.
            Empty (the default): the dataset is unchanged.
        extra_status_fraction: Share of rows that show an extra status.
        extra_status_secs: How long after first visibility a row shows it (uniform).
    """

    seed: int = 1
    tenants: list[TenantSpec] = field(default_factory=list)
    history_secs: float = 3 * 86400.0
    live_rows_per_sec: float = 0.0
    live_secs: float = 3600.0
    multi_recipient_fraction: float = 0.2
    visible_delay_secs: tuple[float, float] = (5.0, 60.0)
    late_fraction: float = 0.05
    late_delay_secs: tuple[float, float] = (300.0, 86400.0)
    status_change_fraction: float = 0.3
    status_change_delay_secs: tuple[float, float] = (30.0, 3600.0)
    token_lifetime_secs: int = 3599
    anchor: datetime | None = None
    max_top: int = 5000
    default_top: int = 1000
    rws_aggregate_delay_secs: float = 3600.0
    rws_max_top: int = 2000
    rws_skiptoken_ceiling: int = 999_999
    rws_page_size: int | None = None
    rws_next_links: bool = True
    extra_statuses: list[str] = field(default_factory=list)
    extra_status_fraction: float = 0.05
    extra_status_secs: tuple[float, float] = (30.0, 3600.0)

    def __post_init__(self) -> None:
        """Validate the settings; raises EmulatorSettingsError naming the field."""
        ids = [t.tenant_id.lower() for t in self.tenants]
        if len(set(ids)) != len(ids):
            raise EmulatorSettingsError("tenants: tenant_id values must be unique")
        if self.history_secs <= 0:
            raise EmulatorSettingsError("history_secs: must be > 0")
        if self.live_rows_per_sec < 0 or self.live_secs < 0:
            raise EmulatorSettingsError("live_rows_per_sec/live_secs: must be >= 0")
        _check_fraction("multi_recipient_fraction", self.multi_recipient_fraction)
        _check_fraction("late_fraction", self.late_fraction)
        _check_fraction("status_change_fraction", self.status_change_fraction)
        _check_range("visible_delay_secs", self.visible_delay_secs)
        _check_range("late_delay_secs", self.late_delay_secs)
        _check_range("status_change_delay_secs", self.status_change_delay_secs)
        if self.token_lifetime_secs < 1:
            raise EmulatorSettingsError("token_lifetime_secs: must be >= 1")
        if self.anchor is not None and self.anchor.utcoffset() is None:
            raise EmulatorSettingsError("anchor: must be timezone-aware (UTC)")
        if self.max_top < 1 or not 1 <= self.default_top <= self.max_top:
            raise EmulatorSettingsError("default_top/max_top: need 1 <= default_top <= max_top")
        if self.rws_aggregate_delay_secs < 0:
            raise EmulatorSettingsError("rws_aggregate_delay_secs: must be >= 0")
        if self.rws_max_top < 1 or self.rws_skiptoken_ceiling < 1:
            raise EmulatorSettingsError("rws_max_top/rws_skiptoken_ceiling: must be >= 1")
        if self.rws_page_size is not None and self.rws_page_size < 1:
            raise EmulatorSettingsError("rws_page_size: must be >= 1 (or null)")
        _check_extra_statuses(self.extra_statuses)
        _check_fraction("extra_status_fraction", self.extra_status_fraction)
        _check_range("extra_status_secs", self.extra_status_secs)


# Members every Graph client knows (the emulator's own statuses) and the placeholder.
_GRAPH_MEMBERS = frozenset(
    {
        "gettingstatus",
        "pending",
        "delivered",
        "failed",
        "expanded",
        "quarantined",
        "filteredasspam",
        "unknownfuturevalue",
    }
)


def _check_extra_statuses(values: list[str]) -> None:
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise EmulatorSettingsError("extra_statuses: each must be a non-empty string")
        if value.lower() in _GRAPH_MEMBERS:
            raise EmulatorSettingsError(
                f"extra_statuses: {value!r} is a member clients already know; name a new one"
            )


# Field name -> expected kind in a mapping: "str", "int", "float", "range", "bool", "roles".
_TENANT_KINDS = {
    "tenant_id": "str",
    "client_id": "str",
    "client_secret": "str",
    "domain": "str",
    "rows": "int",
    "quota_requests": "int",
    "quota_window_secs": "float",
    "roles": "roles",
    "service_principal": "bool",
    "secret_expired": "bool",
    "certificate": "str",
    "username": "str",
    "password": "str",
    "public_client_id": "str",
    "sign_in_refusal": "int",
    "delegated_scopes": "roles",
    "directory_roles": "roles",
    "rws_reports": "roles",
}
_SETTINGS_KINDS = {
    "seed": "int",
    "history_secs": "float",
    "live_rows_per_sec": "float",
    "live_secs": "float",
    "multi_recipient_fraction": "float",
    "visible_delay_secs": "range",
    "late_fraction": "float",
    "late_delay_secs": "range",
    "status_change_fraction": "float",
    "status_change_delay_secs": "range",
    "token_lifetime_secs": "int",
    "max_top": "int",
    "default_top": "int",
    "rws_aggregate_delay_secs": "float",
    "rws_max_top": "int",
    "rws_skiptoken_ceiling": "int",
    "rws_page_size": "int",
    "rws_next_links": "bool",
    "extra_statuses": "roles",
    "extra_status_fraction": "float",
    "extra_status_secs": "range",
}


def _number(path: str, value: Any, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EmulatorSettingsError(f"{path}: expected a number, got {type(value).__name__}")
    if integer and not isinstance(value, int):
        raise EmulatorSettingsError(f"{path}: expected an integer, got {value!r}")
    return value if integer else float(value)


def _coerce(path: str, value: Any, kind: str) -> Any:
    """Check one mapping value against its kind; return it in the dataclass's type."""
    if kind in ("int", "float"):
        return _number(path, value, integer=kind == "int")
    if kind == "range":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise EmulatorSettingsError(f"{path}: expected [low, high]")
        return (
            _number(f"{path}[0]", value[0], integer=False),
            _number(f"{path}[1]", value[1], integer=False),
        )
    if kind == "roles":
        if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
            raise EmulatorSettingsError(f"{path}: expected a list of strings")
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise EmulatorSettingsError(f"{path}: expected true or false")
        return value
    if not isinstance(value, str):
        raise EmulatorSettingsError(f"{path}: expected a string")
    return value


def _fields(
    path: str, data: Any, kinds: dict[str, str], also: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Coerce the ``kinds`` keys of a mapping; other keys must be in ``also``."""
    where = path or "emulator settings"
    if not isinstance(data, Mapping):
        raise EmulatorSettingsError(f"{where}: expected a mapping")
    unknown = sorted(str(k) for k in set(data) - set(kinds) - also)
    if unknown:
        raise EmulatorSettingsError(f"{where}: unknown key(s) {', '.join(unknown)}")
    prefix = f"{path}." if path else ""
    return {k: _coerce(prefix + k, v, kinds[k]) for k, v in data.items() if k in kinds}


def _parse_anchor(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise EmulatorSettingsError(f"anchor: not an ISO 8601 datetime: {value!r}") from exc
    else:
        raise EmulatorSettingsError("anchor: expected an ISO 8601 string")
    if dt is not None and dt.utcoffset() is None:
        raise EmulatorSettingsError("anchor: must carry a timezone (use a trailing Z)")
    return None if dt is None else dt.astimezone(UTC)


def _tenant_from_mapping(index: int, data: Any) -> TenantSpec:
    path = f"tenants[{index}]"
    kwargs = _fields(path, data, _TENANT_KINDS)
    missing = [k for k in ("tenant_id", "client_id", "client_secret") if k not in kwargs]
    if missing:
        raise EmulatorSettingsError(f"{path}: missing required key(s) {', '.join(missing)}")
    try:
        return TenantSpec(**kwargs)
    except ValueError as exc:
        raise EmulatorSettingsError(str(exc).replace("tenants[]", path)) from exc


def settings_from_mapping(data: Mapping[str, Any]) -> EmulatorSettings:
    """Build settings from a JSON/YAML mapping whose keys are the dataclass field names.

    Args:
        data: Mapping with EmulatorSettings keys; ``tenants`` is a list of mappings with
            TenantSpec keys; ranges are 2-element lists; ``anchor`` an ISO 8601 string.

    Returns:
        Validated settings.

    Raises:
        EmulatorSettingsError: (a ValueError) on unknown keys, wrong types or invalid
            values; the message names the key path (e.g. ``tenants[0].rows``) and the rule.
    """
    kwargs = _fields("", data, _SETTINGS_KINDS, frozenset({"tenants", "anchor"}))
    if "anchor" in data:
        kwargs["anchor"] = _parse_anchor(data["anchor"])
    if "tenants" in data:
        tenants = data["tenants"]
        if not isinstance(tenants, list):
            raise EmulatorSettingsError("tenants: expected a list")
        kwargs["tenants"] = [_tenant_from_mapping(i, t) for i, t in enumerate(tenants)]
    try:
        return EmulatorSettings(**kwargs)
    except EmulatorSettingsError:
        raise
    except ValueError as exc:
        raise EmulatorSettingsError(str(exc)) from exc


DEMO_TENANT_ID = "00000000-0000-0000-0000-0000000000d1"
DEMO_CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"
DEMO_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105 - public demo value


def default_settings() -> EmulatorSettings:
    """Settings for ``o365collector demo``: one tenant, 20,000 rows over 3 days, 2 live rows/s.

    Returns:
        Settings with tenant ``00000000-0000-0000-0000-0000000000d1``, client id
        ``00000000-0000-0000-0000-0000000000c1`` and secret
        ``demo-secret-not-for-production``; live rows keep arriving for 24 hours.
    """
    return EmulatorSettings(
        seed=1,
        tenants=[
            TenantSpec(
                tenant_id=DEMO_TENANT_ID,
                client_id=DEMO_CLIENT_ID,
                client_secret=DEMO_CLIENT_SECRET,
                domain="contoso.com",
                rows=20_000,
            )
        ],
        history_secs=3 * 86400.0,
        live_rows_per_sec=2.0,
        live_secs=86400.0,
    )
