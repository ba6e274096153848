"""Sinks are components: one folder per type, one HTTP skeleton, one route per settings model."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from o365collector.config.sinks import sink_types
from o365collector.sinks import httpbase
from o365collector.sinks.httpbase import DeliveryVerdict, HttpSinkBase

SINKS = Path(__file__).resolve().parents[2] / "src" / "o365collector" / "sinks"
FOLDERS = {
    "devo": "devo",
    "syslog": "syslog",
    "sekoia": "sekoia",
    "splunk_hec": "splunk",
    "elasticsearch": "elastic",
    "http": "http",
    "jsonl": "jsonl",
    "stdout": "stdout",
}


def test_every_sink_type_is_a_component_folder() -> None:
    assert set(FOLDERS) == set(sink_types())
    for folder in FOLDERS.values():
        assert {"__init__.py", "sink.py", "build.py"} <= {
            p.name for p in (SINKS / folder).iterdir()
        }
    flat = {p.stem for p in SINKS.glob("*.py")} & set(FOLDERS.values())
    assert flat == set(), "a sink module beside its component folder"


@pytest.mark.parametrize(
    ("folder", "cls"),
    [
        ("sekoia", "SekoiaSink"),
        ("splunk", "SplunkHecSink"),
        ("elastic", "ElasticsearchSink"),
        ("http", "HttpSink"),
    ],
)
def test_the_http_sinks_share_one_skeleton(folder: str, cls: str) -> None:
    sink = getattr(importlib.import_module(f"o365collector.sinks.{folder}"), cls)
    assert issubclass(sink, HttpSinkBase)
    for method in ("start", "send", "close"):
        assert method not in vars(sink), f"{cls}.{method} duplicates the skeleton"


def test_sink_verdict_is_named_apart_from_the_microsoft_one() -> None:
    from o365collector.http.classify import Verdict

    assert DeliveryVerdict is not Verdict
    assert not hasattr(httpbase, "Verdict")


@pytest.mark.parametrize(
    "first",
    ["o365collector.sinks.devo", "o365collector.config", "o365collector.sinks.factory"],
)
def test_no_import_cycle_whatever_is_imported_first(first: str) -> None:
    code = f"import {first}; import o365collector.config.model, o365collector.sinks.factory"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
