"""Prometheus metrics, in Vector's vocabulary; labels are bounded sets, never ids or URLs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "component_received_events_total",
    "Records read from Microsoft APIs.",
    ["tenant", "stream"],
    registry=REGISTRY,
)
SENT = Counter(
    "component_sent_events_total",
    "Events a sink confirmed delivered.",
    ["sink"],
    registry=REGISTRY,
)
DISCARDED = Counter(
    "component_discarded_events_total",
    "Events a sink refused; they went to the dead-letter file.",
    ["sink", "reason"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "component_errors_total",
    "Errors by stage and type.",
    ["stage", "error_type"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests to Microsoft APIs by status class.",
    ["api", "status_class"],
    registry=REGISTRY,
)
THROTTLED = Counter(
    "api_throttled_total",
    "HTTP 429 answers received.",
    ["api"],
    registry=REGISTRY,
)
RETENTION_CLAMPED = Counter(
    "retention_clamped_seconds_total",
    "Seconds of history skipped because they fell outside the API's retention.",
    ["tenant", "stream"],
    registry=REGISTRY,
)
CHECKPOINT_LAG = Gauge(
    "checkpoint_lag_seconds",
    "Now minus the committed watermark.",
    ["tenant", "stream"],
    registry=REGISTRY,
)
COMMITS = Counter(
    "checkpoint_commits_total",
    "Checkpoint commits.",
    ["tenant", "stream"],
    registry=REGISTRY,
)
NEW_FACTS = Counter(
    "collector_new_facts_total",
    "Facts delivered for the first time, by lane: new rows and status changes.",
    ["tenant", "stream", "lane", "kind"],
    registry=REGISTRY,
)
LANE_WATERMARK_LAG = Gauge(
    "lane_watermark_lag_seconds",
    "Now minus a checkpointed lane's watermark at its last commit.",
    ["tenant", "stream", "lane"],
    registry=REGISTRY,
)
RESWEEP_COMPLETED = Gauge(
    "resweep_last_completed_timestamp_seconds",
    "When each re-sweep band was last read completely (Unix time).",
    ["tenant", "stream", "lane"],
    registry=REGISTRY,
)
BUDGET_IN_WINDOW = Gauge(
    "api_budget_requests_in_window",
    "Requests counted in the tenant's running budget window.",
    ["tenant"],
    registry=REGISTRY,
)
BUDGET_LIMIT = Gauge(
    "api_budget_requests_limit",
    "Requests currently allowed per window (lowered after 429s, recovers slowly).",
    ["tenant"],
    registry=REGISTRY,
)
BUFFER_PUSHED = Counter(
    "buffer_pushed_events_total",
    "Events queued for a sink (queue depth = pushed - popped).",
    ["sink"],
    registry=REGISTRY,
)
BUFFER_POPPED = Counter(
    "buffer_popped_events_total",
    "Events taken from a sink's queue for delivery.",
    ["sink"],
    registry=REGISTRY,
)
STREAM_UP = Gauge(
    "stream_up",
    "1 while a stream commits windows, 0 after it failed (credentials, permission, setup).",
    ["tenant", "stream"],
    registry=REGISTRY,
)
UNKNOWN_VALUES = Counter(
    "collector_unknown_values_total",
    "Rows read with a value the collector does not know (delivered unchanged), re-reads "
    "included; values cut to 40 characters, past 20 distinct ones counted as (other).",
    ["tenant", "stream", "field", "value"],
    registry=REGISTRY,
)
LEASES_HELD = Gauge(
    "collector_tenant_leases_held",
    "Tenant leases this replica holds (PostgreSQL state, shared by replicas).",
    registry=REGISTRY,
)
LEASE_OLDEST_RENEWAL_AGE = Gauge(
    "collector_tenant_lease_renewal_age_seconds",
    "Seconds since this replica last renewed its tenant leases (0 before the first).",
    registry=REGISTRY,
)
LEASE_CHANGES = Counter(
    "collector_tenant_lease_changes_total",
    "Tenant leases this replica acquired (taking over from another replica: takeover), "
    "gave back, or lost.",
    ["change"],
    registry=REGISTRY,
)
TAKEOVER_REDELIVERY_BOUND = Counter(
    "collector_takeover_redelivery_bound_events_total",
    "Events delivered from a lane's first pages after this replica took a tenant over from "
    "one that stopped without handing it back: the previous owner may have delivered them "
    "without committing, so at most these arrive twice (an upper bound).",
    ["tenant", "stream"],
    registry=REGISTRY,
)
