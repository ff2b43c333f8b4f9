"""Were a descent's decisions right? Re-time each point it judged beside the centre it judged it against.

    python bench/moves.py --results bench/results/zen5-kept --n 300 \\
        --contenders droplet@N,droplet:confirm_moves=true@N [--workloads GMM-2,...] [--processes 5] [--tag T]

Reads each run's log (``bench/suite.py run`` work dirs) for the decisions its descents made: a
move (``confirm_moves=False`` or ``"retime"``), or a faster point measured again and then moved
to (``True``, confirmed) or not (refused). Each decision names the point's first measured time
and the centre's; both are found in the run's database by that time (the first record of the
point, the last record of the centre before it), compiled as ``bench/suite.py compare`` compiles
kernels and timed interleaved in ``--processes`` fresh processes. A decision was right when it
moved to a point that re-times faster than its centre, or refused one that does not. Writes
``moves-N<N>[-T].jsonl`` (one line per decision) and ``.md`` into ``--results``. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suite import SUITE, load_runs, run_label  # noqa: E402

_DESCENT = r"droplet \S+: descent (\d+)"
SEED = re.compile(_DESCENT + r" from a seed at ([\d.e+-]+) ms")
FOUND = re.compile(_DESCENT + r" found a point at ([\d.e+-]+) ms \(centre ([\d.e+-]+) ms\); measuring it again")
CONFIRMED = re.compile(_DESCENT + r" moved to ([\d.e+-]+) ms, measured twice")
REFUSED = re.compile(_DESCENT + r": a faster point measured again at (?:a failure|([\d.e+-]+) ms)")
MOVED = re.compile(_DESCENT + r" moved to ([\d.e+-]+) ms(?: \(\d+ sites changed\))?\s*$")
RETIMED = re.compile(_DESCENT + r" re-timed its centre at (?:a failure|([\d.e+-]+) ms)")


def decisions(log: str) -> list[dict]:
    """The descents' decisions in a run's log, in order: kind ("moved", "confirmed" or "refused"),
    the point's first time, the centre's time (ms, as logged) and the second time if measured again."""
    centre: dict[str, str] = {}  # descent -> its centre's time as logged
    found: dict[str, tuple[str, str]] = {}
    out = []
    for line in log.splitlines():
        if m := SEED.search(line):
            centre[m[1]] = m[2]
        elif m := FOUND.search(line):
            found[m[1]] = (m[2], m[3])
        elif (m := CONFIRMED.search(line)) and m[1] in found:
            first, was = found.pop(m[1])
            out.append({"kind": "confirmed", "first": first, "centre": was, "again": m[2]})
            centre[m[1]] = m[2]
        elif (m := REFUSED.search(line)) and m[1] in found:
            first, was = found.pop(m[1])
            out.append({"kind": "refused", "first": first, "centre": was, "again": m[2]})
        elif (m := MOVED.search(line)) and m[1] in centre:
            out.append({"kind": "moved", "first": m[2], "centre": centre[m[1]], "again": None})
            centre[m[1]] = m[2]
        elif (m := RETIMED.search(line)) and m[2]:
            centre[m[1]] = m[2]
    return out


def _records(work_dir: str):
    """The run's tuning records in the order they were measured, and each one's mean time (ms, or None)."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.report import RECORDS, WORKLOADS
    from ms_droplet.stats import mean
    from ms_droplet.trace import run_samples

    root = Path(work_dir)
    workloads = [ms.database.Workload.from_json(json.loads(line))
                 for line in (root / WORKLOADS).read_text().splitlines() if line.strip()]
    records, means = [], []
    for line in (root / RECORDS).read_text().splitlines():
        if not line.strip():
            continue
        index, record = json.loads(line)
        records.append(ms.database.TuningRecord.from_json(record, workloads[index]))
        samples = run_samples(record[1])  # the strategy's own reading of a record, so its logged means match
        means.append(mean(samples) * 1e3 if samples else None)
    return records, means


def _where(means: list, logged: str, before: int | None = None) -> list[int]:
    return [i for i, m in enumerate(means[:before]) if m is not None and f"{m:.4g}" == logged]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--contenders", required=True, type=lambda s: s.split(","))
    parser.add_argument("--workloads", default=SUITE, type=lambda s: s.split(","))
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    import tvm
    from process_timing import latency, time_in_processes

    from ms_droplet.workloads import get_workload, host_target

    target = host_target()
    runs = [r for r in load_runs(args.results) if r["n"] == args.n and r["contender"] in args.contenders]
    rows: list[dict] = []
    print("moves: run this alone; other heavy jobs skew the timings", flush=True)
    for workload in args.workloads:
        mine = [r for r in runs if r["workload"] == workload]
        if not mine:
            continue
        wl = get_workload(workload)
        libraries: dict[str, str] = {}
        judged: list[tuple[dict, str, str]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for run in mine:
                records, means = _records(run["work_dir"])
                log = "".join(p.read_text() for p in sorted((Path(run["work_dir"]) / "logs").glob("*scheduler.log")))
                label = run_label(run["contender"], run.get("seed", 0))
                for decision in decisions(log):
                    # the point: its first record measured after a record of the centre (times are
                    # logged to 4 digits, and another schedule may share them)
                    pairs = [(p, c[-1]) for p in _where(means, decision["first"])
                             if (c := _where(means, decision["centre"], p))]
                    if not pairs:
                        print(f"  {workload} {label}: no record at {decision}; skipped", flush=True)
                        continue
                    names = []
                    for index in pairs[0]:
                        name = f"{label}:{index}"
                        if name not in libraries:
                            sch = tvm.s_tir.Schedule(wl.mod)
                            records[index].trace.apply_to_schedule(sch, remove_postproc=False)
                            libraries[name] = str(Path(tmp) / f"k{len(libraries)}.so")
                            tvm.compile(sch.mod, target=target).export_library(libraries[name])
                        names.append(name)
                    judged.append(({"workload": workload, "run": label, "contender": run["contender"], **decision},
                                   *names))
            print(f"  {workload}: {len(judged)} decisions, {len(libraries)} kernels", flush=True)
            if not libraries:
                continue
            per = time_in_processes(workload, libraries, args.rounds, args.processes)
        timed = {name: latency(samples) * 1e3 for name, samples in per.items()}
        for row, point, centre in judged:
            row.update(point_ms=timed[point], centre_ms=timed[centre], ratio=timed[point] / timed[centre])
            rows.append(row)
    stem = f"moves-N{args.n}" + (f"-{args.tag}" if args.tag else "")
    (args.results / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = summary(rows, " ".join(["python", *sys.argv]))
    (args.results / f"{stem}.md").write_text(table)
    print(table)
    return 0


def summary(rows: list[dict], command: str) -> str:
    """Per contender and kind of decision: how many, how many re-timed faster, and the geometric
    mean of point / centre over the moves made (below 1: the moves made the kernel faster)."""
    lines = [f"Command: `{command}`. Re-timed: median over fresh processes (interleaved rounds) of each process's median.",
             "", "| contender | decision | count | point re-timed faster | geomean point / centre |",
             "| --- | --- | ---: | ---: | ---: |"]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["contender"], row["kind"]].append(row)
    for (contender, kind), mine in sorted(groups.items()):
        faster = sum(r["ratio"] < 1 for r in mine)
        geo = math.exp(statistics.fmean(math.log(r["ratio"]) for r in mine))
        lines.append(f"| {contender} | {kind} | {len(mine)} | {faster} | {geo:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
