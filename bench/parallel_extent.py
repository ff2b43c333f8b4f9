"""Does a run's best kernel get faster with another parallel extent? The dimension droplet does not move.

    python bench/parallel_extent.py --results bench/results/zen4 --workload DEP-1 \
        --contenders droplet@N,evolutionary@N --seeds 0,1 --out bench/results/zen4/parallel-extent-DEP-1.json

Evolutionary search mutates the ``meta_schedule.parallel`` annotation (MutateParallel: how many
outer loops post-processing fuses into the parallel loop, the first whose extents multiply to at
least the value); a descent moves only sampling decisions, so its kernels keep the design space's
value (16 jobs per core). For each chosen run this takes its best record, sets the annotation to
each of ``--values`` (and the run's own), replays it with the task's post-processors, keeps one
schedule per distinct module, and times them all interleaved in ``--processes`` fresh processes.
A ratio well below 1 says the dimension holds speed a descent cannot reach. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import add_run_choice, chosen_runs, missing_runs, positive_int  # noqa: E402  (bench/ is on the path from here on)

PARALLEL = "meta_schedule.parallel"


def _values(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--values {text!r} is not a list of positive integers like 32,8,1")
    return values


def with_parallel(trace, value: int):
    """Base ``trace`` with every ``meta_schedule.parallel`` annotation set to ``value``."""
    from tvm.s_tir.schedule import Instruction, Trace

    insts = [Instruction(i.kind, [i.inputs[0], value], i.attrs, i.outputs) if is_parallel(i) else i
             for i in trace.insts]
    decisions = {new: trace.decisions[old] for old, new in zip(trace.insts, insts, strict=True)
                 if old in trace.decisions}
    return Trace(insts, decisions)


def is_parallel(inst) -> bool:
    return inst.kind.name == "Annotate" and str(inst.attrs[0]) == PARALLEL


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_choice(parser)
    parser.add_argument("--values", type=_values, default=[32, 16, 8, 4, 2, 1])
    parser.add_argument("--processes", type=positive_int, default=3)
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args(argv)

    import tvm
    from process_timing import latency, time_in_processes
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.machine import machine_info
    from ms_droplet.trace import base_trace, module_key, replay
    from ms_droplet.workloads import get_workload, host_target

    runs = chosen_runs(args)
    missing = missing_runs(args, runs)
    if missing:
        raise SystemExit(f"parallel_extent: no run of {', '.join(missing)} on {args.workload} at N={args.n} "
                         f"in {args.results}")
    wl, target = get_workload(args.workload), host_target()
    context = ms.TuneContext(mod=wl.mod, target=target, space_generator="post-order-apply",
                             search_strategy="replay-trace", task_name=args.workload)
    postprocs = list(context.space_generator.postprocs)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        libraries: dict[str, str] = {}
        for (contender, seed), run in runs.items():
            name = f"{contender} s{seed}"
            db = ms.database.JSONDatabase(work_dir=run["work_dir"], allow_missing=False)
            best = base_trace(db.get_top_k(db.commit_workload(wl.mod), 1)[0].trace)
            own = next(int(i.inputs[1]) for i in best.insts if is_parallel(i))
            kernels: dict[int, str] = {}  # module key -> label: values that give one schedule are one kernel
            for value in [own, *(v for v in args.values if v != own)]:
                sch = replay(wl.mod, with_parallel(best, value), postprocs, seed=1)
                kernel = None  # None: the value does not replay
                if sch is not None:
                    key = module_key(sch.mod)
                    if key not in kernels:
                        kernels[key] = f"{name} p{value}"
                        libraries[kernels[key]] = str(Path(tmp) / f"kernel-{len(libraries)}.so")
                        tvm.compile(sch.mod, target=target).export_library(libraries[kernels[key]])
                    kernel = kernels[key]
                rows.append({"run": name, "own": own, "value": value, "kernel": kernel})
        per = time_in_processes(args.workload, libraries, args.rounds, args.processes)
    times = {name: latency(samples) for name, samples in per.items()}
    own_kernel = {row["run"]: row["kernel"] for row in rows if row["value"] == row["own"]}
    print(f"{args.workload}: each run's best kernel with the parallel annotation set to another value; "
          f"us, median over {args.processes} processes of each one's median of {args.rounds} rounds")
    print("| run | own value | value | same schedule as | latency (us) | vs own |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for row in rows:
        mine = row["kernel"]
        ref = own_kernel[row["run"]]
        row["latency_s"] = times.get(mine)
        row["vs_own"] = times[mine] / times[ref] if mine and ref else None  # None: own value failed to replay
        same = "" if mine is None or mine.endswith(f"p{row['value']}") else mine.rsplit(" ", 1)[-1]
        cells = ("fails", "") if mine is None else (f"{times[mine] * 1e6:.1f}",
                                                   "" if row["vs_own"] is None else f"{row['vs_own']:.3f}")
        print(f"| {row['run']} | {row['own']} | {row['value']} | {same} | {cells[0]} | {cells[1]} |")
    if args.out:
        args.out.write_text(json.dumps({"workload": args.workload, "machine": machine_info(), "rows": rows,
                                        "processes": args.processes, "rounds": args.rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
