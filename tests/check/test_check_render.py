"""``check``'s report for people: a table where it fits, else plain blocks; nothing cut."""

from __future__ import annotations

import io

import pytest

from o365collector.check.model import Finding, Report
from o365collector.check.render import plain_lines, render

BOX = set("─│┃━┏┓┗┛┡┩└┘├┤┼╇")
URL = "https://login.microsoftonline.com/7d1b2c3e-0000-4000-8000-00000000a001/oauth2/v2.0/token"


def _report() -> Report:
    return Report(
        [
            Finding("tenant contoso-eu", "token graph", "pass", detail="signed in"),
            Finding(
                "tenant contoso-eu",
                "stream rws.DlpDetectionsReport",
                "fail",
                "consent_missing",
                f"403 from {URL}: the app has no Reports.Read.All",
                "grant admin consent for the application permission Reports.Read.All",
            ),
            Finding("sink file", "sink", "skip", detail="nothing to probe"),
        ]
    )


def _rendered(monkeypatch: pytest.MonkeyPatch, *, terminal: bool, columns: int) -> str:
    if terminal:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat the stream as a terminal
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    render(_report(), as_json=False, stream=out)
    return out.getvalue()


@pytest.mark.parametrize(("terminal", "columns"), [(True, 80), (False, 80), (True, 60)])
def test_at_80_columns_or_piped_nothing_is_cut(monkeypatch, terminal, columns) -> None:
    text = _rendered(monkeypatch, terminal=terminal, columns=columns)
    assert "…" not in text
    assert not BOX & set(text), "no table where it does not fit"
    for whole in ("tenant contoso-eu", "stream rws.DlpDetectionsReport", "consent_missing", URL):
        assert whole in text, (whole, text)
    assert text.splitlines()[-1] == "some checks failed: 1 passed, 1 failed, 1 skipped"


def test_a_wide_terminal_gets_the_table(monkeypatch) -> None:
    text = _rendered(monkeypatch, terminal=True, columns=250)
    assert BOX & set(text)
    assert "…" not in text
    assert "stream rws.DlpDetectionsReport" in text and URL in text


def test_plain_blocks_name_status_target_probe_and_problem() -> None:
    lines = plain_lines(_report())
    assert lines[0] == "PASS  tenant contoso-eu · token graph"
    assert lines[2] == "FAIL  tenant contoso-eu · stream rws.DlpDetectionsReport  [consent_missing]"
    assert lines[3].startswith("      detail: 403 from https://")
    assert lines[4].startswith("      fix: grant admin consent")
    assert lines[5] == "SKIP  sink file · sink"


def test_json_is_unchanged(monkeypatch) -> None:
    out = io.StringIO()
    render(_report(), as_json=True, stream=out)
    assert '"problem": "consent_missing"' in out.getvalue()
