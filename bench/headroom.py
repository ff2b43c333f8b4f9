"""How much faster could a workload go? Each run's best few schedules, re-timed in fresh processes.

    python bench/headroom.py --results bench/results/xeon --workload DEP-1 \
        --contenders droplet@N,evolutionary@N --seeds 0,1,2,3,4 --top 5

For each run: its ``--top`` best *distinct* schedules by the time its database stored (a schedule
measured twice counts once, at its best record), each compiled like ``suite.py compare`` does and
all timed interleaved in each of ``--processes`` fresh processes (``process_timing.py``). Printed
per run: rank 1 (the kernel the run hands out, as in a compare), the fastest of its top, and the
schedule it would hand out if a schedule measured more than once were judged by the mean of all
its records (:func:`mean_choice`); per contender, the medians over seeds; and the fastest kernel
of any run against the baseline's median rank 1. Two questions it answers: does a contender lose
in the *choice* of its kernel (its rank 1 slower than other schedules it measured), and is there
room at all below what the baseline finds (no kernel any run found faster)? Run it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import add_run_choice, positive_int  # noqa: E402  (bench/ is on the path from here on)


def distinct_top(records, k: int) -> list:
    """The ``k`` best records of distinct schedules, best first (``records`` sorted best first)."""
    seen, top = set(), []
    for record in records:
        key = str(record.trace)
        if key not in seen:
            seen.add(key)
            top.append(record)
            if len(top) == k:
                break
    return top


def mean_choice(records) -> str | None:
    """The schedule (its trace's text) whose records' mean times, averaged, are least: the choice if
    a schedule were judged by all its measurements rather than by its best one (MetaSchedule's
    ``get_top_k`` ranks records). ``None`` if no record has valid times."""
    from ms_droplet.trace import run_samples

    means: dict[str, list[float]] = {}
    for record in records:
        samples = run_samples(record.run_secs)
        if samples is not None:
            means.setdefault(str(record.trace), []).append(statistics.mean(samples))
    return min(means, key=lambda key: statistics.mean(means[key])) if means else None


def summarize(rows: list[dict], baseline: str) -> dict:
    """Per contender, the medians over its runs of rank 1 and of the fastest of each run's top,
    and the fastest kernel of all rows against ``baseline``'s median rank 1 (if it ran)."""
    by_run: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        by_run.setdefault((row["contender"], row["seed"]), []).append(row)
    contenders: dict[str, dict] = {}
    for (contender, _), mine in by_run.items():
        entry = contenders.setdefault(contender, {"rank1_s": [], "best_of_top_s": [], "mean_choice_s": []})
        entry["rank1_s"].append(min(mine, key=lambda r: r["rank"])["latency_s"])
        entry["best_of_top_s"].append(min(r["latency_s"] for r in mine))
        chosen = [r["latency_s"] for r in mine if r.get("mean_choice")]
        entry["mean_choice_s"].append(chosen[0] if chosen else None)  # None: not among the top
    for entry in contenders.values():
        entry["median_rank1_s"] = statistics.median(entry["rank1_s"])
        entry["median_best_of_top_s"] = statistics.median(entry["best_of_top_s"])
        if None not in entry["mean_choice_s"]:
            entry["median_mean_choice_s"] = statistics.median(entry["mean_choice_s"])
    fastest = min(rows, key=lambda r: r["latency_s"])
    out = {"contenders": contenders, "fastest": {k: fastest[k] for k in ("contender", "seed", "rank", "latency_s")}}
    if baseline in contenders:
        out["fastest_to_baseline"] = fastest["latency_s"] / contenders[baseline]["median_rank1_s"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_choice(parser)
    parser.add_argument("--top", type=positive_int, default=5)
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--processes", type=positive_int, default=9)
    parser.add_argument("--baseline", default="evolutionary@N")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the rows and the summary")
    args = parser.parse_args(argv)

    import tvm
    import tvm.s_tir.tensor_intrin  # records may use registered tensor intrinsics
    from process_timing import latency, time_in_processes
    from suite import chosen_runs, missing_runs
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.machine import machine_info
    from ms_droplet.workloads import get_workload, host_target

    target = host_target()
    wl = get_workload(args.workload)
    runs = chosen_runs(args)
    for missing in missing_runs(args, runs):
        print(f"  {missing}: no run in {args.results}", file=sys.stderr)
    if not runs:
        print(f"headroom: no run of {args.workload} at N={args.n} in {args.results}", file=sys.stderr)
        return 2
    print("headroom: run this alone; other heavy jobs skew the timings", flush=True)
    rows, libraries = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for (contender, seed), run in runs.items():
            db = ms.database.JSONDatabase(work_dir=run["work_dir"], allow_missing=False)
            workload = db.commit_workload(wl.mod)
            records = db.get_top_k(workload, 4 * args.top)  # room for repeats
            chosen = mean_choice(r for r in db.get_all_tuning_records() if r.workload.same_as(workload))
            for rank, record in enumerate(distinct_top(records, args.top), 1):
                label = f"{contender}#s{seed}#{rank}"
                libraries[label] = str(Path(tmp) / f"kernel-{len(libraries)}.so")
                tvm.compile(record.as_measure_candidate().sch.mod, target=target).export_library(libraries[label])
                rows.append({"contender": contender, "seed": seed, "rank": rank, "label": label,
                             "db_s": statistics.mean(float(x) for x in record.run_secs),
                             "mean_choice": str(record.trace) == chosen})
        if not rows:
            print(f"headroom: no run of {args.workload} holds a schedule that ran", file=sys.stderr)
            return 2
        print(f"  {len(libraries)} kernels, {args.processes} processes x {args.rounds} rounds", flush=True)
        per_process = time_in_processes(args.workload, libraries, args.rounds, args.processes)
    for row in rows:
        row["latency_s"] = latency(per_process[row.pop("label")])
    summary = summarize(rows, args.baseline)
    print(f"{args.workload}: us, each kernel the median over processes of each process's median")
    print("| contender | seed | rank 1 | fastest of top | its rank | by the mean of records | top, by database rank |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    for (contender, seed) in runs:
        mine = sorted((r for r in rows if (r["contender"], r["seed"]) == (contender, seed)), key=lambda r: r["rank"])
        if not mine:
            print(f"| {contender} | {seed} | no schedule that ran | | | | |")
            continue
        best = min(mine, key=lambda r: r["latency_s"])
        top = " / ".join(f"{r['latency_s'] * 1e6:.1f}" for r in mine)
        by_mean_rows = [r for r in mine if r["mean_choice"]]
        by_mean = (f"{by_mean_rows[0]['latency_s'] * 1e6:.1f} (rank {by_mean_rows[0]['rank']})" if by_mean_rows
                   else "not in the top")
        print(f"| {contender} | {seed} | {mine[0]['latency_s'] * 1e6:.1f} | {best['latency_s'] * 1e6:.1f} | "
              f"{best['rank']} | {by_mean} | {top} |")
    for contender, entry in summary["contenders"].items():
        by_mean = entry.get("median_mean_choice_s")
        print(f"{contender}: median rank 1 {entry['median_rank1_s'] * 1e6:.1f} us, "
              f"median fastest of top {entry['median_best_of_top_s'] * 1e6:.1f} us, by the mean of records "
              + (f"{by_mean * 1e6:.1f} us" if by_mean else "(a choice outside the top)"))
    fastest = summary["fastest"]
    line = f"fastest kernel: {fastest['latency_s'] * 1e6:.1f} us ({fastest['contender']} seed {fastest['seed']} rank {fastest['rank']})"
    if "fastest_to_baseline" in summary:
        line += f", {summary['fastest_to_baseline']:.3f} of {args.baseline}'s median rank 1"
    print(line)
    if args.out:
        args.out.write_text(json.dumps({"machine": machine_info(), "command": " ".join(["python", *sys.argv]),
                                        "workload": args.workload, "rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
