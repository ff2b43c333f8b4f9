"""``ms-droplet landscape ...`` and ``ms-droplet simulate``: the strategy lab from the shell."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parsers(sub, positive_int, seed) -> None:
    """Add the lab's sub-commands to ``ms-droplet``'s parser."""
    land = sub.add_parser("landscape", help="record, extend or check a landscape for the strategy lab")
    land_sub = land.add_subparsers(dest="landscape_command", required=True, parser_class=type(land))
    rec = land_sub.add_parser("record", help="measure a broad sample of a workload's schedules on this machine")
    rec.add_argument("--workload", required=True, help="a workload name, e.g. GMM-2 (see 'ms-droplet workloads')")
    rec.add_argument("--trials", type=positive_int, default=2000, help="schedules to measure (default: 2000)")
    rec.add_argument("--out", type=Path, required=True, help="new landscape directory")
    rec.add_argument("--target", default=None, help="'host' (default) or a JSON target dict")
    rec.add_argument("--seed", type=seed, default=0, help="seed of the searches (default: 0)")
    add = land_sub.add_parser("add", help="add the records of MetaSchedule work dirs to a landscape")
    add.add_argument("--landscape", type=Path, required=True, help="landscape directory")
    add.add_argument("work_dirs", type=Path, nargs="+", help="MetaSchedule work dirs of the same workload")
    check = land_sub.add_parser("check", help="summary, noise model and surrogate validation of a landscape")
    check.add_argument("--landscape", type=Path, required=True, help="landscape directory")
    check.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds (default: 5)")

    sim = sub.add_parser("simulate", help="run strategies over many seeds on a landscape, without the machine")
    sim.add_argument("--landscape", type=Path, required=True, help="landscape directory")
    sim.add_argument(
        "--strategies", default="droplet,evolutionary,replay-trace",
        help="comma-separated: MetaSchedule names, droplet with options (droplet:explore=replay), or "
        "'module:factory' returning a SearchStrategy (default: droplet,evolutionary,replay-trace)",
    )
    sim.add_argument("--trials", type=positive_int, default=300, help="trial budget per run (default: 300)")
    sim.add_argument("--seeds", type=positive_int, default=20, help="tuning seeds per strategy (default: 20)")
    sim.add_argument("--per-iter", type=positive_int, default=32, help="candidates per batch (default: 32)")
    sim.add_argument("--noise", type=float, default=1.0,
                     help="scale of the fitted noise model; 0 gives noise-free answers (default: 1)")
    sim.add_argument("--out", type=Path, default=None, help="results directory (default: LANDSCAPE/sim-NTRIALS)")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .landscape import LandscapeError

    try:
        if args.command == "simulate":
            return _simulate(args, parser)
        return {"record": _record, "add": _add, "check": _check}[args.landscape_command](args, parser)
    except LandscapeError as err:
        parser.error(str(err))
    return 2


def _record(args, parser) -> int:
    from ..workloads import get_workload, parse_target
    from . import landscape as ls
    from .record import record

    try:
        get_workload(args.workload)
        target = parse_target(args.target)
    except ValueError as err:
        parser.error(str(err))
    if ls.path_of(args.out).exists():
        parser.error(f"{ls.path_of(args.out)} already exists; record into a new directory")
    if args.trials < 100:
        parser.error(f"--trials must be at least 100 for a landscape, got {args.trials}")
    start = time.perf_counter()

    def progress(count: int) -> None:
        print(f"  [{time.perf_counter() - start:7.1f} s] {count}/{args.trials} measured", flush=True)

    print(f"recording {args.workload} on {target} into {args.out}: run this alone, other jobs skew the timings",
          flush=True)
    land = record(args.workload, args.trials, args.out, target, seed=args.seed, on_batch=progress)
    _print_summary(land)
    return 0


def _add(args, parser) -> int:
    from . import landscape as ls
    from .record import add_work_dir

    ls.load(args.landscape)  # a missing or corrupt landscape fails before anything is read
    for work_dir in args.work_dirs:
        try:
            count = add_work_dir(args.landscape, work_dir)
        except ValueError as err:
            parser.error(str(err))
        print(f"{work_dir}: {count} records added")
    _print_summary(ls.load(args.landscape))
    return 0


def _print_summary(land) -> None:
    s = land.summary()
    print(f"landscape {s['workload']}: {s['schedules']} schedules ({s['failed']} failed), {s['measurements']} "
          f"measurements, {s['repeated_schedules']} measured in several batches; best {s['best_us']:.2f} us, "
          f"median {s['median_us']:.2f} us; sources {s['sources']}")


def _check(args, parser) -> int:
    from . import landscape as ls
    from .noise import NoiseModel
    from .surrogate import validate

    land = ls.load(args.landscape)
    _print_summary(land)
    noise = NoiseModel.fit(land)
    print(f"noise model: {noise.describe()}")
    report = validate(land, folds=args.folds)
    print(f"surrogate ({args.folds}-fold, held out): Spearman {report['spearman_all']:.3f} over all "
          f"{report['n']} schedules, {report['spearman_top10']:.3f} among the best 10% "
          f"({report['n_top10']}); median |log error| {report['median_abs_log_error']:.3f}")
    print(f"noise ceiling among the best 10%: their log run times spread {report['top10_log_sd']:.4f} (sd), one "
          f"measurement's noise is {report['measurement_sd']:.4f}; a perfect model would reach about "
          f"{report['noise_ceiling_top10']:.2f} against these measured values")
    return 0


def _simulate(args, parser) -> int:
    from . import landscape as ls
    from .simulate import parse_strategies, simulate, write_report

    if args.noise < 0:
        parser.error(f"--noise must be >= 0, got {args.noise}")
    try:
        specs = parse_strategies(args.strategies)
    except ValueError as err:
        parser.error(str(err))
    ls.load(args.landscape)
    out = args.out or args.landscape / f"sim-N{args.trials}"
    try:
        result = simulate(args.landscape, specs, trials=args.trials, seeds=args.seeds, per_iter=args.per_iter,
                          noise_scale=args.noise, out=out, stream=sys.stdout)
    except ValueError as err:  # LandscapeError included: one line naming the file
        parser.error(str(err))
    print(write_report(result, out))
    return 0
