"""Would MetaSchedule's xgb cost model rank the exploration's schedules before its warm-up ends?

xgb scores at random until it has seen 100 results (``XGBModel.num_warmup_samples``), so the
first 100 trials of an evolutionary exploration are picked at random from its population. Those
records are a fair sample of what the model would have been asked to rank. For each run and each
``--after`` k, this trains xgb on the run's first k records (in the order measured) and scores
records k to ``--stop``: the rank correlation of scores with speed, and the best time among the
best-scored quarter of them against the best a random quarter holds on average (both over the
best of all of them; 1.00 is the best). Reads files, times nothing; run it alone all the same.

    python bench/early_model.py --results bench/results/xeon-2t --workload GMM-2 \
        droplet-at-N-N300 droplet-at-N-N300-s1 evolutionary-at-N-N300 --after 32,64
"""

from __future__ import annotations

import argparse
import sys
from math import comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import measured_rows


def expected_best_of_random(times: list[float], q: int) -> float:
    """The mean of the fastest of ``q`` distinct times drawn at random from ``times``."""
    ordered = sorted(times)
    n = len(ordered)
    # P(the fastest drawn is the i-th fastest) = C(n - i - 1, q - 1) / C(n, q), i from 0
    return sum(t * comb(n - i - 1, q - 1) for i, t in enumerate(ordered)) / comb(n, q)


def judge(times: list[float], scores: list[float], share: float) -> tuple[float, float, float]:
    """(Spearman of score with speed, best of the best-scored ``share`` / best, a random share's / best)."""
    from scipy.stats import spearmanr

    q = max(1, round(share * len(times)))
    picked = sorted(range(len(times)), key=lambda i: -scores[i])[:q]
    best = min(times)
    rho = float(spearmanr(scores, [-t for t in times]).statistic)
    return rho, min(times[i] for i in picked) / best, expected_best_of_random(times, q) / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("runs", nargs="+", help="work dir names under RESULTS/work/WORKLOAD")
    parser.add_argument("--after", default="32,64", help="records the model trains on first, comma-separated")
    parser.add_argument("--stop", type=int, default=100, help="records up to here are judged (the warm-up's end)")
    parser.add_argument("--share", type=float, default=0.25, help="share of the judged records picked by score")
    args = parser.parse_args(argv)

    import numpy as np
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner import RunnerResult

    from ms_droplet.workloads import get_workload, host_target

    mod = get_workload(args.workload).mod
    ctx = ms.TuneContext(mod=mod, target=host_target(), space_generator="post-order-apply", task_name="w",
                         num_threads=1)
    ctx.generate_design_space()
    post = list(ctx.space_generator.postprocs)
    afters = [int(k) for k in args.after.split(",")]
    summary = {k: [] for k in afters}
    for run in args.runs:
        rows = measured_rows(f"{args.results}/work/{args.workload}/{run}", mod, post)
        for k in afters:
            seen, window = rows[:k], [(t, c) for t, c in rows[k:args.stop] if t < float("inf")]
            if len(window) < 8:
                print(f"{run}: after {k}: only {len(window)} records to judge, skipped")
                continue
            model = ms.cost_model.XGBModel(num_tuning_cores=1, num_warmup_samples=0)
            model.update(ctx, [c for _, c in seen],
                         [RunnerResult([t] if t < float("inf") else [1e10], None) for t, _ in seen])
            scores = np.asarray(model.predict(ctx, [c for _, c in window]), dtype=float).tolist()
            verdict = judge([t for t, _ in window], scores, args.share)
            summary[k].append(verdict)
            print(f"{run}: after {k}, {len(window)} judged: rank correlation {verdict[0]:.2f}, best of the "
                  f"best-scored {args.share:.0%} {verdict[1]:.3f}, of a random {args.share:.0%} {verdict[2]:.3f}")
    for k, rows in summary.items():
        if rows:
            med = np.median(np.asarray(rows), axis=0)
            print(f"{args.workload} after {k} ({len(rows)} runs), medians: rank correlation {med[0]:.2f}, "
                  f"best-scored {med[1]:.3f}, random {med[2]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
