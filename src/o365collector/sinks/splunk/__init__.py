"""Splunk HEC sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``SplunkHecSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import SplunkHecSinkSettings
from o365collector.sinks.splunk.sink import SplunkHecSink

__all__ = ["SplunkHecSink", "SplunkHecSinkSettings"]
