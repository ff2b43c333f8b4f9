"""Does MetaSchedule's evolutionary search propose the same first batch twice from one seed?

Builds a fresh TuneContext (``rand_state`` fixed, numpy's global RNG reseeded for xgb's untrained
scores) twice per thread count and compares the schedules of the first batch of 32. Droplet's
exploration drives this search from inside (``ms_droplet/explore.py``), so its answer says whether
same-seed runs of two Droplet variants share their exploration. Times nothing; a minute or two.

    python bench/explore_repro.py --workload DEP-1 --threads 2,1
"""

from __future__ import annotations

import argparse


def first_batch(workload: str, threads: int, seed: int) -> list[int]:
    import numpy as np
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.trace import module_key
    from ms_droplet.workloads import get_workload, host_target

    np.random.seed(seed)
    ctx = ms.TuneContext(mod=get_workload(workload).mod, target=host_target(), space_generator="post-order-apply",
                         search_strategy=ms.search_strategy.EvolutionarySearch(), task_name="w",
                         num_threads=threads, rand_state=seed)
    strategy = ctx.search_strategy
    strategy.pre_tuning(300, 32, ctx.generate_design_space(), ms.database.MemoryDatabase(),
                        ms.cost_model.XGBModel(num_tuning_cores=1))
    keys = [module_key(c.sch.mod) for c in strategy.generate_measure_candidates()]
    strategy.post_tuning()
    return keys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="DEP-1")
    parser.add_argument("--threads", default="2,1", help="thread counts of the search's sampling, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for threads in (int(t) for t in args.threads.split(",")):
        a, b = (first_batch(args.workload, threads, args.seed) for _ in range(2))
        print(f"{args.workload}, {threads} thread(s): first batches {'identical' if a == b else 'differ'}, "
              f"{len(set(a) & set(b))} of {len(a)} schedules shared")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
