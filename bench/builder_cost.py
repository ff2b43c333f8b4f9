"""Build cost per candidate: MetaSchedule's default LocalBuilder against ms_droplet's fast_builder.

Both build the same candidates (random replays of one workload's design spaces) in one
process, interleaved (default, fast, default, fast, ...), and the median per-candidate cost of
each is reported. Run it alone: another heavy job on a 2-core machine skews it.

    python bench/builder_cost.py --workload GMM-0 --candidates 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import tvm
from tvm.s_tir import meta_schedule as ms

from ms_droplet.builder import fast_builder
from ms_droplet.workloads import get_workload, host_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="GMM-0")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default-timeout", type=float, default=120.0,
                        help="timeout of the default builder (its own default, 30 s, times out here)")
    args = parser.parse_args()
    print("builder_cost: run this alone; other heavy jobs skew the timings", flush=True)

    workload = get_workload(args.workload)
    target = host_target()
    ctx = ms.TuneContext(mod=workload.mod, target=target, space_generator="post-order-apply",
                         search_strategy="replay-trace", task_name="b", num_threads=1, rand_state=1)
    ctx.pre_tuning(args.candidates, args.candidates, ctx.generate_design_space(), None, None)
    inputs = [ms.builder.BuilderInput(c.sch.mod, target) for c in ctx.generate_measure_candidates()]

    builders = {
        "default LocalBuilder": ms.builder.LocalBuilder(timeout_sec=args.default_timeout),
        "ms_droplet fast_builder": fast_builder(),
    }
    per_candidate: dict[str, list[float]] = {name: [] for name in builders}
    errors: dict[str, int] = dict.fromkeys(builders, 0)
    for r in range(args.rounds):
        for name, builder in builders.items():
            start = time.perf_counter()
            results = builder.build(inputs)
            elapsed = time.perf_counter() - start
            errors[name] += sum(1 for x in results if x.error_msg)
            per_candidate[name].append(elapsed / len(inputs))
            print(f"  round {r + 1} {name:24s} {elapsed:7.2f} s for {len(inputs)} "
                  f"({elapsed / len(inputs):.3f} s/candidate)", flush=True)

    medians = {name: statistics.median(v) for name, v in per_candidate.items()}
    ratio = medians["default LocalBuilder"] / medians["ms_droplet fast_builder"]
    print("median build cost per candidate:")
    for name, value in medians.items():
        print(f"  {name:24s} {value:.3f} s  ({errors[name]} build errors)")
    print(f"  default / fast = {ratio:.1f}x")
    out = Path(__file__).parent / "results" / "builder_cost.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "target": str(target),
                    "tvm": tvm.__version__, "date": time.strftime("%Y-%m-%d")},
        "workload": args.workload, "candidates": len(inputs), "rounds": args.rounds,
        "per_candidate_s": per_candidate, "median_s": medians, "errors": errors, "ratio": ratio,
    }, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
