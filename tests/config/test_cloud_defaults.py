"""Issue 13.5: clouds without Graph message trace, for tenants that list no ``streams``.

Graph message trace (``message_trace``) is the default stream but is offered in the global
cloud only. A gcc_high, dod or china tenant that lists nothing must learn that the default
is the problem and which exact ``streams:`` line to write; the global clouds keep the
default as it is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from o365collector.config.loader import parse_settings
from o365collector.errors import ConfigError
from support.mock_api import CLIENT_ID, CLIENT_SECRET, TENANT_ID

NO_GRAPH_TRACE = ["gcc_high", "dod", "china"]
EXACT_LINE = "streams: [rws.MessageTrace]"


def _config(tmp_path: Path, **tenant: Any) -> dict[str, Any]:
    return {
        "state_dir": str(tmp_path / "state"),
        "tenants": [
            {
                "name": "gov",
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                **tenant,
            }
        ],
        "sinks": [{"type": "jsonl", "name": "file", "path": str(tmp_path / "out.jsonl")}],
    }


def _error(tmp_path: Path, **tenant: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(_config(tmp_path, **tenant))
    return str(info.value)


@pytest.mark.parametrize("cloud", NO_GRAPH_TRACE)
def test_default_stream_in_a_cloud_without_graph_trace_names_the_default_and_the_line(
    tmp_path: Path, cloud: str
) -> None:
    message = _error(tmp_path, cloud=cloud)
    assert "tenants[0]" in message
    assert "default" in message and "message_trace" in message
    assert EXACT_LINE in message
    assert f"{cloud} cloud" in message
    assert "instead" not in message  # nothing was listed, so nothing is to be replaced


@pytest.mark.parametrize("cloud", NO_GRAPH_TRACE)
def test_listed_message_trace_shows_the_list_with_rws_message_trace_in_its_place(
    tmp_path: Path, cloud: str
) -> None:
    message = _error(tmp_path, cloud=cloud, streams=["rws.MailTraffic", "message_trace"])
    assert "streams: [rws.MailTraffic, rws.MessageTrace]" in message
    assert f"{cloud} cloud" in message
    assert "default" not in message


@pytest.mark.parametrize("cloud", NO_GRAPH_TRACE)
def test_validate_exits_2_with_the_exact_streams_line(tmp_path: Path, cloud: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, cloud=cloud)), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "o365collector", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert EXACT_LINE in output and cloud in output
    assert CLIENT_SECRET not in output


@pytest.mark.parametrize("cloud", NO_GRAPH_TRACE)
def test_listing_rws_message_trace_is_valid(tmp_path: Path, cloud: str) -> None:
    settings = parse_settings(_config(tmp_path, cloud=cloud, streams=["rws.MessageTrace"]))
    assert settings.tenants[0].streams == ["rws.MessageTrace"]


@pytest.mark.parametrize("cloud", ["commercial", "gcc"])
def test_global_clouds_keep_graph_message_trace_as_the_default(tmp_path: Path, cloud: str) -> None:
    settings = parse_settings(_config(tmp_path, cloud=cloud))
    assert settings.tenants[0].streams == ["message_trace"]
