"""Estimated work of every tuned schedule against its workload's, and what it says about speed.

    python bench/work_ratio.py --results bench/results/zen4 [--workloads SFM-1,GMM-2] [--bound 1000]

For each workload, over the databases of every run in ``runs.jsonl``: each record's schedule is
replayed and its work estimated (``estimate_tir_flops``, as ``ms_droplet.recompute``); the table
shows how far the estimate goes among kernels that ran, among the fastest, and what happened to
the records above ``--bound`` (the default of ``DropletSearch(max_work_ratio=...)``). This is
the evidence for that bound; no timing, so it may run beside other work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import load_runs  # noqa: E402  (bench/ is on the path from here on)


def record_ratios(work_dir: Path, mod, guard) -> list[tuple[float, float | None]]:
    """(work ratio, best run time in s or None if the record failed) of each record in a work dir."""
    from tvm.s_tir.schedule import Schedule, Trace

    from ms_droplet.trace import FAILED_RUN_SECS

    out = []
    for line in (work_dir / "database_tuning_record.json").read_text().splitlines():
        trace_json, run_secs = json.loads(line)[1][:2]
        sch = Schedule(mod)
        Trace.apply_json_to_schedule(trace_json, sch)
        secs = min(run_secs) if run_secs else FAILED_RUN_SECS
        out.append((guard.ratio(sch.mod), None if secs >= FAILED_RUN_SECS else secs))
    return out


def workload_row(name: str, records: list[tuple[float, float | None]], bound: float) -> dict:
    ran = [(r, s) for r, s in records if s is not None]
    best = min(s for _, s in ran)
    above = [(r, s) for r, s in records if r > bound]
    above_ran = [s for _, s in above if s is not None]
    return {
        "workload": name,
        "records": len(records),
        "failed": len(records) - len(ran),
        "ratio_of_fastest": min(ran, key=lambda x: x[1])[0],
        "max_ratio_within_1.1x": max(r for r, s in ran if s <= 1.1 * best),
        "max_ratio_ran": max(r for r, _ in ran),
        "above_bound": len(above),
        "above_bound_failed": len(above) - len(above_ran),
        "above_bound_fastest_vs_best": min(above_ran) / best if above_ran else None,
        "min_ratio_failed": min((r for r, s in records if s is None), default=None),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=None)
    parser.add_argument("--bound", type=float, default=None, help="default: ms_droplet.recompute.MAX_WORK_RATIO")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args(argv)

    from ms_droplet.recompute import MAX_WORK_RATIO, RecomputeGuard
    from ms_droplet.workloads import get_workload

    bound = args.bound or MAX_WORK_RATIO
    by_workload: dict[str, list[Path]] = {}
    for run in load_runs(args.results):
        if args.workloads is None or run["workload"] in args.workloads:
            by_workload.setdefault(run["workload"], []).append(Path(run["work_dir"]))
    if not by_workload:
        print(f"work_ratio: no runs in {args.results / 'runs.jsonl'} for {args.workloads}", file=sys.stderr)
        return 2
    rows = []
    for name, dirs in by_workload.items():
        mod = get_workload(name).mod
        guard = RecomputeGuard(mod)
        records = [rec for d in sorted(set(dirs)) if (d / "database_tuning_record.json").exists()
                   for rec in record_ratios(d, mod, guard)]
        if not any(secs is not None for _, secs in records):
            print(f"work_ratio: {name}: no record that ran, skipped", file=sys.stderr)
            continue
        rows.append(workload_row(name, records, bound))
        print(json.dumps(rows[-1]), flush=True)
    if not rows:
        return 2
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    if args.out:
        args.out.write_text(json.dumps({"bound": bound, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
