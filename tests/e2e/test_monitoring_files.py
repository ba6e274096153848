"""deploy/: the Grafana dashboard and Prometheus alert rules name only metrics the code defines.

``promtool`` (Debian package ``prometheus``; .ci/run installs it) checks the rules and the
dashboard's expressions, and unit-tests that each alert fires on the series it is about.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "o365collector-alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "o365collector-dashboard.json"

_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def defined_metrics() -> set[str]:
    """Every series name the collector exposes: from each metric defined under src/."""
    names: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for kind, name in _DEFINITION.findall(path.read_text(encoding="utf-8")):
            if kind == "Counter":
                base = name.removesuffix("_total")
                names |= {base + "_total", base + "_created"}
            elif kind in ("Histogram", "Summary"):
                names |= {name, name + "_sum", name + "_count", name + "_created"}
                if kind == "Histogram":
                    names.add(name + "_bucket")
            else:
                names.add(name)
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    # label lists of by / without / on / ignoring / group_left / group_right
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text, flags=re.I
    )
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?\b", "", text)  # numbers, durations
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group()
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    for var in data["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query["query"]))
    return exprs


def test_the_extractor_sees_metrics_but_not_functions_labels_or_keywords() -> None:
    expr = (
        'sum by (tenant, stream) (rate(a_total{stage="x", b="y"}[$__rate_interval])) '
        "/ on (tenant) group_left max(b_seconds offset 5m) > 90000 + 7200 and c unless d_bucket"
    )
    assert metric_names(expr) == {"a_total", "b_seconds", "c", "d_bucket"}
    assert "component_errors_total" in defined_metrics()
    assert "buffer_discarded_events_total" in defined_metrics()  # outside metrics.py


def test_every_metric_the_rules_and_dashboard_name_is_defined_in_the_code() -> None:
    defined = defined_metrics()
    exprs = [str(rule["expr"]) for rule in _rules()] + _dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, "no metric found in the expressions"
    assert sorted(used - defined) == []


def test_the_rules_alert_on_what_operators_need() -> None:
    names = {rule["alert"] for rule in _rules()}
    assert {
        "O365CollectorStreamFailed",
        "O365CollectorStreamStalled",
        "O365CollectorLagOverHorizon",
        "O365CollectorQuotaExhausted",
        "O365CollectorDeadLettersGrowing",
        "O365CollectorSignInFailing",
    } <= names
    for rule in _rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_dashboard_has_the_panels_operators_need() -> None:
    data = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in data["panels"]}
    assert {
        "Events delivered per stream",
        "Lag per stream",
        "Quota used",
        "Dead letters",
        "Errors",
        "Sign-in failures",
        "Tenant leases held",
    } <= titles
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    # Importable anywhere: the data source is a variable, not a uid of the author's Grafana.
    datasources = [p["datasource"] for p in data["panels"] if "datasource" in p]
    assert datasources and all(d["uid"] == "${datasource}" for d in datasources)
    assert any(v["type"] == "datasource" for v in data["templating"]["list"])


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing = "promtool is missing: install the Debian package prometheus"
        if os.environ.get("O365COLLECTOR_REQUIRE_PROMTOOL"):
            pytest.fail(missing + " (O365COLLECTOR_REQUIRE_PROMTOOL is set, as in CI)")
        pytest.skip(missing)
    return promtool


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def test_promtool_accepts_the_rules() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_dashboard_expressions(tmp_path: Path) -> None:
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$tenant", ".*") for e in _dashboard_exprs()
    ]
    records = [{"record": f"dashboard:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert(name: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": name,
        "exp_alerts": [{"exp_labels": each} for each in labels],
    }


_MT = {"tenant": "contoso", "stream": "message_trace"}
_DETAIL = {"tenant": "contoso", "stream": "message_trace_detail"}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{matchers}}}", "values": values}


# Each case: the input series and when each alert is expected (labels without alertname).
_CASES: list[dict[str, Any]] = [
    {  # a failed stream; the healthy one does not alert
        "input_series": [
            _series("stream_up", _MT, "1 0x30"),
            _series("stream_up", _DETAIL, "1x30"),
        ],
        "alert_rule_test": [
            _alert("O365CollectorStreamFailed", "5m"),
            _alert("O365CollectorStreamFailed", "20m", {**_MT, "severity": "critical"}),
            _alert("O365CollectorStreamStalled", "20m"),  # failed: not "stalled" too
        ],
    },
    {  # message_trace stops committing; the detail stream commits once a day, normally
        "input_series": [
            _series("stream_up", _MT, "1x200"),
            _series("stream_up", _DETAIL, "1x200"),
            _series("checkpoint_commits_total", _MT, "0+1x30 30x170"),
            _series("checkpoint_lag_seconds", _MT, "40x200"),
            _series("checkpoint_commits_total", _DETAIL, "3x200"),
            _series("checkpoint_lag_seconds", _DETAIL, "90100x200"),
        ],
        "alert_rule_test": [
            _alert("O365CollectorStreamStalled", "60m"),
            _alert("O365CollectorStreamStalled", "110m", {**_MT, "severity": "warning"}),
            _alert("O365CollectorLagOverHorizon", "110m"),  # a horizon behind is normal
        ],
    },
    {  # nothing committed for 26 hours, whatever the stream
        "input_series": [
            _series("stream_up", _DETAIL, "1x1700"),
            _series("checkpoint_commits_total", _DETAIL, "3x1700"),
            _series("checkpoint_lag_seconds", _DETAIL, "90100x1700"),
        ],
        "alert_rule_test": [
            _alert("O365CollectorStreamStalled", "20h"),
            _alert("O365CollectorStreamStalled", "27h", {**_DETAIL, "severity": "warning"}),
        ],
    },
    {
        "input_series": [
            _series("checkpoint_lag_seconds", _MT, "100000x60"),
            _series("api_budget_requests_in_window", {"tenant": "contoso"}, "80x60"),
            _series("api_budget_requests_limit", {"tenant": "contoso"}, "80x60"),
            _series("api_budget_requests_in_window", {"tenant": "fabrikam"}, "10x60"),
            _series("api_budget_requests_limit", {"tenant": "fabrikam"}, "80x60"),
        ],
        "alert_rule_test": [
            _alert("O365CollectorLagOverHorizon", "40m", {**_MT, "severity": "critical"}),
            _alert(
                "O365CollectorQuotaExhausted",
                "40m",
                {"tenant": "contoso", "severity": "warning"},
            ),
        ],
    },
    {
        "input_series": [
            _series("api_throttled_total", {"api": "graph"}, "0+2x120"),
            _series(
                "component_discarded_events_total",
                {"sink": "devo", "reason": "too_large"},
                "0x5 1x60",
            ),
            _series(
                "component_errors_total",
                {"stage": "receiving", "error_type": "AuthError"},
                "0x5 1+1x60",
            ),
            _series("retention_clamped_seconds_total", _MT, "0x5 3600x60"),
            _series(
                "component_errors_total",
                {"stage": "sending", "error_type": "sink_retry"},
                "0+5x60",
            ),
        ],
        "alert_rule_test": [
            _alert("O365CollectorThrottled", "90m", {"api": "graph", "severity": "warning"}),
            _alert(
                "O365CollectorDeadLettersGrowing",
                "10m",
                {"sink": "devo", "reason": "too_large", "severity": "warning"},
            ),
            _alert("O365CollectorSignInFailing", "15m", {"severity": "critical"}),
            _alert(
                "O365CollectorHistoryLost",
                "10m",
                {**_MT, "severity": "warning"},
            ),
        ],
    },
]


def test_promtool_unit_tests_each_alert_fires_on_its_series(tmp_path: Path) -> None:
    _promtool()
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # promtool compares them whole: labels suffice
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", **case} for case in _CASES],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = _run("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
