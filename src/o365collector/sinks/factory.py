"""Build a sink from its settings: register its secrets, then hand over to its component.

Each sink type is a component folder, ``sinks/<type>/``, whose ``build`` turns its
settings model into the sink; this module only routes a model to its component.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import assert_never

from pydantic import SecretStr

from o365collector.clock import Clock, SystemClock
from o365collector.config.sinks import (
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
from o365collector.sinks.devo import build as devo
from o365collector.sinks.elastic import build as elastic
from o365collector.sinks.http import build as http
from o365collector.sinks.jsonl import build as jsonl
from o365collector.sinks.sekoia import build as sekoia
from o365collector.sinks.splunk import build as splunk
from o365collector.sinks.stdout import build as stdout
from o365collector.sinks.syslog import build as syslog


def build_sink(  # noqa: PLR0911 - one route per type
    settings: SinkSettings, clock: Clock | None = None, *, executor: Executor | None = None
) -> Sink:
    """Instantiate the sink described by ``settings``; its secrets are registered for redaction.

    ``executor`` runs the blocking writes of the file sink (default: the loop's thread pool).

    Raises:
        SinkError: TLS files cannot be loaded (socket sinks read them here, HTTP sinks
            in ``start``).
    """
    clock = clock or SystemClock()
    for secret in _secrets(settings):
        register_secret(secret.get_secret_value())
    match settings:
        case JsonlSinkSettings():
            return jsonl.build(settings, clock, executor)
        case StdoutSinkSettings():
            return stdout.build(settings, clock)
        case DevoSinkSettings():
            return devo.build(settings, clock)
        case SyslogSinkSettings():
            return syslog.build(settings, clock)
        case SekoiaSinkSettings():
            return sekoia.build(settings, clock)
        case SplunkHecSinkSettings():
            return splunk.build(settings, clock)
        case ElasticsearchSinkSettings():
            return elastic.build(settings, clock)
        case HttpSinkSettings():
            return http.build(settings, clock)
        case _:
            assert_never(settings)


def _secrets(settings: SinkSettings) -> list[SecretStr]:
    found = [getattr(settings, key, None) for key in sorted(SECRET_KEYS)]
    return [s for s in found if isinstance(s, SecretStr)]
