"""Build sinks from their settings (the one place that knows every sink type)."""

from __future__ import annotations

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
    sink_name,
)
from o365collector.observability.redact import register_secret
from o365collector.sinks.base import Sink
from o365collector.sinks.devo import DevoSink, devo_endpoint
from o365collector.sinks.elastic import ElasticsearchSink
from o365collector.sinks.http import HttpSink
from o365collector.sinks.jsonl import JsonlSink
from o365collector.sinks.sekoia import SekoiaSink
from o365collector.sinks.splunk import SplunkHecSink
from o365collector.sinks.stdout import StdoutSink
from o365collector.sinks.syslog import SyslogSink
from o365collector.sinks.tls import TlsOptions, client_context
from o365collector.sinks.transport import Endpoint

_SocketSettings = DevoSinkSettings | SyslogSinkSettings
_TlsSettings = (
    DevoSinkSettings
    | SyslogSinkSettings
    | SekoiaSinkSettings
    | SplunkHecSinkSettings
    | ElasticsearchSinkSettings
    | HttpSinkSettings
)


def build_sink(  # noqa: PLR0911 - one return per sink type
    settings: SinkSettings, index: int, clock: Clock | None = None
) -> Sink:
    """Instantiate the sink described by ``settings``; its secrets are registered for redaction.

    Raises:
        SinkError: TLS files cannot be loaded (socket sinks read them here, HTTP sinks
            in ``start``).
    """
    del index
    clock = clock or SystemClock()
    name = sink_name(settings)
    for secret in _secrets(settings):
        register_secret(secret.get_secret_value())
    match settings:
        case JsonlSinkSettings():
            return JsonlSink(
                name,
                settings.path,
                max_bytes=settings.max_bytes,
                keep_files=settings.keep_files,
                payload=settings.payload,
            )
        case StdoutSinkSettings():
            return StdoutSink(name, payload=settings.payload)
        case DevoSinkSettings():
            return DevoSink(
                name,
                _endpoint(name, settings),
                clock,
                hostname=settings.hostname,
                tag=settings.tag,
                tables=settings.tables,
                payload=settings.payload,
                gzip_level=settings.gzip_level if settings.gzip else None,
                batch_max_bytes=settings.batch_max_bytes,
                max_message_bytes=settings.max_message_bytes,
            )
        case SyslogSinkSettings():
            return SyslogSink(
                name,
                _endpoint(name, settings),
                clock,
                transport=settings.transport,
                format=settings.format,
                octet_counting=settings.framing == "octet_counting",
                app_name=settings.app_name,
                hostname=settings.hostname,
                msg_id=settings.msg_id,
                facility=settings.facility,
                severity=settings.severity,
                payload=settings.payload,
                max_message_bytes=settings.effective_max_bytes(),
            )
        case SekoiaSinkSettings():
            return SekoiaSink(
                name,
                intake_key=settings.intake_key.get_secret_value(),
                base_url=str(settings.base_url),
                tls=_tls(settings),
                payload=settings.payload,
                batch_max_bytes=settings.batch_max_bytes,
                max_event_bytes=settings.max_event_bytes,
                gzip=settings.gzip,
                request_timeout_secs=settings.request_timeout_secs,
            )
        case SplunkHecSinkSettings():
            return SplunkHecSink(
                name,
                clock,
                url=str(settings.url),
                token=settings.token.get_secret_value(),
                index=settings.index,
                sourcetype=settings.sourcetype,
                source=settings.source,
                host=settings.host,
                tls=_tls(settings),
                payload=settings.payload,
                batch_max_bytes=settings.batch_max_bytes,
                gzip=settings.gzip,
                request_timeout_secs=settings.request_timeout_secs,
                ack=settings.ack,
                channel=settings.channel,
                ack_poll_interval_secs=settings.ack_poll_interval_secs,
                ack_timeout_secs=settings.ack_timeout_secs,
            )
        case ElasticsearchSinkSettings():
            return ElasticsearchSink(
                name,
                url=str(settings.url),
                index=settings.index,
                pipeline=settings.pipeline,
                username=settings.username,
                password=_plain(settings.password),
                api_key=_plain(settings.api_key),
                tls=_tls(settings),
                payload=settings.payload,
                batch_max_bytes=settings.batch_max_bytes,
                gzip=settings.gzip,
                request_timeout_secs=settings.request_timeout_secs,
            )
        case HttpSinkSettings():
            return HttpSink(
                name,
                url=str(settings.url),
                method=settings.method,
                format=settings.format,
                headers=settings.headers,
                username=settings.username,
                password=_plain(settings.password),
                token=_plain(settings.token),
                tls=_tls(settings),
                payload=settings.payload,
                batch_max_bytes=settings.batch_max_bytes,
                gzip=settings.gzip,
                request_timeout_secs=settings.request_timeout_secs,
            )


def _endpoint(name: str, settings: _SocketSettings) -> Endpoint:
    """Resolve host/port and build the TLS context (Devo requires a CA when verifying)."""
    devo = isinstance(settings, DevoSinkSettings)
    if isinstance(settings, DevoSinkSettings):
        region = settings.region
        host, port = devo_endpoint(region) if region else (settings.host, settings.port)
    else:
        host, port = settings.host, settings.effective_port()
    assert host is not None
    context = None
    if settings.transport == "tls":
        context = client_context(name, _tls(settings, require_ca=devo))
    return Endpoint(
        host=host,
        port=port,
        ssl_context=context,
        server_hostname=settings.tls_server_name,
        connect_timeout_secs=settings.connect_timeout_secs,
        write_timeout_secs=settings.write_timeout_secs,
        idle_reconnect_secs=settings.idle_reconnect_secs,
        max_age_secs=settings.max_connection_age_secs,
    )


def _tls(settings: _TlsSettings, *, require_ca: bool = False) -> TlsOptions:
    return TlsOptions(
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        pkcs12_file=settings.pkcs12_file,
        private_key_password=_plain(settings.private_key_password),
        verify=settings.tls_verify,
        security_level=settings.tls_security_level,
        require_ca=require_ca,
    )


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _secrets(settings: SinkSettings) -> list[SecretStr]:
    names = ("intake_key", "token", "password", "api_key", "private_key_password")
    found = [getattr(settings, key, None) for key in names]
    return [s for s in found if isinstance(s, SecretStr)]
