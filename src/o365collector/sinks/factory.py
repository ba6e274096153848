"""Build a sink from its settings: register its secrets, then hand over to its component.

Each sink type is a component folder, ``sinks/<type>/``, whose ``build`` turns its
settings model into the sink; this module only routes a model to its component. A
component (and the normalizers, for ``ecs`` / ``ocsf``) is imported when a sink of its
type is built: what is not configured is not resident in the daemon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from typing import assert_never

from pydantic import SecretStr

from o365collector.clock import Clock, SystemClock
from o365collector.config.sinks import (
    NORMALIZED,
    DevoSinkSettings,
    ElasticsearchSinkSettings,
    HttpSinkSettings,
    JsonlSinkSettings,
    SekoiaSinkSettings,
    SinkSettings,
    SplunkHecSinkSettings,
    StdoutSinkSettings,
    SyslogSinkSettings,
)
from o365collector.observability.redact import SECRET_KEYS, register_secret
from o365collector.sinks.base import Sink
from o365collector.sinks.encode import Payload


def build_sink(  # noqa: PLR0911 - one route per type
    settings: SinkSettings,
    clock: Clock | None = None,
    *,
    executor: Executor | None = None,
    local_domains: Mapping[str, Sequence[str]] | None = None,
) -> Sink:
    """Instantiate the sink described by ``settings``; its secrets are registered for redaction.

    ``executor`` runs the blocking writes of the file sink (default: the loop's thread pool).
    ``local_domains`` maps each tenant's label to its mail domains, for the direction of
    ``payload: ecs`` / ``ocsf`` documents (none: no direction).

    Raises:
        SinkError: TLS files cannot be loaded (socket sinks read them here, HTTP sinks
            in ``start``).
    """
    clock = clock or SystemClock()
    for secret in _secrets(settings):
        register_secret(secret.get_secret_value())
    payload = sink_payload(settings, local_domains)
    match settings:
        case JsonlSinkSettings():
            from o365collector.sinks.jsonl import build as jsonl  # noqa: PLC0415

            return jsonl.build(settings, clock, executor, payload)
        case StdoutSinkSettings():
            from o365collector.sinks.stdout import build as stdout  # noqa: PLC0415

            return stdout.build(settings, clock, payload)
        case DevoSinkSettings():
            from o365collector.sinks.devo import build as devo  # noqa: PLC0415

            return devo.build(settings, clock, payload)
        case SyslogSinkSettings():
            from o365collector.sinks.syslog import build as syslog  # noqa: PLC0415

            return syslog.build(settings, clock, payload)
        case SekoiaSinkSettings():
            from o365collector.sinks.sekoia import build as sekoia  # noqa: PLC0415

            return sekoia.build(settings, clock, payload)
        case SplunkHecSinkSettings():
            from o365collector.sinks.splunk import build as splunk  # noqa: PLC0415

            return splunk.build(settings, clock, payload)
        case ElasticsearchSinkSettings():
            from o365collector.sinks.elastic import build as elastic  # noqa: PLC0415

            return elastic.build(settings, clock, payload)
        case HttpSinkSettings():
            from o365collector.sinks.http import build as http  # noqa: PLC0415

            return http.build(settings, clock, payload)
        case _:
            assert_never(settings)


def sink_payload(
    settings: SinkSettings, local_domains: Mapping[str, Sequence[str]] | None = None
) -> Payload:
    """What the sink ships: its ``payload``, with a normalizer for ``ecs`` and ``ocsf``."""
    kind = settings.payload
    if kind not in NORMALIZED:
        return Payload(kind)
    from o365collector.normalize.normalizer import Normalizer  # noqa: PLC0415 - ecs/ocsf only

    normalizer = Normalizer(
        "ecs" if kind == "ecs" else "ocsf",
        local_domains=local_domains,
        include_original=settings.include_original,
    )
    return Payload(kind, normalizer)


def _secrets(settings: SinkSettings) -> list[SecretStr]:
    found = [getattr(settings, key, None) for key in sorted(SECRET_KEYS)]
    return [s for s in found if isinstance(s, SecretStr)]
