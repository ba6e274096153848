"""Elasticsearch/OpenSearch sink component: the sink (``sink``) and its builder (``build``).

Its settings model, ``ElasticsearchSinkSettings``, lives in ``o365collector.config.sinks``
(the config layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import ElasticsearchSinkSettings
from o365collector.sinks.elastic.sink import ElasticsearchSink

__all__ = ["ElasticsearchSink", "ElasticsearchSinkSettings"]
