"""Issue 17: ``run --once`` ends with a summary and an exit status; progress and the tables of
``state show`` and ``check`` read well piped and at 80 columns (real processes, the emulator)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from harness import (
    EmulatorProcess,
    cli,
    collector_config,
    collector_env,
    emulator_settings,
    free_port,
    iso,
    now,
    output_lines,
    run_collector,
)

pytestmark = pytest.mark.integration

DEAD_TENANT_ID = "7d1b2c3e-0000-4000-8000-00000000dead"
SUMMARY = re.compile(
    r"^summary: (?P<name>\S+) (?P<result>ok|failed|skipped) rows (?P<rows>[\d,]+) "
    r"windows (?P<windows>\d+) pages (?P<pages>\d+) took \S+"
)
PROGRESS = re.compile(
    r"^progress: (?P<name>\S+) (?:(?P<end>done|failed|skipped|stopped) )?"
    r"windows (?P<done>\d+)/(?P<total>\d+) rows (?P<rows>[\d,]+)(?: eta \S+)?$"
)
BOX = set("─│┃━┏┓┗┛┡┩└┘├┤┼╇")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    emulator = EmulatorProcess(tmp_path_factory.mktemp("emulator"), emulator_settings(3000)).start()
    yield emulator
    emulator.stop()


def _summaries(stderr: str) -> dict[str, dict[str, str]]:
    found = {}
    for line in stderr.splitlines():
        match = SUMMARY.match(line)
        if match:
            found[match["name"]] = match.groupdict()
    return found


def _rows(text: str) -> int:
    return int(text.replace(",", ""))


def _with_dead_tenant(config: Path) -> Path:
    """Add tenant ``dead`` whose endpoints nobody serves: its stream fails, ``itest`` not."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    dead = f"http://127.0.0.1:{free_port()}"
    tenant = dict(data["tenants"][0])
    tenant.update(
        name="dead", tenant_id=DEAD_TENANT_ID, endpoints={"authority": dead, "graph": dead}
    )
    data["tenants"].append(tenant)
    data["collection"]["retry"] = {
        "initial_interval_secs": 0.05,
        "max_interval_secs": 0.2,
        "max_elapsed_secs": 1,
    }
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config


def test_run_once_ends_with_a_summary_whose_rows_match_the_output(emulator, tmp_path) -> None:
    config = collector_config(tmp_path, emulator.url, page_size=500)
    result = run_collector(config, "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = _summaries(result.stderr)
    assert set(summaries) == {"itest/message_trace"}, result.stderr[-3000:]
    line = summaries["itest/message_trace"]
    delivered = sum(1 for _ in output_lines(tmp_path))
    assert delivered > 0
    assert (line["result"], _rows(line["rows"])) == ("ok", delivered)
    assert int(line["windows"]) > 0 and int(line["pages"]) > 0
    assert re.search(r"^summary: tenant itest requests \d+$", result.stderr, re.M)
    assert result.stderr.rstrip().splitlines()[-1].startswith("summary: 1 stream(s) ok, 0 failed")
    progress = [PROGRESS.match(x) for x in result.stderr.splitlines() if x.startswith("progress:")]
    assert progress and all(progress), result.stderr[-3000:]
    last = [m for m in progress if m and m["name"] == "itest/message_trace"][-1]
    assert last["end"] == "done" and last["done"] == last["total"]
    assert _rows(last["rows"]) == delivered
    assert not BOX & set(result.stderr), "box drawing when piped"


def test_one_failed_stream_exits_1_and_the_summary_names_it(emulator, tmp_path) -> None:
    config = _with_dead_tenant(collector_config(tmp_path, emulator.url, page_size=500))
    result = run_collector(config, "--once", timeout=180)
    assert result.returncode == 1, result.stderr[-3000:]
    summaries = _summaries(result.stderr)
    assert set(summaries) == {"itest/message_trace", "dead/message_trace"}, result.stderr[-3000:]
    delivered = Counter((e["tenant"], e["stream"]) for e in output_lines(tmp_path))
    good, dead = summaries["itest/message_trace"], summaries["dead/message_trace"]
    assert (good["result"], _rows(good["rows"])) == ("ok", delivered["itest", "message_trace"])
    assert delivered["itest", "message_trace"] > 0
    assert (dead["result"], _rows(dead["rows"])) == ("failed", 0)
    failed_line = next(x for x in result.stderr.splitlines() if x.startswith("summary: dead/"))
    assert "unreachable" in failed_line
    errors = [x for x in result.stderr.splitlines() if x.startswith("o365collector: error:")]
    assert len(errors) == 1 and "tenant dead" in errors[0]
    assert "summary: 1 stream(s) ok, 1 failed" in result.stderr


def test_backfill_prints_plain_progress_lines_when_piped(emulator, tmp_path) -> None:
    config = collector_config(tmp_path, emulator.url, page_size=500)
    end = now() - timedelta(hours=2)
    result = cli(config, "backfill", "--from", iso(end - timedelta(days=2)), "--to", iso(end))
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [PROGRESS.match(x) for x in result.stderr.splitlines() if x.startswith("progress:")]
    assert progress and all(progress), result.stderr[-3000:]
    last = progress[-1]
    assert last is not None
    assert (last["name"], last["end"]) == ("itest/message_trace", "done")
    assert int(last["done"]) == int(last["total"]) > 0
    delivered = sum(1 for _ in output_lines(tmp_path))
    assert _rows(last["rows"]) == delivered > 0
    assert f"Backfill complete: {delivered:,} new events delivered." in result.stderr
    assert not BOX & set(result.stderr)


def _at_80_columns(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = collector_env(config.parent) | {"COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "o365collector", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [("state", "show"), ("check", "--max-wait-secs", "1")])
def test_state_show_and_check_piped_at_80_columns_cut_nothing(emulator, tmp_path, command) -> None:
    config = _with_dead_tenant(collector_config(tmp_path, emulator.url, page_size=500))
    run_collector(config, "--once", timeout=180)  # state for `state show`, with a failure
    shown = _at_80_columns(config, *command)
    assert shown.returncode in (0, 1), shown.stderr
    text = shown.stdout
    assert "…" not in text, text
    assert not BOX & set(text), text
    for tenant in ("itest", "dead"):
        assert re.search(rf"\b{tenant}\b", text), text
    assert "message_trace" in text
    if command[0] == "state":
        assert "itest/message_trace  lane live  health ok" in text
        assert "dead/message_trace  lane live  health failed" in text
        assert "unreachable" in text  # the reason, whole
    else:
        assert shown.returncode == 1
        assert re.search(r"^PASS  tenant itest · stream message_trace", text, re.M), text
        assert re.search(r"^FAIL  tenant dead · token graph", text, re.M), text
