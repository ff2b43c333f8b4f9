"""The bench's quick tier end to end, so that bench/ cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.long
def test_quick_tier_runs_compares_and_plots(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "suite.py"), "quick", "--out", str(tmp_path), "--n", "8",
         "--workload", "GMM-0"],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert {r["contender"] for r in runs} == {"droplet@N", "evolutionary@N", "replay-trace@N"}
    for run in runs:
        assert 1 <= run["trials"] <= 8
        assert run["curve"] and run["strategy_cpu_s"] >= 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["workloads"]["GMM-0"]["contenders"]
    assert {"droplet@N", "evolutionary@N", "replay-trace@N", "numpy"} <= set(rows)
    assert rows["evolutionary@N"]["latency_s"] > 0
    assert rows["droplet@N"]["ratio_to_evolutionary@N"] == pytest.approx(
        rows["droplet@N"]["latency_s"] / rows["evolutionary@N"]["latency_s"]
    )
    assert len(rows["droplet@N"]["samples_s"]) == 5
    assert "| GMM-0 | droplet@N |" in (tmp_path / "summary.md").read_text()
    for png in ("curve-GMM-0.png", "ratios.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"
