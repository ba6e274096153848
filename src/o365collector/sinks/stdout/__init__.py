"""Standard-output sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``StdoutSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import StdoutSinkSettings
from o365collector.sinks.stdout.sink import StdoutSink

__all__ = ["StdoutSink", "StdoutSinkSettings"]
