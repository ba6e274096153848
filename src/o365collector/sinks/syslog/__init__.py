"""Syslog sink component: the sink (``sink``) and how its settings build it (``build``).

Its settings model, ``SyslogSinkSettings``, lives in ``o365collector.config.sinks`` (the config
layer sits below the sinks) and is re-exported here.
"""

from o365collector.config.sinks import SyslogSinkSettings
from o365collector.sinks.syslog.sink import SyslogSink

__all__ = ["SyslogSink", "SyslogSinkSettings"]
