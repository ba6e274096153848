"""Deployment files: no Docker engine runs here, so check the files and run the entrypoint."""

from __future__ import annotations

import http.server
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_slim_non_root_with_a_healthcheck():
    instructions = _instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms and all("slim" in image for image in froms), froms
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert any(word == "HEALTHCHECK" for word, _ in instructions)
    assert any(word == "ENTRYPOINT" for word, _ in instructions)
    copied = [
        rest.split()[0] for word, rest in instructions if word == "COPY" and "--from" not in rest
    ]
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_compose_has_the_seed_volumes_and_config_file_variable():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = next(iter(compose["services"].values()))
    targets = {v.split(":")[1] for v in service["volumes"]}
    assert {"/devo-collector/certs", "/devo-collector/config", "/devo-collector/state"} <= targets
    assert any(e.startswith("CONFIG_FILE=") for e in service["environment"])


def test_dockerignore_keeps_state_and_venv_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "state" in ignored and ".git" in ignored


def _entrypoint(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, O365C_HOME=str(home), PATH=f"{bindir}:{os.environ['PATH']}")
    return subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_entrypoint_without_config_says_where_it_looked(tmp_path):
    result = _entrypoint(tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "config" / "config.yaml") in result.stderr


def test_entrypoint_runs_the_cli_on_the_mounted_config(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "state_dir": "state",
                "tenants": [
                    {
                        "tenant_id": "contoso.onmicrosoft.com",
                        "client_id": "00000000-1111-2222-3333-444444444444",
                        "client_secret": "s3cr3t-x",
                    }
                ],
                "sinks": [{"type": "stdout"}],
            }
        )
    )
    result = _entrypoint(tmp_path, "validate")
    assert result.returncode == 0, result.stderr
    assert "valid (1 tenant(s)" in result.stdout
    assert shutil.which("sh")


def test_scale_out_compose_runs_postgres_and_three_replicas_without_a_literal_password():
    text = (ROOT / "docker" / "scale-out" / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    assert set(compose["services"]) == {"postgres", "collector"}
    collector = compose["services"]["collector"]
    assert collector["deploy"]["replicas"] == 3
    assert collector["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = dict(item.split("=", 1) for item in collector["environment"])
    assert env["O365_PG_DSN"].startswith("postgresql://collector:${O365_PG_PASSWORD}@postgres")
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${O365_PG_PASSWORD"
    )
    # every replica keeps its own state_dir (lock file, dead letters): no shared bind mount
    assert "/devo-collector/state" in collector["volumes"]


def _fake_entrypoint(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the entrypoint with an ``o365collector`` on PATH that prints its argv and cwd."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "o365collector"
    fake.write_text('#!/bin/sh\necho "cwd=$(pwd)"\nfor a in "$@"; do echo "arg=$a"; done\n')
    fake.chmod(0o755)
    home = tmp_path / "home"
    env = dict(os.environ, O365C_HOME=str(home), PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("CONFIG_FILE", None)
    return subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _argv(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line[4:] for line in result.stdout.splitlines() if line.startswith("arg=")]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "config").mkdir(parents=True)
    (tmp_path / "home" / "config" / "config.yaml").write_text("{}\n")
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["run", "--config", "{config}"]),
        (("run", "--once"), ["run", "--once", "--config", "{config}"]),
        (("check",), ["check", "--config", "{config}"]),
        (("check", "--json"), ["check", "--json", "--config", "{config}"]),
        (("validate",), ["validate", "--config", "{config}"]),
        (("state", "show"), ["state", "show", "--config", "{config}"]),
        (("state", "show", "--json"), ["state", "show", "--json", "--config", "{config}"]),
        (
            ("backfill", "--since", "2026-11-01"),
            ["backfill", "--since", "2026-11-01", "--config", "{config}"],
        ),
        (("check", "--config", "/elsewhere.yaml"), ["check", "--config", "/elsewhere.yaml"]),
        (("run", "--config=/elsewhere.yaml"), ["run", "--config=/elsewhere.yaml"]),
        (("demo",), ["demo", "--dir", "{home}/state/demo"]),
        (("demo", "--duration", "30"), ["demo", "--dir", "{home}/state/demo", "--duration", "30"]),
        (("demo", "--dir", "/tmp/d"), ["demo", "--dir", "/tmp/d"]),
        (("emulator", "--port", "8080"), ["emulator", "--port", "8080"]),
        (("--version",), ["--version"]),
        (("--help",), ["--help"]),
        (("check", "--help"), ["check", "--help"]),
        (("state",), ["state"]),
    ],
)
def test_entrypoint_passes_each_sub_command_its_arguments_and_the_config(
    tmp_path: Path, home: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    result = _fake_entrypoint(tmp_path, *args)
    config = str(home / "config" / "config.yaml")
    assert _argv(result) == [a.format(config=config, home=home) for a in expected]
    assert f"cwd={home}" in result.stdout


def test_entrypoint_names_config_file_and_runs_other_commands(tmp_path: Path, home: Path) -> None:
    (home / "config" / "devo.yaml").write_text("{}\n")
    env_result = subprocess.run(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), "check"],
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            O365C_HOME=str(home),
            CONFIG_FILE="devo.yaml",
            PATH=f"{_fake_bin(tmp_path)}:{os.environ['PATH']}",
        ),
        timeout=60,
        check=False,
    )
    assert _argv(env_result) == ["check", "--config", str(home / "config" / "devo.yaml")]
    other = _fake_entrypoint(tmp_path, "echo", "hello")
    assert other.returncode == 0 and other.stdout.strip() == "hello"


