"""Sinks: each receives batches of events and answers delivered, retry or rejected.

One component folder per sink type (``devo``, ``syslog``, ``sekoia``, ``splunk``,
``elastic``, ``http``, ``jsonl``, ``stdout``), each with ``sink.py`` and ``build.py``;
shared modules beside them: ``base`` (the contract), ``batching``, ``encode``,
``framing``, ``tls``, ``transport``, ``options`` (settings → TLS/endpoint), ``httpbase``
(the HTTP sinks' skeleton) and ``factory`` (``build_sink``).
"""
