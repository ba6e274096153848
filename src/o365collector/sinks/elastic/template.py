"""The ECS data streams: their names and the index template the sink installs for them.

With ``payload: ecs`` and no ``index``, each stream goes to its own data stream,
``logs-o365collector.<dataset>-<namespace>`` (Elastic's ``{type}-{dataset}-{namespace}``
scheme). The template ``o365collector-ecs`` matches them all, ranks above Elastic's
built-in ``logs-*-*`` template (priority 100), and maps the fields the ECS mappers emit;
the mappings are built from :data:`FIELDS`, one declared line per field.
"""

from __future__ import annotations

import re
from typing import Any

from o365collector import __version__
from o365collector.normalize.ecs import ECS_VERSION, ENVELOPE_NAMESPACE, PRODUCT_NAMESPACE

TEMPLATE_NAME = "o365collector-ecs"
DATASET_PREFIX = "o365collector"
INDEX_PATTERN = f"logs-{DATASET_PREFIX}.*-*"
PRIORITY = 200  # above Elastic's built-in logs-*-* (100), which would map strings as text
_NOT_IN_DATASET = re.compile(r"[^a-z0-9_]")

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
DATE: dict[str, Any] = {"type": "date"}
IP: dict[str, Any] = {"type": "ip"}
LONG: dict[str, Any] = {"type": "long"}
STORED_ONLY: dict[str, Any] = {"type": "keyword", "index": False, "doc_values": False}
TEXT_AND_KEYWORD: dict[str, Any] = {
    "type": "keyword",
    "ignore_above": 1024,
    "fields": {"text": {"type": "match_only_text"}},
}
FLATTENED: dict[str, Any] = {"type": "flattened", "ignore_above": 1024}


def _user(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{prefix}.{name}", KEYWORD) for name in ("email", "id", "name", "domain")]


def _side(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{prefix}.ip", IP), (f"{prefix}.domain", KEYWORD), *_user(f"{prefix}.user")]


FIELDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("@timestamp", DATE),
    ("ecs.version", KEYWORD),
    ("event.id", KEYWORD),
    ("event.kind", KEYWORD),
    ("event.category", KEYWORD),
    ("event.type", KEYWORD),
    ("event.outcome", KEYWORD),
    ("event.action", KEYWORD),
    ("event.code", KEYWORD),
    ("event.reason", KEYWORD),
    ("event.severity", LONG),
    ("event.duration", LONG),
    ("event.start", DATE),
    ("event.end", DATE),
    ("event.created", DATE),
    ("event.ingested", DATE),
    ("event.original", STORED_ONLY),
    ("email.direction", KEYWORD),
    ("email.from.address", KEYWORD),
    ("email.to.address", KEYWORD),
    ("email.cc.address", KEYWORD),
    ("email.sender.address", KEYWORD),
    ("email.reply_to.address", KEYWORD),
    ("email.local_id", KEYWORD),
    ("email.message_id", KEYWORD),
    ("email.subject", TEXT_AND_KEYWORD),
    ("email.delivery_timestamp", DATE),
    ("email.origination_timestamp", DATE),
    ("email.attachments.file.size", LONG),
    ("email.attachments.file.name", KEYWORD),
    ("email.attachments.file.extension", KEYWORD),
    ("email.attachments.file.mime_type", KEYWORD),
    *_side("source"),
    *_side("destination"),
    *_user("user"),
    ("message", {"type": "match_only_text"}),
    ("related.user", KEYWORD),
    ("related.ip", IP),
    ("related.hosts", KEYWORD),
    ("url.full", KEYWORD),
    ("url.original", KEYWORD),
    ("url.domain", KEYWORD),
    ("url.path", KEYWORD),
    ("url.scheme", KEYWORD),
    ("threat.indicator.type", KEYWORD),
    ("threat.software.name", KEYWORD),
    ("rule.name", KEYWORD),
    ("network.direction", KEYWORD),
    ("observer.vendor", KEYWORD),
    ("observer.product", KEYWORD),
    (f"{ENVELOPE_NAMESPACE}.tenant", KEYWORD),
    (f"{ENVELOPE_NAMESPACE}.stream", KEYWORD),
    (f"{ENVELOPE_NAMESPACE}.event_id", KEYWORD),
    (PRODUCT_NAMESPACE, FLATTENED),  # the record's leftovers: any keys, never a mapping clash
)
"""Every mapped field (dotted path, mapping). Other strings map as keywords."""


def dataset(stream: str) -> str:
    """The dataset of ``stream``: ``rws.MailTraffic`` → ``o365collector.rws_mailtraffic``.

    Lower-cased, and ``.`` and anything else a dataset may not hold (``-``, spaces,
    ``\\ / * ? " < > | , # :``) replaced by ``_``.
    """
    return f"{DATASET_PREFIX}.{_NOT_IN_DATASET.sub('_', stream.lower())}"


def data_stream(stream: str, namespace: str) -> str:
    """``logs-<dataset>-<namespace>``, e.g. ``logs-o365collector.message_trace-default``."""
    return f"logs-{dataset(stream)}-{namespace}"


def properties(fields: tuple[tuple[str, dict[str, Any]], ...] = FIELDS) -> dict[str, Any]:
    """Nested ``properties`` of the mappings from dotted field paths."""
    root: dict[str, Any] = {}
    for path, mapping in fields:
        *parents, leaf = path.split(".")
        node = root
        for name in parents:
            node = node.setdefault(name, {"properties": {}})["properties"]
        node[leaf] = dict(mapping)
    return root


def index_template() -> dict[str, Any]:
    """The body of ``PUT _index_template/o365collector-ecs``."""
    return {
        "index_patterns": [INDEX_PATTERN],
        "data_stream": {},
        "priority": PRIORITY,
        "template": {
            "mappings": {
                "dynamic_templates": [
                    {
                        "strings_as_keyword": {
                            "match_mapping_type": "string",
                            "mapping": dict(KEYWORD),
                        }
                    }
                ],
                "properties": properties(),
            }
        },
        "_meta": {
            "description": "ECS documents of o365collector (rewritten at each start)",
            "managed_by": "o365collector",
            "version": __version__,
            "ecs_version": ECS_VERSION,
        },
    }
