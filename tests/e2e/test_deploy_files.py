"""Deployment files: no Docker engine runs here, so check the files and run the entrypoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
                "tenants": [{"tenant_id": "t", "client_id": "c", "client_secret": "s3cr3t-x"}],
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
