"""Sekoia.io sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``SekoiaSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import SekoiaSinkSettings
from o365collector.sinks.sekoia.sink import SekoiaSink

__all__ = ["SekoiaSink", "SekoiaSinkSettings"]
