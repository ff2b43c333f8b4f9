"""How many of each run's trials after the exploration ran far slower than the best before them?

Reads every run's records (``RESULTS/work/WORKLOAD/*-at-N-N300*``) in the order measured and
counts the trials after ``--start`` at least 1.5, 2 and 3 times the best time measured before
them: budget a strategy spent on schedules it could have known were slow. Times nothing.

    python bench/slow_trials.py --results bench/results/xeon-2t --workloads GMM-2,C2D-1,DEP-1
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--workloads", default="GMM-2,C2D-1,C1D-0,DEP-1,T2D-1,SFM-1")
    parser.add_argument("--runs", default="*-at-N-N300*", help="work dir pattern under RESULTS/work/WORKLOAD")
    parser.add_argument("--start", type=int, default=150, help="first trial counted (the exploration's end)")
    args = parser.parse_args(argv)
    for workload in args.workloads.split(","):
        for work in sorted(glob.glob(f"{args.results}/work/{workload}/{args.runs}")):
            times = []
            with open(f"{work}/database_tuning_record.json") as f:
                for line in f:  # committed in the order measured
                    secs = json.loads(line)[1][1]
                    times.append(statistics.mean(secs) if secs else float("inf"))
            best, slow = min(times[:args.start], default=float("inf")), {1.5: 0, 2: 0, 3: 0}
            for t in times[args.start:]:
                for factor in slow:
                    slow[factor] += t >= factor * best
                best = min(best, t)
            counts = " ".join(f">={k}x:{v}" for k, v in slow.items())
            print(f"{workload} {work.split('/')[-1]:50s} after {args.start}: {len(times) - args.start} trials, {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
