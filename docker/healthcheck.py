"""Docker HEALTHCHECK: ask the collector's ``/healthz`` where its configuration says it listens.

The address is ``observability.listen`` of the configuration the container runs on: a
native file's top-level ``observability`` block, or, in a foreign file (the Devo
``config.yaml`` with ``globals``/``inputs``/``outputs``, docs/migrating.md), the
``o365collector: {observability: …}`` block. A wildcard host (``0.0.0.0``) is asked on
loopback. The file is ``--config`` of the container's command when it names one, else
``$O365C_HOME/config/$CONFIG_FILE``; ``O365C_HEALTH_PORT`` is only the fallback when that
file cannot be read. Exit 0: healthy; 1: unhealthy, with the reason on stdout (``docker
inspect`` shows it). A container running a command other than ``run`` or ``backfill``
(``demo``, ``check``, ``state show``…) serves no endpoint and is reported healthy.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WILDCARDS = {"", "0.0.0.0", "*"}  # noqa: S104 - a listen value to map to loopback
_LONG_RUNNING = {"run", "backfill"}
HINT = (
    'set observability: {listen: "0.0.0.0:9464"} (in a Devo config.yaml: under '
    "o365collector:) so the health check can reach /healthz"
)


def container_command(cmdline: Path = Path("/proc/1/cmdline")) -> list[str] | None:
    """The o365collector arguments of the container's main process, None if it is not one."""
    try:
        argv = cmdline.read_bytes().split(b"\0")
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in argv if a]
    for i, arg in enumerate(args):
        if Path(arg).name == "o365collector" or arg.endswith("o365collector/__main__.py"):
            return args[i + 1 :]
        if arg == "-m" and i + 1 < len(args) and args[i + 1] == "o365collector":
            return args[i + 2 :]
    return None


def config_path(command: list[str] | None) -> Path:
    """``--config`` of the command, else ``$O365C_HOME/config/$CONFIG_FILE``."""
    for i, arg in enumerate(command or []):
        if arg.startswith("--config="):
            return Path(arg.partition("=")[2])
        if arg == "--config" and command is not None and i + 1 < len(command):
            return Path(command[i + 1])
    home = Path(os.environ.get("O365C_HOME", "/devo-collector"))
    return home / "config" / os.environ.get("CONFIG_FILE", "config.yaml")


def listen_of(data: Any) -> str | None:
    """``observability.listen`` of a native file, or of a foreign file's ``o365collector``."""
    if not isinstance(data, dict):
        return None
    for block in (data.get("o365collector"), data):
        observability = block.get("observability") if isinstance(block, dict) else None
        if isinstance(observability, dict) and observability.get("listen"):
            listen = str(observability["listen"])
            return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), listen)
    return None


def health_url(path: Path) -> str:
    """The ``/healthz`` URL for the configuration at ``path``.

    Raises:
        LookupError: the configuration serves no endpoint (the message says what to set).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        port = os.environ.get("O365C_HEALTH_PORT", "9464")
        return f"http://127.0.0.1:{port}/healthz"
    listen = listen_of(data)
    if listen is None:
        raise LookupError(f"{path} sets no observability.listen: {HINT}")
    host, _, port = listen.rpartition(":")
    host = "127.0.0.1" if host in _WILDCARDS else host
    return f"http://{host}:{port}/healthz"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> int:
    """Check once; the exit status for Docker."""
    command = container_command()
    if command is not None and command and command[0] not in _LONG_RUNNING:
        _say(f"o365collector {command[0]}: no health endpoint to check")
        return 0
    try:
        url = health_url(config_path(command))
    except LookupError as exc:
        _say(f"unhealthy: {exc}")
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4) as reply:  # noqa: S310 - http on loopback
            status = int(reply.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        _say(f"unhealthy: {url}: {exc}")
        return 1
    _say(f"{url}: {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
