"""Without the emulator distribution, `demo` and `emulator` say how to install it (exit 2)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from o365collector.cli import EMULATOR_MISSING, main


@pytest.fixture
def no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide o365emulator: an import of it raises ModuleNotFoundError, as when not installed."""
    for name in [m for m in sys.modules if m == "o365emulator" or m.startswith("o365emulator.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "o365emulator", None)


@pytest.mark.parametrize("args", [["emulator", "--port", "0"], ["demo", "--duration", "1"]])
def test_a_missing_emulator_names_how_to_install_it(no_emulator, tmp_path, args) -> None:
    if args[0] == "demo":
        args = [*args, "--dir", str(tmp_path / "demo")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "pip install './emulator'" in result.output
    assert "Traceback" not in result.output
    assert EMULATOR_MISSING.split(":")[0] in result.output
