"""How sure is a six-workload verdict? Resample the tuning seeds of a compare.

A compare's verdict is a geometric mean over workloads of median-over-seeds ratios; with three to
five seeds a side, one lucky seed moves it by several percent. This resamples each contender's
seeds (with replacement, per workload, the kernels as re-timed in that compare) and reports the
interval the verdict falls in and how often it meets a target.

    python bench/seed_bootstrap.py bench/results/zen3/summary-N300-5seeds.json \\
        --contender droplet@N --reference evolutionary@N --at-most 0.90
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import _geomean  # the compare's own verdict arithmetic


def geo_mean_ratio(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> float:
    """Geometric mean over workloads of median(contender's seeds) / median(reference's seeds)."""
    return _geomean([float(np.median(a) / np.median(b)) for a, b in pairs.values()])


def bootstrap(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]], draws: int = 20000,
              seed: int = 0) -> np.ndarray:
    """``draws`` verdicts, each from every workload's seeds of both sides drawn with replacement."""
    rng = np.random.default_rng(seed)
    logs = np.zeros(draws)
    for mine, ref in pairs.values():
        a, b = np.asarray(mine, dtype=float), np.asarray(ref, dtype=float)
        logs += np.log(np.median(rng.choice(a, (draws, len(a))), axis=1)
                       / np.median(rng.choice(b, (draws, len(b))), axis=1))
    return np.exp(logs / len(pairs))


def seed_latencies(summary: dict, contender: str, reference: str) -> dict[str, tuple[list[float], list[float]]]:
    """Per workload, each side's kernels (one per tuning seed) as re-timed in the compare."""
    pairs = {}
    for workload, row in summary["workloads"].items():
        rows = row["contenders"]
        if contender in rows and reference in rows:
            pairs[workload] = tuple([s["latency_s"] for s in rows[name]["seeds"].values()]
                                    for name in (contender, reference))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="a compare's summary-N<n>[-tag].json")
    parser.add_argument("--contender", required=True)
    parser.add_argument("--reference", default="evolutionary@N")
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--at-most", type=float, default=0.90, help="target: the verdict at most this")
    args = parser.parse_args(argv)
    try:
        summary = json.loads(args.summary.read_text())
    except (OSError, ValueError) as err:
        print(f"seed_bootstrap: cannot read {args.summary}: {err}", file=sys.stderr)
        return 2
    pairs = seed_latencies(summary, args.contender, args.reference)
    if not pairs:
        print(f"seed_bootstrap: no workload of {args.summary} has both {args.contender!r} and {args.reference!r}",
              file=sys.stderr)
        return 2
    draws = bootstrap(pairs, args.draws)
    low, mid, high = np.percentile(draws, [2.5, 50, 97.5])
    seeds = ", ".join(f"{w} {len(a)}/{len(b)}" for w, (a, b) in pairs.items())
    print(f"{args.contender} / {args.reference} over {len(pairs)} workloads (seeds {seeds}): "
          f"{geo_mean_ratio(pairs):.3f}; resampled seeds: median {mid:.3f}, 95% interval {low:.3f}-{high:.3f}, "
          f"at most {args.at_most:g} in {np.mean(draws <= args.at_most):.1%} of {args.draws} draws")
    return 0


if __name__ == "__main__":
    sys.exit(main())
