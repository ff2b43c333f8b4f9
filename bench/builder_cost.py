"""Build cost per candidate: MetaSchedule's default LocalBuilder against ms_droplet's fast_builder.

The builders build the same candidates (random replays of one workload's design spaces) in one
process, interleaved, and the median per-candidate cost of each is reported: MetaSchedule's
``LocalBuilder`` (new workers per batch, each importing every tensor intrinsic), the same with
ms_droplet's ``build`` (new workers per batch, no import), and ``fast_builder()`` (that build in
workers kept across batches; its first batch starts them, so it is left out of its median).
Run it alone: another heavy job on a 2-core machine skews it.

    python bench/builder_cost.py --workload GMM-0 --candidates 8 --rounds 3
    python bench/builder_cost.py --workload SFM-1 --candidates 1 --rounds 7 --no-default --out bench/results/zen5/builder_cost-SFM-1-1.json
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

from ms_droplet.builder import DEFAULT_BUILD_TIMEOUT, build, fast_builder
from ms_droplet.workloads import get_workload, host_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="GMM-0")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default-timeout", type=float, default=120.0,
                        help="timeout of the default builder (its own default, 30 s, times out here)")
    parser.add_argument("--no-default", action="store_true", help="leave out MetaSchedule's default builder (slow)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "builder_cost.json")
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
        "build, workers per batch": ms.builder.LocalBuilder(timeout_sec=DEFAULT_BUILD_TIMEOUT, f_build=build),
        "fast_builder (kept workers)": fast_builder(),
    }
    if args.no_default:
        del builders["default LocalBuilder"]
    per_candidate: dict[str, list[float]] = {name: [] for name in builders}
    errors: dict[str, int] = dict.fromkeys(builders, 0)
    fast = "fast_builder (kept workers)"
    builders[fast].build(inputs)  # starts its workers, once per tuning run
    for r in range(args.rounds):
        for name, builder in builders.items():
            start = time.perf_counter()
            results = builder.build(inputs)
            elapsed = time.perf_counter() - start
            errors[name] += sum(1 for x in results if x.error_msg)
            per_candidate[name].append(elapsed / len(inputs))
            print(f"  round {r + 1} {name:28s} {elapsed:7.2f} s for {len(inputs)} "
                  f"({elapsed / len(inputs):.3f} s/candidate)", flush=True)

    medians = {name: statistics.median(v) for name, v in per_candidate.items()}
    ratios = {name: value / medians[fast] for name, value in medians.items()}
    print(f"median build cost per candidate (batches of {len(inputs)}):")
    for name, value in medians.items():
        print(f"  {name:28s} {value:.3f} s  ({errors[name]} build errors, {ratios[name]:.1f}x fast_builder)")
    args.out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": platform.processor() or platform.machine(), "target": str(target),
                    "tvm": tvm.__version__, "date": time.strftime("%Y-%m-%d")},
        "workload": args.workload, "candidates": len(inputs), "rounds": args.rounds,
        "per_candidate_s": per_candidate, "median_s": medians, "errors": errors, "ratio_to_fast_builder": ratios,
    }, indent=2))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