def _fake_bin(tmp_path: Path) -> Path:
    _fake_entrypoint(tmp_path, "true")  # writes the fake
    return tmp_path / "bin"


def test_entrypoint_needs_no_config_for_demo_but_does_for_check(tmp_path: Path) -> None:
    assert _argv(_fake_entrypoint(tmp_path, "demo"))[0] == "demo"
    refused = _fake_entrypoint(tmp_path, "state", "show")
    assert refused.returncode == 2
    assert "no configuration at" in refused.stderr and "arg=" not in refused.stdout


# The HEALTHCHECK script, against a stub /healthz.


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck(home: Path, config: object, **env: str) -> subprocess.CompletedProcess[str]:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, str(ROOT / "docker" / "healthcheck.py")],
        capture_output=True,
        text=True,
        env=dict(os.environ, O365C_HOME=str(home), CONFIG_FILE="config.yaml", **env),
        timeout=30,
        check=False,
    )


# The Devo drop-in layout (docs/migrating.md): native keys under `o365collector:`.
_DEVO = {
    "globals": {"id": 1, "name": "o365", "persistence": {"type": "filesystem"}},
    "inputs": {"office365_reporting_message": {"id": 1, "enabled": True}},
    "outputs": {"devo_1": {"type": "devo_platform", "config": {"address": "collector-eu.devo.io"}}},
}


def test_healthcheck_reads_the_port_of_a_native_config(
    tmp_path: Path, health_server: tuple[int, type[_Health]]
) -> None:
    port, handler = health_server
    native = {"observability": {"listen": f"127.0.0.1:{port}"}, "tenants": []}
    result = _healthcheck(tmp_path, native, O365C_HEALTH_PORT="1")
    assert result.returncode == 0, result.stdout
    assert handler.paths == ["/healthz"]


def test_healthcheck_works_in_the_devo_drop_in_mode(
    tmp_path: Path, health_server: tuple[int, type[_Health]]
) -> None:
    port, handler = health_server
    devo = {**_DEVO, "o365collector": {"observability": {"listen": f"0.0.0.0:{port}"}}}
    assert _healthcheck(tmp_path, devo, O365C_HEALTH_PORT="1").returncode == 0
    handler.status = 503
    failing = _healthcheck(tmp_path, devo)
    assert failing.returncode == 1 and "503" in failing.stdout


def test_healthcheck_says_what_to_set_when_no_endpoint_listens(
    tmp_path: Path, health_server: tuple[int, type[_Health]]
) -> None:
    port, _ = health_server
    result = _healthcheck(tmp_path, _DEVO, O365C_HEALTH_PORT=str(port))
    assert result.returncode == 1
    assert "o365collector:" in result.stdout and "listen" in result.stdout
    with socket.socket() as probe:  # a free port: nothing answers there
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    down = _healthcheck(tmp_path, {"observability": {"listen": f"0.0.0.0:{free}"}})
    assert down.returncode == 1 and "unhealthy" in down.stdout


def test_healthcheck_finds_the_container_command_and_its_config(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "docker" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(
        b"/usr/local/bin/python\0/usr/local/bin/o365collector\0run\0--config\0/c.yaml\0"
    )
    command = module.container_command(cmdline)
    assert command == ["run", "--config", "/c.yaml"]
    assert module.config_path(command) == Path("/c.yaml")
    cmdline.write_bytes(b"python\0-m\0o365collector\0demo\0--dir\0/d\0")
    assert module.container_command(cmdline) == ["demo", "--dir", "/d"]
    assert module.container_command(tmp_path / "missing") is None


def test_docs_give_the_image_uid_and_the_chown_of_a_mounted_state() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--uid 10001" in dockerfile and "--gid 10001" in dockerfile
    docker_docs = (ROOT / "docs" / "operations.md").read_text().partition("## Docker")[2]
    assert "uid 10001" in docker_docs
    assert "chown -R 10001:10001 state/" in docker_docs
    assert "o365collector:" in docker_docs  # the Devo drop-in mode's listen
    operations = (ROOT / "docs" / "operations.md").read_text()
    for path in (
        "deploy/prometheus/o365collector-alerts.yml",
        "deploy/grafana/o365collector-dashboard.json",
    ):
        assert path in operations and (ROOT / path).is_file()
