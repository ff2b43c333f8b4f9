"""Every tutorial runs at a tiny budget, so none can rot."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(path), "--trials", "8", "--work-dir", str(tmp_path)])
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "output matches numpy" in out
    assert list(tmp_path.glob("**/database_tuning_record.json"))
