"""Generic HTTP sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``HttpSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import HttpSinkSettings
from o365collector.sinks.http.sink import HttpSink

__all__ = ["HttpSink", "HttpSinkSettings"]
