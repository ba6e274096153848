"""JSON-lines file sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``JsonlSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import JsonlSinkSettings
from o365collector.sinks.jsonl.sink import JsonlSink

__all__ = ["JsonlSink", "JsonlSinkSettings"]
