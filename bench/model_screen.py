"""Would the cost model have told the descents' hopeless candidates from the useful ones?

Replays one run's records in the order they were measured; before each block of ``--every``
records it trains MetaSchedule's xgb cost model on every record before it (as the strategy's
model had seen them), and scores the block's candidates and the best schedule measured so far.
Prints, for the records after ``--start`` (the descents' trials, at N = 300), how the predicted
score relative to the incumbent's separates candidates measured at least 1.5x slower than the
incumbent from those within 1.1x of it, and what a cut at each ``--cuts`` fraction would have
skipped; with ``--trust``, also what the cut would have skipped had it acted only while the
model's scores of the blocks judged before agreed with their times at that rank correlation
(``model_cut_trust``; each block of ``--every`` records is one group, scored against one
incumbent by one model). Reads files, times nothing; run it alone all the same (it trains
models). ``--load`` reads a file ``--out`` wrote instead of training again.

    python bench/model_screen.py --results bench/results/xeon-2t --workload GMM-2 \
        droplet-at-N-N300 droplet-at-N-N300-s1 --trust 0.4
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import measured_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("runs", nargs="+", help="work dir names under RESULTS/work/WORKLOAD")
    parser.add_argument("--start", type=int, default=150, help="first record judged")
    parser.add_argument("--every", type=int, default=32, help="records per model retraining")
    parser.add_argument("--cuts", default="0.3,0.5,0.7", help="predicted fractions of the incumbent's score")
    parser.add_argument("--out", help="write every judged record's (ratio measured, ratio predicted) as JSON")
    parser.add_argument("--load", help="read what --out wrote (of these runs) instead of training the model again")
    parser.add_argument("--trust", type=float, help="also the cut gated at this rank correlation (model_cut_trust)")
    parser.add_argument("--trust-after", type=int, default=32, help="judged records the gate needs first")
    args = parser.parse_args(argv)
    cuts = [float(c) for c in args.cuts.split(",")]
    if args.load:
        with open(args.load) as f:
            saved = json.load(f)
        for run in args.runs:
            report(run, saved[run], cuts, args)
        return 0

    import numpy as np
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.runner import RunnerResult

    from ms_droplet.workloads import get_workload, host_target

    mod, target = get_workload(args.workload).mod, host_target()
    ctx = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply", task_name="w", num_threads=1)
    ctx.generate_design_space()
    post = list(ctx.space_generator.postprocs)
    out = {}
    for run in args.runs:
        rows = measured_rows(f"{args.results}/work/{args.workload}/{run}", mod, post)
        judged = []  # (measured / incumbent, predicted / incumbent's prediction)
        for block in range(args.start, len(rows), args.every):
            model = ms.cost_model.XGBModel(num_tuning_cores=1)
            seen = rows[:block]
            model.update(ctx, [c for _, c in seen], [RunnerResult([t] if t < float("inf") else [1e10], None) for t, _ in seen])
            best_i = min(range(block), key=lambda i: rows[i][0])
            part = rows[block:block + args.every]
            scores = np.asarray(model.predict(ctx, [rows[best_i][1]] + [c for _, c in part]), dtype=float)
            for (t, _), s in zip(part, scores[1:], strict=True):
                judged.append((t / rows[best_i][0], float(s / scores[0]) if scores[0] > 0 else float("nan")))
        out[run] = judged
        report(run, judged, cuts, args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f)
    return 0


def report(run: str, judged: list, cuts: list[float], args) -> None:
    import numpy as np

    from ms_droplet.stats import rank_agreement

    bad = [p for m, p in judged if m >= 1.5]
    good = [p for m, p in judged if m <= 1.1]
    print(f"{run}: {len(judged)} records judged; {len(bad)} at >= 1.5x the incumbent, {len(good)} within 1.1x")
    if bad and good:
        print(f"  predicted / incumbent's: hopeless median {np.median(bad):.2f}, useful median {np.median(good):.2f}")
    blocks = [judged[i:i + args.every] for i in range(0, len(judged), args.every)]
    # the gate before each block, on the blocks before it: (score, time) pairs, a group per block
    groups = [[(p, m) for m, p in b if not math.isnan(p)] for b in blocks]  # NaN: the incumbent scored 0
    gate = [args.trust is None or _trusted(groups[:i], args) for i in range(len(blocks))]
    for c in cuts:
        line = (f"  cut at {c}: skips {sum(p < c for p in bad)} of {len(bad)} hopeless, "
                f"{sum(p < c for p in good)} of {len(good)} useful "
                f"(of which {sum(p < c for m, p in judged if m < 1.0)} faster than the incumbent)")
        if args.trust is not None:
            gated = [(m, p) for b, on in zip(blocks, gate, strict=True) if on for m, p in b if p < c]
            line += (f"; gated at {args.trust}: {sum(m >= 1.5 for m, _ in gated)} hopeless, "
                     f"{sum(m <= 1.1 for m, _ in gated)} useful ({sum(m < 1.0 for m, _ in gated)} faster)")
        print(line)
    if args.trust is not None:
        print(f"  gate open for {sum(gate)} of {len(blocks)} blocks; rank agreement of all blocks "
              f"{rank_agreement(groups)[0]:.2f}")


def _trusted(groups: list, args) -> bool:
    from ms_droplet.stats import rank_agreement

    rho, pairs = rank_agreement(groups)
    return pairs >= args.trust_after and rho >= args.trust


if __name__ == "__main__":
    raise SystemExit(main())
