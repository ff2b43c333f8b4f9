"""bench/seed_bootstrap.py: the verdict's interval over resampled tuning seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from seed_bootstrap import bootstrap, geo_mean_ratio, main, seed_latencies


def _summary(rows: dict[str, dict[str, list[float]]]) -> dict:
    return {"workloads": {w: {"contenders": {c: {"seeds": {str(i): {"latency_s": x} for i, x in enumerate(xs)}}
                                             for c, xs in by.items()}} for w, by in rows.items()}}


def test_a_constant_ratio_has_no_spread():
    pairs = {"A": ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), "B": ([5.0], [5.0])}
    assert geo_mean_ratio(pairs) == pytest.approx(0.5**0.5)
    draws = bootstrap({"A": ([1.0, 1.0], [2.0, 2.0])}, draws=200)
    assert draws == pytest.approx([0.5] * 200)


def test_the_interval_holds_the_point_and_widens_with_spread():
    tight = {"W": ([0.9, 0.91, 0.89, 0.9, 0.9], [1.0, 1.01, 0.99, 1.0, 1.0])}
    loose = {"W": ([0.6, 1.2, 0.9, 0.7, 1.1], [1.0, 1.3, 0.8, 1.0, 0.9])}
    intervals = [np.percentile(bootstrap(pairs, draws=4000), [2.5, 97.5]) for pairs in (tight, loose)]
    for pairs, (low, high) in zip((tight, loose), intervals, strict=True):
        assert low <= geo_mean_ratio(pairs) <= high
    (t_low, t_high), (l_low, l_high) = intervals
    assert l_high - l_low > 5 * (t_high - t_low)


def test_reads_a_summary_and_skips_workloads_without_both(tmp_path, capsys):
    summary = _summary({"W1": {"d@N": [1.0, 1.0], "evolutionary@N": [2.0, 2.0]}, "W2": {"d@N": [3.0]}})
    assert seed_latencies(summary, "d@N", "evolutionary@N") == {"W1": ([1.0, 1.0], [2.0, 2.0])}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert main([str(path), "--contender", "d@N", "--draws", "100"]) == 0
    out = capsys.readouterr().out
    assert "over 1 workloads" in out and ": 0.500;" in out and "at most 0.9 in 100.0%" in out
    assert main([str(path), "--contender", "other@N"]) == 2
    assert "'other@N'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json"), "--contender", "d@N"]) == 2
