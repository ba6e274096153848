"""Devo sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``DevoSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import DevoSinkSettings
from o365collector.sinks.devo.sink import DevoSink, default_table, devo_endpoint

__all__ = ["DevoSink", "DevoSinkSettings", "default_table", "devo_endpoint"]
