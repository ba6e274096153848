"""One whole run holding every kind of secret: none of them is written or printed anywhere.

The configuration holds a client secret (tenant ``secret``, from the environment), a
certificate with an encrypted private key and its password (tenant ``cert``), a Sekoia
intake key (that sink refuses everything, so dead letters are written), a Splunk HEC token,
an HTTP sink with a password and another with a bearer token and a client key with its
password. The run: ``run --once`` with debug logs, then the daemon with ``/metrics``
scraped while it reads and a crash (SIGABRT with faulthandler: every thread's traceback),
then ``state show`` and ``check``. Every byte of their stdout and stderr, the metrics
text, and every file the run left (state database, dead letters, outputs, logs) is
searched for each secret value, for the private key's lines, and for the emulator's bearer
tokens (by the header every token it issues starts with): nothing is found.

Not covered: a PostgreSQL password (the state here is SQLite, and the run's state files are
what is scanned), and the Devo/syslog TLS sinks (their client key is carried by the HTTP
sink here: same ``ClientTls`` settings).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pytest_httpserver import HTTPServer

from support.auth import (
    CLIENT_ID,
    KEY_PASSWORD,
    SECRET,
    CertFiles,
    cli,
    free_port,
    start_emulator,
    tenant_config,
    tenant_id,
)
from support.secrets import emulator_token_marks, files_text, leaks

pytestmark = pytest.mark.integration

INTAKE_KEY = "Sek0ia~Intake-Key.NoSecrets.7781"
HEC_TOKEN = "0b5d1f8e-hec0-tok3-n0s3-cr3ts0000042"
HTTP_PASSWORD = "Http~Basic-Password.NoSecrets.3141"
HTTP_TOKEN = "Http~Bearer-Token.NoSecrets.2718"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def _config(workdir: Path, cert: CertFiles, url: str, sink_url: str, metrics: int) -> Path:
    inputs = workdir / "inputs"
    inputs.mkdir()
    (inputs / "key-password").write_text(KEY_PASSWORD)
    secret_tenant = tenant_config(url, 0, name="secret", client_secret="${NOSECRETS_CLIENT}")
    cert_tenant = tenant_config(
        url,
        1,
        name="cert",
        credential={
            "type": "certificate",
            "certificate_file": str(cert.cert_pem),
            "key_file": str(cert.key_pem),
            "private_key_password_file": str(inputs / "key-password"),
        },
    )
    cert_tenant.pop("client_secret")
    data: dict[str, Any] = {
        "state_dir": str(workdir / "state"),
        "tenants": [secret_tenant, cert_tenant],
        "collection": {
            "initial_lookback_secs": 1800,
            "settle_delay_secs": 60,
            "poll_interval_secs": 1,
            "retry": {"initial_interval_secs": 0.05, "max_interval_secs": 0.2},
        },
        "observability": {"listen": f"127.0.0.1:{metrics}"},
        "sinks": [
            {"type": "jsonl", "name": "file", "path": str(workdir / "out" / "e.jsonl")},
            {"type": "sekoia", "name": "sekoia", "base_url": sink_url, "intake_key": INTAKE_KEY},
            {
                "type": "splunk_hec",
                "name": "splunk",
                "url": sink_url,
                "token": HEC_TOKEN,
            },
            {
                "type": "http",
                "name": "basic",
                "url": f"{sink_url}/basic",
                "username": "collector",
                "password": HTTP_PASSWORD,
            },
            {
                "type": "http",
                "name": "bearer",
                "url": f"{sink_url}/bearer",
                "token": HTTP_TOKEN,
                "cert_file": str(cert.cert_pem),
                "key_file": str(cert.key_pem),
                "private_key_password": KEY_PASSWORD,
            },
        ],
    }
    path = inputs / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _sinks(server: HTTPServer) -> None:
    """Sekoia refuses every batch (dead letters); the other HTTP sinks take everything."""
    server.expect_request("/batch").respond_with_data("forbidden: bad intake key", status=403)
    server.expect_request("/services/collector/event").respond_with_json(
        {"text": "Success", "code": 0}
    )
    server.expect_request("/basic").respond_with_data("ok")
    server.expect_request("/bearer").respond_with_data("ok")


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _daemon_metrics_and_crash(config: Path, env: dict[str, str], metrics: int) -> dict[str, str]:
    """Run the daemon, scrape /metrics while it reads, then crash it with faulthandler."""
    log = config.parent.parent / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "o365collector", "run", "--config", str(config),
             "--log-level", "debug"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONFAULTHANDLER": "1"},
        )  # fmt: skip
        try:
            scraped: dict[str, str] = {}

            def scrape() -> bool:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2)
                except httpx.HTTPError:
                    return False
                scraped["text"] = answer.text
                return answer.status_code == 200 and "collector_" in answer.text

            _wait_for(scrape, 60, "the daemon's /metrics")
            proc.send_signal(signal.SIGABRT)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    crash = log.read_text("utf-8", "replace")
    assert proc.returncode in (-signal.SIGABRT, -signal.SIGSEGV)  # the abort, or a crash in it
    assert "Fatal Python error" in crash or "Current thread" in crash, crash[-2000:]
    return {"metrics": scraped["text"]}


def test_no_secret_anywhere_in_a_whole_run(tmp_path: Path, cert: CertFiles) -> None:
    emulator = start_emulator(cert, [{}, {}])
    metrics = free_port()
    env = {**os.environ, "NOSECRETS_CLIENT": SECRET}
    try:
        with HTTPServer(host="127.0.0.1", port=free_port()) as server:
            _sinks(server)
            sink_url = f"http://127.0.0.1:{server.port}"
            config = _config(tmp_path, cert, emulator.base_url, sink_url, metrics)
            at = ("--config", str(config))
            texts: dict[str, str] = {}
            once = cli("run", *at, "--once", "--log-format", "json", "--log-level", "debug",
                       env=env)  # fmt: skip
            texts |= {"run.stdout": once.stdout, "run.stderr": once.stderr}
            texts |= _daemon_metrics_and_crash(config, env, metrics)
            for name, args in {
                "state": ("state", "show", *at),
                "state_json": ("state", "show", *at, "--json"),
                "check": ("check", *at, "--max-wait-secs", "2"),
                "check_json": ("check", *at, "--json", "--max-wait-secs", "2"),
            }.items():
                result = cli(*args, env=env)
                texts |= {f"{name}.stdout": result.stdout, f"{name}.stderr": result.stderr}
            requests = {request.path for request, _ in server.log}
        marks = emulator_token_marks(
            emulator.base_url, tenant_id(0), CLIENT_ID, SECRET, GRAPH_SCOPE
        )
    finally:
        emulator.stop()

    assert once.returncode == 0, once.stdout[-3000:] + once.stderr[-3000:]
    assert requests >= {"/batch", "/services/collector/event", "/basic", "/bearer"}, requests
    texts |= files_text(tmp_path)
    dead = [where for where in texts if "dead" in where.lower()]
    assert dead, f"no dead-letter file among {sorted(texts)}"
    assert any(where.endswith("state.db") for where in texts)
    assert any(where.endswith("daemon.log") for where in texts)
    run_output = texts["run.stdout"] + texts["run.stderr"]
    assert "dead-letter" in run_output  # the refusal was logged (the reason is scanned too)
    secrets = [
        SECRET,
        KEY_PASSWORD,
        INTAKE_KEY,
        HEC_TOKEN,
        HTTP_PASSWORD,
        HTTP_TOKEN,
        *cert.key_body_lines,
        *marks,
    ]
    assert leaks(texts, secrets) == []
