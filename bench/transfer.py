"""Do tuning-time measurements transfer? The best records of some runs, timed both ways, in turn.

    python bench/transfer.py --results bench/results/xeon --workload DEP-1 --contenders droplet@N,evolutionary@N --top 3

For each run's best ``--top`` records: the time stored in its database; the same schedule
built by the tuning builder (``fast_builder``) and measured by the tuning runner (``LocalRunner``,
3 samples of at least 50 ms, random inputs, as ``bench/tune_one.py``), all records in one batch
per round; and the way ``suite.py compare`` times kernels in each of its processes
(``tvm.compile``, fixed inputs, ``time_evaluator`` of at least 100 ms), here in this one process:
one draw of memory placement (``bench/placement.py`` shows the draws). Rounds alternate the two
ways; medians over rounds.
A strategy that climbs on measurements can find schedules whose tuning-time speed does not
survive the move to the compare step: this shows whether and where it happens. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import add_run_choice  # noqa: E402  (bench/ is on the path from here on)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_choice(parser)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args(argv)

    import tvm.s_tir.tensor_intrin  # noqa: F401  (records may use registered tensor intrinsics)
    from suite import _inputs_for, chosen_runs, kernel_timer, missing_runs
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.builder import fast_builder
    from ms_droplet.machine import machine_info, use_all_cores
    from ms_droplet.runners import local_runner
    from ms_droplet.workloads import get_workload, host_target

    use_all_cores()  # before this process times its first kernel

    target = host_target()
    wl = get_workload(args.workload)
    _, tensors = _inputs_for(wl.mod["main"], 0)
    runs = chosen_runs(args)
    for missing in missing_runs(args, runs):
        print(f"  {missing}: no run in {args.results}", file=sys.stderr)
    rows = []
    for (contender, seed), run in runs.items():  # chosen_runs keeps the contenders x seeds order
        db = ms.database.JSONDatabase(work_dir=run["work_dir"], allow_missing=False)
        for rank, record in enumerate(db.get_top_k(db.commit_workload(wl.mod), args.top)):
            cand = record.as_measure_candidate()
            secs = [float(x) for x in record.run_secs]
            rows.append({"contender": contender, "seed": seed, "rank": rank + 1, "db_s": statistics.mean(secs),
                         "candidate": cand, "timer": kernel_timer(cand.sch.mod, target, tensors),
                         "runner_s": [], "compare_s": []})
    builds = fast_builder().build([ms.builder.BuilderInput(r["candidate"].sch.mod, target) for r in rows])
    for r, b in zip(rows, builds, strict=True):
        if b.error_msg:
            raise SystemExit(f"transfer: {r['contender']} rank {r['rank']} does not build: {b.error_msg[:300]}")
    runner = local_runner(3, validate=False)
    inputs = [ms.runner.RunnerInput(b.artifact_path, "cpu", r["candidate"].args_info) for r, b in zip(rows, builds, strict=True)]
    for i in range(args.rounds):
        for r, future in zip(rows, runner.run(inputs), strict=True):
            result = future.result()
            if result.error_msg:
                raise SystemExit(f"transfer: {r['contender']} rank {r['rank']} fails to run: {result.error_msg[-1500:]}")
            r["runner_s"].append(statistics.mean(float(x) for x in result.run_secs))
        for r in rows:
            r["compare_s"].append(r["timer"]())
        print(f"  round {i + 1}/{args.rounds}", flush=True)
    table = []
    print(f"{args.workload}: us; runner and compare columns are medians of {args.rounds} rounds")
    print("| contender | seed | rank | database | tuning runner now | compare way | compare / database |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        runner_s, compare_s = statistics.median(r["runner_s"]), statistics.median(r["compare_s"])
        table.append({k: r[k] for k in ("contender", "seed", "rank", "db_s", "runner_s", "compare_s")})
        print(f"| {r['contender']} | {r['seed']} | {r['rank']} | {r['db_s'] * 1e6:.1f} | {runner_s * 1e6:.1f} | "
              f"{compare_s * 1e6:.1f} | {compare_s / r['db_s']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine_info(), "command": " ".join(["python", *sys.argv]),
                                        "workload": args.workload, "rows": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
