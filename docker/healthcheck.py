"""Docker HEALTHCHECK: the collector answers /healthz on O365C_HEALTH_PORT (loopback)."""

from __future__ import annotations

import os
import sys
import urllib.request

port = os.environ.get("O365C_HEALTH_PORT", "9464")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except OSError:
    sys.exit(1)
