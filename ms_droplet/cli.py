"""``ms-droplet``: tune a kernel with Droplet Search (or a MetaSchedule strategy) from the shell."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

STRATEGIES = ("droplet", "evolutionary", "replay-trace")
COST_MODELS = ("xgb", "random", "none")


class _Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr and exit status 2, never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_in(low: int, high: int, expected: str):
    """An argparse type: an integer in ``[low, high)``, else an error quoting the text."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value < high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_in(1, 2**63, "a positive integer")
_seed = _int_in(0, 2**31 - 1, "an integer in [0, 2**31-2]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ms-droplet", description="Droplet Search for TVM MetaSchedule.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tune = sub.add_parser("tune", help="tune one kernel and print a summary")
    tune.add_argument(
        "--workload", default="matmul",
        help="a built-in workload (matmul, matmul-small, conv2d) or a MetaSchedule test workload "
        "KIND-INDEX such as GMM-2 or C2D-1; 'ms-droplet workloads' lists them (default: matmul)",
    )
    tune.add_argument(
        "--target", default=None,
        help="'host' (default: the host CPU with mcpu and num-cores set) or a JSON target dict",
    )
    tune.add_argument("--trials", type=_positive_int, default=200, help="trial budget (default: 200)")
    tune.add_argument(
        "--per-iter", type=_positive_int, default=32, help="candidates measured per batch (default: 32)"
    )
    tune.add_argument("--strategy", choices=STRATEGIES, default="droplet", help="search strategy (default: droplet)")
    tune.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (default: xgb)")
    tune.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    tune.add_argument(
        "--work-dir", type=Path, default=None,
        help="database and logs; re-running on it resumes (default: ./ms_droplet_work/WORKLOAD-STRATEGY)",
    )
    tune.add_argument(
        "--repeat", type=_positive_int, default=3,
        help="run-time samples per candidate, for the significance test (default: 3)",
    )
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    sub.add_parser("workloads", help="list the workload names --workload takes")

    report = sub.add_parser("report", help="plot the tuning curve of any MetaSchedule work dir")
    report.add_argument("work_dir", type=Path, help="a work dir holding database_tuning_record.json")
    report.add_argument("--out", type=Path, default=None, help="PNG to write (default: WORK_DIR/tuning_curve.png)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ms-droplet`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "workloads":
        from .workloads import workload_names

        print("\n".join(workload_names()))
        return 0
    if args.command == "report":
        return _report(args, parser)
    try:
        return _tune(args, parser)
    except KeyboardInterrupt:
        print("ms-droplet: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .report import plot_curve, read_curve

    try:
        curve = read_curve(args.work_dir)
    except ValueError as err:
        parser.error(str(err))
    out = args.out or args.work_dir / "tuning_curve.png"
    if not out.parent.is_dir():
        parser.error(f"cannot write {str(out)!r}: its folder does not exist")
    for workload, values in sorted(curve.best.items()):
        best = values[-1]
        shown = f"{best * 1e6:.2f} us" if math.isfinite(best) else "no valid run"
        print(f"workload {workload}: {len(values)} records ({curve.failures.get(workload, 0)} failed), best {shown}")
    print(f"curve written to {plot_curve(curve, out, title=str(args.work_dir))}")
    return 0


def _tune(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .workloads import flop_count, get_workload, parse_target

    try:
        workload = get_workload(args.workload)
        target = parse_target(args.target)
    except ValueError as err:
        parser.error(str(err))
    work_dir = args.work_dir or Path("ms_droplet_work") / f"{workload.name}-{args.strategy}"
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"cannot create work dir {str(work_dir)!r}: {err.strerror}")
    if not os.access(work_dir, os.W_OK):
        parser.error(f"work dir {str(work_dir)!r} is not writable")

    from tvm.s_tir import meta_schedule as ms

    from . import DropletSearch
    from .builder import fast_builder
    from .progress import ProgressPrinter

    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    strategy = DropletSearch(seed=args.seed) if args.strategy == "droplet" else args.strategy
    flops = flop_count(workload.mod)
    progress = ProgressPrinter(args.trials, flops, quiet=args.quiet)
    print(f"ms-droplet: tuning {workload.name} ({workload.description})")
    print(f"  target {target}, strategy {args.strategy}, {args.trials} trials, seed {args.seed}")
    print(f"  work dir {work_dir}")
    start = time.perf_counter()
    database = ms.tune_tir(
        mod=workload.mod,
        target=target,
        work_dir=str(work_dir),
        max_trials_global=args.trials,
        num_trials_per_iter=args.per_iter,
        strategy=strategy,
        builder=fast_builder(),
        runner=ms.runner.LocalRunner(
            evaluator_config=ms.runner.EvaluatorConfig(number=1, repeat=args.repeat, min_repeat_ms=50)
        ),
        cost_model=args.cost_model,
        measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), progress.callback()],
        seed=args.seed,
    )
    wall = time.perf_counter() - start
    top = database.get_top_k(database.commit_workload(workload.mod), 1)
    print("ms-droplet: summary")
    if not top:
        print("  no valid schedule was measured")
        return 1
    latency = math.fsum(float(x) for x in top[0].run_secs) / len(top[0].run_secs)
    print(f"  best latency   {latency * 1e6:.2f} us")
    print(f"  throughput     {flops / latency / 1e9:.2f} GFLOPS")
    print(f"  trials         {progress.count} measured in this run ({progress.failures} failed), "
          f"{len(database.get_all_tuning_records())} in the database")
    print(f"  wall time      {wall:.1f} s")
    print(f"  database       {work_dir / 'database_tuning_record.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
