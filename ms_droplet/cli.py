"""``ms-droplet``: tune a kernel with Droplet Search (or a MetaSchedule strategy) from the shell."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .builder import DEFAULT_BUILD_TIMEOUT, fast_builder

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


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


_seed = _int_in(0, 2**31 - 1, "an integer in [0, 2**31-2]")


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError(f"expected NAME:D1,D2,... with positive dimensions, got {text!r}")
    return name, shape


def _tracker(text: str) -> str:
    from .runners import parse_tracker

    try:
        parse_tracker(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _add_tuning_options(parser: argparse.ArgumentParser, default_trials: int, work_dir_help: str) -> None:
    """The options ``tune`` and ``tune-model`` share."""
    parser.add_argument(
        "--target", default=None,
        help="'host' (default: the host CPU with mcpu and num-cores set) or a JSON target dict",
    )
    parser.add_argument(
        "--trials", type=_positive_int, default=default_trials, help=f"trial budget (default: {default_trials})"
    )
    parser.add_argument(
        "--per-iter", type=_positive_int, default=32, help="candidates measured per batch (default: 32)"
    )
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="droplet", help="search strategy (default: droplet)"
    )
    parser.add_argument(
        "--explore", choices=("auto", "evolutionary", "replay"), default="auto",
        help="droplet's exploration: MetaSchedule's evolutionary search, random replay, or auto "
        "(evolutionary when there is a cost model and at least 100 exploration trials) (default: auto)",
    )
    parser.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (default: xgb)")
    parser.add_argument(
        "--build-timeout", type=_positive_seconds, default=DEFAULT_BUILD_TIMEOUT, metavar="SECONDS",
        help="a candidate's build fails after this long (default: %(default)g)",
    )
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--work-dir", type=Path, default=None,
        help=f"database and logs; re-running on it resumes (default: {work_dir_help})",
    )
    parser.add_argument(
        "--runner", choices=("interleaved", "local"), default="interleaved",
        help="how candidates are timed on this machine: 'interleaved' (a batch in shuffled rounds, one "
        "sample per candidate per round; droplet then decides moves on per-round pairs) or 'local' "
        "(MetaSchedule's LocalRunner, each candidate's samples back to back) (default: interleaved)",
    )
    parser.add_argument(
        "--repeat", type=_positive_int, default=None,
        help="run-time samples per candidate (rounds, for the interleaved runner) "
        "(default: 5 interleaved, 3 local or RPC)",
    )
    parser.add_argument(
        "--rpc", type=_tracker, default=None, metavar="HOST:PORT",
        help="measure on the servers of this TVM RPC tracker instead of locally (needs --rpc-key)",
    )
    parser.add_argument("--rpc-key", default=None, help="device key the RPC servers registered with")
    parser.add_argument(
        "--rpc-workers", type=_positive_int, default=None,
        help="candidates measured at once over RPC (default: one per server registered now)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ms-droplet", description="Droplet Search for TVM MetaSchedule.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tune = sub.add_parser("tune", help="tune one kernel and print a summary")
    tune.add_argument(
        "--workload", default="matmul",
        help="a built-in workload (matmul, matmul-small, conv2d) or a MetaSchedule test workload "
        "KIND-INDEX such as GMM-2 or C2D-1; 'ms-droplet workloads' lists them (default: matmul)",
    )
    _add_tuning_options(tune, default_trials=200, work_dir_help="./ms_droplet_work/WORKLOAD-STRATEGY")

    model = sub.add_parser("tune-model", help="tune every task of a model, compile it, compare with untuned")
    model.add_argument("model", help="an .onnx file, or a built-in model: cnn, transformer")
    model.add_argument(
        "--input-shape", action="append", type=_input_shape, default=[], metavar="NAME:D1,D2,...",
        help="shape of an ONNX input the file leaves symbolic (repeat for several inputs)",
    )
    model.add_argument(
        "--out", type=Path, default=None, help="compiled model library to write (default: WORK_DIR/MODEL.so)"
    )
    model.add_argument(
        "--rounds", type=_positive_int, default=5, help="interleaved end-to-end timing rounds (default: 5)"
    )
    _add_tuning_options(model, default_trials=500, work_dir_help="./ms_droplet_work/MODEL-STRATEGY")

    sub.add_parser("workloads", help="list the workload names --workload takes")

    report = sub.add_parser("report", help="plot the tuning curve of any MetaSchedule work dir")
    report.add_argument("work_dir", type=Path, help="a work dir holding database_tuning_record.json")
    report.add_argument("--out", type=Path, default=None, help="PNG to write (default: WORK_DIR/tuning_curve.png)")

    from .lab.cli import add_parsers

    add_parsers(sub, _positive_int, _seed)
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
    if args.command in ("landscape", "simulate"):
        from .lab.cli import run

        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
        return run(args, parser)
    if args.explore != "auto" and args.strategy != "droplet":
        parser.error(f"--explore {args.explore} applies to --strategy droplet only, not {args.strategy!r}")
    if args.explore == "evolutionary" and args.cost_model == "none":
        parser.error("--explore evolutionary needs a cost model; --cost-model none was given")
    # MetaSchedule's INFO lines (one per runner made, per batch) would drown the progress lines.
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    from .machine import use_all_cores

    use_all_cores()  # tune-model times builds in this process, and RPC servers started here inherit it
    try:
        return _tune_model(args, parser) if args.command == "tune-model" else _tune(args, parser)
    except KeyboardInterrupt:
        print("ms-droplet: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:
        from .interrupt import TuningInterrupted

        if not isinstance(err, TuningInterrupted):
            raise
        print("ms-droplet: interrupted; the database holds every finished batch: re-run the same "
              "command to resume", file=sys.stderr)
        return 130


def _report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .report import plot_curve, read_curve, workload_labels

    try:
        curve = read_curve(args.work_dir)
    except ValueError as err:
        parser.error(str(err))
    out = args.out or args.work_dir / "tuning_curve.png"
    if not out.parent.is_dir():
        parser.error(f"cannot write {str(out)!r}: its folder does not exist")
    labels = workload_labels(args.work_dir)
    for workload, values in sorted(curve.best.items()):
        best = values[-1]
        shown = f"{best * 1e6:.2f} us" if math.isfinite(best) else "no valid run"
        print(f"workload {workload} ({labels.get(workload, '?')}): {len(values)} records "
              f"({curve.failures.get(workload, 0)} failed), best {shown}")
    print(f"curve written to {plot_curve(curve, out, title=str(args.work_dir), labels=labels)}")
    return 0


def _work_dir(args: argparse.Namespace, parser: argparse.ArgumentParser, name: str) -> Path:
    work_dir = args.work_dir or Path("ms_droplet_work") / f"{name}-{args.strategy}"
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"cannot create work dir {str(work_dir)!r}: {err.strerror}")
    if not os.access(work_dir, os.W_OK):
        parser.error(f"work dir {str(work_dir)!r} is not writable")
    from .database import check_work_dir

    try:  # before MetaSchedule opens (and appends to) the files
        check_work_dir(work_dir)
    except ValueError as err:
        parser.error(str(err))
    return work_dir


def _runner(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """A local runner, or an RPC runner when ``--rpc`` is given; checks the tracker first."""
    from .runners import DEFAULT_REPEAT, interleaved_runner, local_runner, rpc_runner

    if args.rpc is None:
        if args.rpc_key is not None or args.rpc_workers is not None:
            parser.error("--rpc-key and --rpc-workers need --rpc HOST:PORT")
        if args.runner == "interleaved":
            return interleaved_runner() if args.repeat is None else interleaved_runner(rounds=args.repeat)
        return local_runner(args.repeat or DEFAULT_REPEAT)
    if args.rpc_key is None:
        parser.error(f"--rpc {args.rpc} needs --rpc-key KEY (the key the servers registered with)")
    try:
        return rpc_runner(args.rpc, args.rpc_key, repeat=args.repeat or DEFAULT_REPEAT, max_workers=args.rpc_workers)
    except ValueError as err:
        parser.error(str(err))


@contextlib.contextmanager
def _interruptible(interrupt):
    """Whatever MetaSchedule raises once SIGINT came (the FFI may wrap it) means "interrupted"."""
    from .interrupt import TuningInterrupted

    try:
        yield
    except Exception as err:
        if interrupt.raised:
            raise TuningInterrupted(str(err)) from err
        raise


def _strategy(args: argparse.Namespace):
    from . import DropletSearch

    if args.strategy != "droplet":
        return args.strategy
    # Pairs need a runner that times the batch in rounds; over RPC each candidate is timed alone.
    paired = args.rpc is None and args.runner == "interleaved"
    return DropletSearch(seed=args.seed, explore=args.explore, paired=paired)


def _tune(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .workloads import flop_count, get_workload, parse_target

    try:
        workload = get_workload(args.workload)
        target = parse_target(args.target)
    except ValueError as err:
        parser.error(str(err))
    runner = _runner(args, parser)
    work_dir = _work_dir(args, parser, workload.name)

    from tvm.s_tir import meta_schedule as ms

    from .interrupt import stop_on_interrupt
    from .progress import ProgressPrinter

    flops = flop_count(workload.mod)
    progress = ProgressPrinter(args.trials, flops, quiet=args.quiet)
    print(f"ms-droplet: tuning {workload.name} ({workload.description})")
    print(f"  target {target}, strategy {args.strategy}, {args.trials} trials, seed {args.seed}")
    print(f"  work dir {work_dir}, {_measuring(args)}")
    start = time.perf_counter()
    with stop_on_interrupt() as interrupt, _interruptible(interrupt):
        database = ms.tune_tir(
            mod=workload.mod,
            target=target,
            work_dir=str(work_dir),
            max_trials_global=args.trials,
            num_trials_per_iter=args.per_iter,
            strategy=_strategy(args),
            builder=fast_builder(timeout_sec=args.build_timeout),
            runner=runner,
            cost_model=args.cost_model,
            measure_callbacks=[
                interrupt.callback, *ms.measure_callback.MeasureCallback.create("default"), progress.callback()
            ],
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


def _tune_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .workloads import parse_target

    names = [name for name, _ in args.input_shape]
    if len(set(names)) != len(names):
        parser.error(f"--input-shape gives an input twice: {names}")
    try:
        target = parse_target(args.target)
        from .models import get_model

        model = get_model(args.model, dict(args.input_shape), seed=args.seed)
    except ValueError as err:
        parser.error(str(err))
    if args.out is not None and not args.out.parent.is_dir():
        parser.error(f"cannot write {str(args.out)!r}: its folder does not exist")
    runner = _runner(args, parser)
    work_dir = _work_dir(args, parser, model.name)
    out = args.out or work_dir / f"{model.name}.so"

    from .interrupt import stop_on_interrupt
    from .model_tuning import tune_model
    from .progress import ProgressPrinter

    progress = ProgressPrinter(args.trials, quiet=args.quiet)
    print(f"ms-droplet: tuning model {model.name} (inputs {_shapes(model.inputs)})")
    print(f"  target {target}, strategy {args.strategy}, {args.trials} trials over all tasks, seed {args.seed}")
    print(f"  work dir {work_dir}, {_measuring(args)}")
    with stop_on_interrupt() as interrupt, _interruptible(interrupt):
        result = tune_model(
            model, target, work_dir, args.trials, _strategy(args), num_trials_per_iter=args.per_iter,
            builder=fast_builder(timeout_sec=args.build_timeout), runner=runner, cost_model=args.cost_model,
            seed=args.seed, progress=progress,
            rounds=args.rounds, library=out, first_callbacks=[interrupt.callback],
        )
    print("ms-droplet: summary")
    print(result.table())
    print(f"  trials         {progress.count} measured in this run ({progress.failures} failed)")
    print(f"  tuning wall    {result.tuning_wall:.1f} s")
    print(f"  library        {result.library}")
    print(f"  database       {result.database}")
    return 0


def _measuring(args: argparse.Namespace) -> str:
    if args.rpc:
        return f"measuring on RPC {args.rpc} key {args.rpc_key}"
    if args.runner == "interleaved":
        from .interleaved import DEFAULT_ROUNDS

        return f"measuring here in {args.repeat or DEFAULT_ROUNDS} interleaved rounds"
    return "measuring here with MetaSchedule's LocalRunner"


def _shapes(inputs) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, a.shape))} {a.dtype}" for name, a in inputs.items())


if __name__ == "__main__":
    raise SystemExit(main())
