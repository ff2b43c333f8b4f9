"""Tune one (workload, contender) pair in this fresh process; append the run to runs.jsonl.

Called by ``bench/suite.py run``; every contender gets the same builder (ms_droplet's fast
builder, its timeout recorded; its workers are kept across batches), runner settings (3 samples of at least 50 ms), cost model (xgb) and seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-iter", type=int, default=32)
    parser.add_argument("--results", required=True)
    args = parser.parse_args()

    # TuneContext imports every tensor intrinsic (about a minute here, the same for every contender):
    # done before the clock starts, so wall times compare the tuning itself.
    import tvm.s_tir.tensor_intrin  # noqa: F401
    from suite import parse_contender, work_dir_name
    from tvm.s_tir import meta_schedule as ms

    import ms_droplet
    from ms_droplet.builder import KeptPoolBuilder, fast_builder
    from ms_droplet.lab.strategies import typed
    from ms_droplet.machine import configured_threads, machine_info, use_all_cores
    from ms_droplet.progress import ProgressPrinter
    from ms_droplet.runners import interleaved_runner, local_runner
    from ms_droplet.timed import TimedStrategy
    from ms_droplet.workloads import flop_count, get_workload, host_target

    strategy_name, budget, post, options = parse_contender(args.contender, args.n)
    workload = get_workload(args.workload)
    target = host_target()
    results = Path(args.results)
    work_dir = results / "work" / args.workload / work_dir_name(args.contender, args.n, args.seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    use_all_cores()  # the runner's workers inherit it (their initializer does the same): recorded below

    timing = options.pop("runner", "local")
    runner = interleaved_runner() if timing == "interleaved" else local_runner(3, validate=False)
    inner = ms_droplet.DropletSearch(seed=args.seed, **typed(options)) if strategy_name == "droplet" else strategy_name
    builder = fast_builder()
    clock = {"cpu_s": 0.0, "candidates": 0}
    progress = ProgressPrinter(budget, flop_count(workload.mod))
    start = time.perf_counter()
    post_info = None
    try:
        database = ms.tune_tir(
            mod=workload.mod, target=target, work_dir=str(work_dir), max_trials_global=budget,
            num_trials_per_iter=args.per_iter, strategy=TimedStrategy(inner, clock),
            builder=builder,
            runner=runner,
            cost_model="xgb",
            measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), progress.callback(), _droplet_log(work_dir / "logs" / "droplet.log")],
            seed=args.seed, post_optimization=post,
        )
        error = None
    except Exception as err:  # the in-tree post-optimization pass may fail here: record it, as measured
        database, error = None, f"{type(err).__name__}: {err}"
    wall = time.perf_counter() - start
    if post:
        tuned_end = progress.curve[-1][1] if progress.curve else 0.0
        best_after = None
        if database is not None:
            top = database.get_top_k(database.commit_workload(workload.mod), 1)
            best_after = sum(float(x) for x in top[0].run_secs) / len(top[0].run_secs) if top else None
        post_info = {"error": error, "seconds_after_tuning": wall - tuned_end,
                     "best_before_s": progress.best, "best_after_s": best_after}
    elif error:
        raise SystemExit(f"tune_one: {args.workload} {args.contender} failed: {error}")

    record = {
        "workload": args.workload, "contender": args.contender, "n": args.n, "budget": budget,
        "seed": args.seed, "work_dir": str(work_dir), "runner": timing,
        "runner_threads": configured_threads(), "build_timeout_s": builder.timeout_sec,
        "build_workers": "kept" if isinstance(builder, KeptPoolBuilder) else "per batch",
        "wall_s": wall, "trials": progress.count,
        "failures": progress.failures, "best_latency_s": progress.best,
        "strategy_cpu_s": clock["cpu_s"],
        "strategy_cpu_per_candidate_ms": 1e3 * clock["cpu_s"] / max(clock["candidates"], 1),
        "curve": progress.curve, "machine": machine_info(),
        # the options in force, defaults included: a contender's name does not change with a default
        "strategy_options": inner.options if strategy_name == "droplet" else None,
        "command": " ".join(["python", *sys.argv]),
    }
    if post_info is not None:
        record["post_optimization"] = post_info
    with open(results / "runs.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"  {args.workload} {args.contender}: best {progress.best * 1e6:.1f} us, {progress.count} trials, "
          f"{wall:.0f} s", flush=True)
    return 0


def _droplet_log(path: Path):
    """A measure callback that, after the first batch, sends Droplet's decisions (moves, cuts,
    restarts) at INFO to the run's own file, for reading a run afterwards; warnings still reach
    the console. Not before: tuning sets MetaSchedule's loggers up (``logging.config``), which
    clears the handlers of every logger below ``tvm.s_tir.meta_schedule``."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class DropletLog(PyMeasureCallback):
        def __init__(self) -> None:
            self.attached = False

        def apply(self, *args) -> None:
            if not self.attached:
                _log_droplet(path)
                self.attached = True

    return DropletLog()


def _log_droplet(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    form = logging.Formatter("%(asctime)s [%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler, level in ((logging.FileHandler(path), logging.INFO), (logging.StreamHandler(), logging.WARNING)):
        handler.setLevel(level)
        handler.setFormatter(form)
        logger.addHandler(handler)


if __name__ == "__main__":
    raise SystemExit(main())
