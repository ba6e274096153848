"""Bad config, unreachable endpoint and wrong secret: one clear line, non-zero exit, no secret."""

from __future__ import annotations

import pytest
from harness import (
    SECRET,
    EmulatorProcess,
    cli,
    collector_config,
    emulator_settings,
    free_port,
    run_collector,
)

pytestmark = pytest.mark.integration

WRONG_SECRET = "Wr0ng~Secret-Value.9876543210"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("o365collector: error:")]


def _assert_no_secret(result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_bad_config_exits_2_naming_the_key(tmp_path):
    config = collector_config(tmp_path, "http://127.0.0.1:9", page_size=9000)
    result = run_collector(config, "--once")
    assert result.returncode == 2
    lines = _error_lines(result.stderr)
    assert len(lines) == 1
    assert "collection.page_size" in result.stderr
    assert "5000" in result.stderr
    _assert_no_secret(result, SECRET)


def test_missing_secret_variable_names_it(tmp_path):
    config = collector_config(tmp_path, "http://127.0.0.1:9")
    text = config.read_text().replace("${ITEST_SECRET}", "${ITEST_UNSET_SECRET}")
    config.write_text(text)
    result = run_collector(config, "--once")
    assert result.returncode == 2
    assert "tenants[0].client_secret" in result.stderr
    assert "ITEST_UNSET_SECRET" in result.stderr


def test_unreachable_endpoint_gives_one_clear_line(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    config = collector_config(
        tmp_path,
        dead,
        retry={"initial_interval_secs": 0.05, "max_interval_secs": 0.2, "max_elapsed_secs": 1},
    )
    result = run_collector(config, "--once", timeout=120)
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-2000:]
    assert "unreachable" in lines[0]
    assert "127.0.0.1" in lines[0]
    _assert_no_secret(result, SECRET)


def test_wrong_secret_names_the_fix_and_never_prints_a_secret(tmp_path):
    emulator = EmulatorProcess(tmp_path, emulator_settings(100)).start()
    try:
        config = collector_config(tmp_path, emulator.url, secret=WRONG_SECRET)
        result = run_collector(config, "--once", timeout=120)
    finally:
        emulator.stop()
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-2000:]
    assert "AADSTS7000215" in lines[0]
    assert "client_secret" in lines[0]
    _assert_no_secret(result, SECRET, WRONG_SECRET)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "secret.env" and path.name != "emulator.yaml":
            data = path.read_bytes()
            assert WRONG_SECRET.encode() not in data, path


def test_refused_records_that_cannot_be_dead_lettered_stop_the_run(tmp_path, httpserver):
    """A sink refuses every record and ``dead-letter`` is a file: exit 1, one line naming the
    file, nothing committed, and ``state show`` says the stream failed and why."""
    httpserver.expect_request("/ingest").respond_with_data("bad record", status=400)
    emulator = EmulatorProcess(tmp_path, emulator_settings(100)).start()
    try:
        config = collector_config(
            tmp_path,
            emulator.url,
            extra_sinks=[{"type": "http", "name": "siem", "url": httpserver.url_for("/ingest")}],
        )
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "dead-letter").write_text("in the way")
        result = run_collector(config, "--once", timeout=120)
        shown = cli(config, "state", "show", "--json")
    finally:
        emulator.stop()
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr[-2000:]
    assert "dead-letter" in lines[0]
    assert "siem" in lines[0]
    assert shown.returncode == 0, shown.stderr
    assert '"failed"' in shown.stdout, shown.stdout
    assert "cannot be written to the dead-letter file" in shown.stdout
