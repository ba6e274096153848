"""Sink settings: one model per sink type, discriminated by ``type``, checked at start.

The models are plain data in the config layer (``config.model`` reads ``sinks:`` as the
union below); each sink component turns its model into a sink in
``o365collector/sinks/<type>/build.py``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from o365collector.config.base import Strict as _Strict

MIB = 1024 * 1024
_PRINTABLE = re.compile(r"^[!-~]+$")  # RFC 5424 PRINTUSASCII: no spaces, no controls
_DEVO_TABLE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DATA_STREAM_FORBIDDEN = re.compile(r'[\s\\/*?"<>|,#:{}-]')

PayloadKind = Literal["raw", "envelope", "ecs", "ocsf"]
"""What a sink ships per event (the issue's ``format``).

``raw``: the vendor record as received; ``envelope``: the record plus metadata; ``ecs``:
an Elastic Common Schema document; ``ocsf``: an OCSF event (see ``o365collector.normalize``).
"""
NORMALIZED: tuple[PayloadKind, ...] = ("ecs", "ocsf")


class SinkBase(_Strict):
    """The keys every sink has: name, batching, queueing and payload."""

    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    batch_max_events: int = Field(5000, ge=1)
    queue_max_batches: int = Field(8, ge=1)
    when_full: Literal["block", "drop_newest"] = "block"
    payload: PayloadKind = "raw"
    include_original: bool = False

    @model_validator(mode="after")
    def _include_original_needs_normalized(self) -> SinkBase:
        if self.include_original and self.payload not in NORMALIZED:
            raise ValueError(
                f"include_original: true adds the raw record to an ECS or OCSF document "
                f"(ECS event.original, OCSF raw_data), but this sink's payload is "
                f"{self.payload}, which ships the record itself; set payload: ecs or "
                f"payload: ocsf, or remove include_original"
            )
        return self


class ClientTls(_Strict):
    """TLS client options: CA to verify the server, optional client identity."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    pkcs12_file: Path | None = None
    private_key_password: SecretStr | None = None
    tls_verify: bool = True
    tls_security_level: int | None = Field(None, ge=0, le=5)

    def tls_fields_set(self) -> list[str]:
        """The TLS keys given explicitly in the configuration."""
        return sorted(self.model_fields_set & set(ClientTls.model_fields))

    def has_client_identity(self) -> bool:
        """True when a client certificate is configured (PEM pair or PKCS#12)."""
        return self.pkcs12_file is not None or self.cert_file is not None

    @model_validator(mode="after")
    def _tls_files_consistent(self) -> ClientTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together (the client certificate)")
        if self.pkcs12_file is not None and self.cert_file is not None:
            raise ValueError("give either pkcs12_file or cert_file/key_file, not both")
        if self.private_key_password is not None and not (self.key_file or self.pkcs12_file):
            raise ValueError("private_key_password needs key_file or pkcs12_file")
        for key in ("ca_file", "cert_file", "key_file", "pkcs12_file"):
            path = getattr(self, key)
            if path is not None and not path.is_file():
                raise ValueError(f"{key}: file {path} does not exist; give the path of the file")
        return self


class SocketOptions(ClientTls):
    """A TCP/TLS (or UDP) peer: host, timeouts, message size cap."""

    host: str | None = Field(None, min_length=1)
    tls_server_name: str | None = None
    connect_timeout_secs: float = Field(10.0, gt=0)
    write_timeout_secs: float = Field(30.0, gt=0)
    max_message_bytes: int | None = Field(None, ge=64)


class HttpOptions(ClientTls):
    """An HTTP receiver: compression and the request timeout."""

    gzip: bool = False
    request_timeout_secs: float = Field(30.0, gt=0)


class JsonlSinkSettings(SinkBase):
    """JSON-lines file: one event per line, fsynced before acknowledging, rotated by size."""

    type: Literal["jsonl"]
    path: Path
    max_bytes: int = Field(100 * MIB, ge=1024)
    keep_files: int = Field(10, ge=1)
    payload: PayloadKind = "envelope"


class StdoutSinkSettings(SinkBase):
    """Standard output: one JSON event per line."""

    type: Literal["stdout"]
    payload: PayloadKind = "envelope"


class DevoSinkSettings(SinkBase, SocketOptions):
    """Devo: syslog-style lines tagged with the Devo table, over mutual TLS (or to a relay)."""

    type: Literal["devo"]
    region: Literal["us", "eu", "ca", "ap"] | None = None
    port: int = Field(443, ge=1, le=65535)
    transport: Literal["tls", "tcp"] = "tls"
    hostname: str | None = Field(None, pattern=_PRINTABLE.pattern, max_length=255)
    tag: str | None = Field(None, pattern=_DEVO_TABLE.pattern)
    tables: dict[str, str] = Field(default_factory=dict)
    gzip: bool = False
    gzip_level: int = Field(6, ge=1, le=9)
    batch_max_bytes: int | None = Field(None, ge=1024)
    idle_reconnect_secs: float = Field(25.0, gt=0)
    max_connection_age_secs: float = Field(3600.0, gt=0)

    @field_validator("tables")
    @classmethod
    def _tables_valid(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(t for t in value.values() if not _DEVO_TABLE.match(t))
        if bad:
            raise ValueError(f"not Devo table names (like cloud.office365.reporting.x): {bad}")
        return value

    @model_validator(mode="after")
    def _endpoint_and_tls(self) -> DevoSinkSettings:
        if (self.region is None) == (self.host is None):
            raise ValueError("give either region (us, eu, ca, ap) or host, not both or neither")
        if self.transport == "tcp":
            if self.region is not None:
                raise ValueError(
                    "Devo's cloud collectors accept TLS only; transport: tcp is for an "
                    "in-house relay: set host and port of the relay instead of region"
                )
            if self.tls_fields_set():
                raise ValueError(f"transport tcp is plain TCP; remove {self.tls_fields_set()}")
            return self
        if self.tls_verify:
            complete = self.pkcs12_file is not None or (
                self.cert_file is not None and self.ca_file is not None
            )
            if not complete:
                raise ValueError(
                    "Devo TLS needs the client certificate, its private key and the CA chain "
                    "(cert_file, key_file and ca_file, or pkcs12_file) from Administration → "
                    "Credentials → X.509; to connect without them set tls_verify: false "
                    "explicitly (the server is then not verified)"
                )
        return self


class SyslogSinkSettings(SinkBase, SocketOptions):
    """Syslog (RFC 5424 or RFC 3164) over UDP, TCP, or TLS (RFC 5425)."""

    type: Literal["syslog"]
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"]
    format: Literal["rfc5424", "rfc3164"] = "rfc5424"
    framing: Literal["octet_counting", "lf"] = "octet_counting"
    app_name: str = Field("o365collector", pattern=_PRINTABLE.pattern, max_length=48)
    hostname: str | None = Field(None, pattern=_PRINTABLE.pattern, max_length=255)
    msg_id: str | None = Field(None, pattern=_PRINTABLE.pattern, max_length=32)
    facility: Literal[
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5",
        "local6", "local7",
    ] = "user"  # fmt: skip
    severity: Literal[
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
    ] = "info"  # fmt: skip
    idle_reconnect_secs: float | None = Field(None, gt=0)
    max_connection_age_secs: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _transport_consistent(self) -> SyslogSinkSettings:
        tls_keys = self.tls_fields_set() + (
            ["tls_server_name"] if "tls_server_name" in self.model_fields_set else []
        )
        if self.transport == "udp":
            if tls_keys:
                raise ValueError(f"transport udp cannot use TLS ({tls_keys}); use transport: tls")
            if "framing" in self.model_fields_set:
                raise ValueError("framing applies to tcp and tls; UDP sends one datagram each")
            if self.max_message_bytes is not None and self.max_message_bytes > 65507:
                raise ValueError("max_message_bytes: a UDP datagram holds at most 65507 bytes")
        elif self.transport == "tcp" and tls_keys:
            raise ValueError(f"{tls_keys} need transport: tls")
        if self.format == "rfc3164" and len(self.app_name) > 32:
            raise ValueError("app_name: RFC 3164 allows a TAG of at most 32 characters")
        return self

    def effective_port(self) -> int:
        """The port, defaulting to 514 (udp, tcp) or 6514 (tls)."""
        return self.port or (6514 if self.transport == "tls" else 514)

    def effective_max_bytes(self) -> int | None:
        """The size cap: ``max_message_bytes``, or 2048 on UDP."""
        if self.max_message_bytes is None and self.transport == "udp":
            return 2048
        return self.max_message_bytes


class SekoiaSinkSettings(SinkBase, HttpOptions):
    """Sekoia.io HTTP intake: ``POST {base_url}/batch`` with the intake key."""

    type: Literal["sekoia"]
    intake_key: SecretStr
    base_url: AnyHttpUrl = AnyHttpUrl("https://intake.sekoia.io")
    batch_max_bytes: int = Field(9 * MIB, ge=300_000, le=10 * MIB)
    max_event_bytes: int = Field(250_000, ge=1024, le=250_000)


class SplunkHecSinkSettings(SinkBase, HttpOptions):
    """Splunk HTTP Event Collector (``/services/collector/event``), optional indexer ack."""

    type: Literal["splunk_hec"]
    url: AnyHttpUrl
    token: SecretStr
    index: str | None = Field(None, min_length=1)
    sourcetype: str | None = Field(None, min_length=1)
    source: str = Field("o365collector", min_length=1)
    host: str | None = Field(None, min_length=1)
    batch_max_bytes: int = Field(1_000_000, ge=1024)
    ack: bool = False
    channel: str | None = None
    ack_poll_interval_secs: float = Field(2.0, gt=0)
    ack_timeout_secs: float = Field(300.0, gt=0)

    @field_validator("channel")
    @classmethod
    def _channel_is_uuid(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                uuid.UUID(value)
            except ValueError:
                raise ValueError("channel must be a GUID, e.g. uuidgen's output") from None
        return value

    @model_validator(mode="after")
    def _channel_needs_ack(self) -> SplunkHecSinkSettings:
        if self.channel is not None and not self.ack:
            raise ValueError("channel is used only with ack: true")
        return self


class ElasticsearchSinkSettings(SinkBase, HttpOptions):
    """Elasticsearch or OpenSearch ``_bulk`` with ``create`` and the event id as ``_id``."""

    type: Literal["elasticsearch"]
    url: AnyHttpUrl
    index: str | None = Field(None, min_length=1, max_length=200)
    namespace: str = Field("default", min_length=1)
    index_template: bool = True
    pipeline: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    batch_max_bytes: int = Field(5 * MIB, ge=1024)

    def uses_data_streams(self) -> bool:
        """True when events go to the default ECS data streams (payload ecs, no ``index``)."""
        return self.payload == "ecs" and self.index is None

    @field_validator("index")
    @classmethod
    def _index_template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        rest = value.replace("{stream}", "").replace("{tenant}", "")
        if "{" in rest or "}" in rest:
            raise ValueError("index may use only the placeholders {stream} and {tenant}")
        if rest != rest.lower() or re.search(r'[\s,"*\\<|>/?#:]', rest) or value[0] in "-_+":
            raise ValueError(
                'not a valid index name: lowercase, no spaces or , " * \\ < | > / ? # :'
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace_valid(cls, value: str) -> str:
        if (
            value != value.lower()
            or _DATA_STREAM_FORBIDDEN.search(value)
            or len(value.encode("utf-8")) > 100
        ):
            raise ValueError(
                f"namespace {value!r} is not a valid data stream namespace: lowercase, at "
                'most 100 bytes, no "-", spaces or \\ / * ? " < > | , # : (e.g. default, prod)'
            )
        return value

    @model_validator(mode="after")
    def _auth_consistent(self) -> ElasticsearchSinkSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together (HTTP basic auth)")
        if self.api_key is not None and self.username is not None:
            raise ValueError("give either api_key or username/password, not both")
        if not self.uses_data_streams():
            unused = sorted({"namespace", "index_template"} & self.model_fields_set)
            if unused:
                keys = " and ".join(unused)
                verb = "apply" if len(unused) > 1 else "applies"
                raise ValueError(
                    f"{keys} {verb} only to the ECS data streams (payload: ecs without "
                    f"index); set payload: ecs and remove index, or remove {keys}"
                )
        return self


class HttpSinkSettings(SinkBase, HttpOptions):
    """Generic HTTP: batches as NDJSON or a JSON array, custom headers, basic/bearer auth."""

    type: Literal["http"]
    url: AnyHttpUrl
    method: Literal["POST", "PUT"] = "POST"
    format: Literal["ndjson", "json_array"] = "ndjson"
    headers: dict[str, str] = Field(default_factory=dict)
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    batch_max_bytes: int = Field(1 * MIB, ge=1024)

    @field_validator("headers")
    @classmethod
    def _headers_valid(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not _HEADER_NAME.match(key):
                raise ValueError(f"header name {key!r} is not a valid HTTP token")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {key}: value must be one line")
            if key.lower() in {"content-length", "content-encoding", "host"}:
                raise ValueError(f"header {key} is set by the sink; remove it")
        return value

    @model_validator(mode="after")
    def _auth_consistent(self) -> HttpSinkSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together (HTTP basic auth)")
        if self.token is not None and self.username is not None:
            raise ValueError("give either token (bearer) or username/password, not both")
        auth_header = any(k.lower() == "authorization" for k in self.headers)
        if auth_header and (self.token is not None or self.username is not None):
            raise ValueError("an Authorization header conflicts with token or username")
        return self


SinkSettings = Annotated[
    JsonlSinkSettings
    | StdoutSinkSettings
    | DevoSinkSettings
    | SyslogSinkSettings
    | SekoiaSinkSettings
    | SplunkHecSinkSettings
    | ElasticsearchSinkSettings
    | HttpSinkSettings,
    Field(discriminator="type"),
]


def sink_name(sink: SinkSettings) -> str:
    """The sink's configured name, or its type."""
    return sink.name or sink.type


def sink_types() -> list[str]:
    """Every accepted ``type`` value, for error messages."""
    members = get_args(get_args(SinkSettings)[0])
    return [get_args(m.model_fields["type"].annotation)[0] for m in members]
