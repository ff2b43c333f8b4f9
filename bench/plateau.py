"""Where the tuning curves flatten: what a budget buys, from the runs already recorded.

    python bench/plateau.py --results bench/results/zen4 --n 300 --out bench/results/zen4/plateau-N300.md

For every workload and contender in ``runs.jsonl`` (runs at budget ``--n``): the median over tuning
seeds of the best latency each run had measured after half its budget, after all of it, and, for
runs of ten times the budget, after N, 3N and 10N trials. Then the fastest latency any run measured
on the workload (every seed of every contender, 10N included) against evolutionary@N's median.

These are tuning-time measurements (the runner's mean of its samples, in the tuning process), not
the re-timed kernels of ``suite.py compare``: they tell how far a budget moves a search, not which
contender's kernel is faster, and they compare only between runs of one machine in one stretch of
time (the table's first line names the CPUs and days). Nothing is run or timed; the file is read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import _geomean, load_runs, positive_int  # noqa: E402  (bench/ is on the path from here on)

REFERENCE = "evolutionary@N"


def best_after(curve: list[list[float]], trials: int) -> float | None:
    """The best latency a run had measured by its ``trials``-th trial (``None`` before any)."""
    best = None
    for trial, _wall, latency in curve:
        if trial > trials:
            break
        best = latency
    return best


def checkpoints(run: dict, n: int) -> dict[str, float]:
    """The run's best latency (s) at the points that matter for its budget."""
    points = {"N/2": n // 2, "N": n} if run["budget"] <= n else {"N": n, "3N": 3 * n, "10N": 10 * n}
    out = {}
    for name, trials in points.items():
        if trials <= run["budget"] and (best := best_after(run["curve"], trials)) is not None:
            out[name] = best
    return out


def plateau(runs: list[dict], n: int) -> dict:
    """Per workload: each contender's medians over seeds at its checkpoints, and the fastest of any run."""
    table: dict[str, dict] = {}
    for run in runs:
        if run["n"] != n or not run.get("curve"):
            continue
        entry = table.setdefault(run["workload"], {"contenders": {}, "fastest": None})
        per = entry["contenders"].setdefault(run["contender"], {"seeds": 0, "points": {}})
        per["seeds"] += 1
        for name, latency in checkpoints(run, n).items():
            per["points"].setdefault(name, []).append(latency)
        final = best_after(run["curve"], run["budget"])
        if final is not None and (entry["fastest"] is None or final < entry["fastest"][0]):
            entry["fastest"] = (final, run["contender"], run.get("seed", 0))
    for entry in table.values():
        for per in entry["contenders"].values():
            per["median"] = {name: statistics.median(v) for name, v in per["points"].items()}
        ref = entry["contenders"].get(REFERENCE, {}).get("median", {}).get("N")
        if ref and entry["fastest"]:
            entry["fastest_vs_reference"] = entry["fastest"][0] / ref
    return table


def machines(runs: list[dict], n: int) -> str:
    """The CPUs and days the runs at budget ``n`` were tuned on: tuning-time latencies compare only within one."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        if run["n"] == n:
            m = run.get("machine") or {}
            cpu = f"{m.get('cpu', '?')} ({m.get('llvm_cpu') or 'LLVM CPU not recorded'})"
            seen.setdefault(cpu, set()).add(str(m.get("date", "?"))[:10])
    return "; ".join(f"{cpu} on {', '.join(sorted(days))}" for cpu, days in sorted(seen.items()))


def markdown(table: dict, n: int, source: str, tuned_on: str) -> str:
    lines = [f"Best latency measured while tuning (us), median over tuning seeds; runs at N = {n} from `{source}`, "
             f"tuned on {tuned_on}.", "", "| workload | contender | seeds | after N/2 | after N | after 3N | after 10N | 10N / N |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workload, entry in table.items():
        for name, per in sorted(entry["contenders"].items()):
            m = per["median"]
            cells = [f"{m[k] * 1e6:.1f}" if k in m else "" for k in ("N/2", "N", "3N", "10N")]
            gain = f"{m['10N'] / m['N']:.3f}" if "10N" in m else ""
            lines.append(f"| {workload} | {name} | {per['seeds']} | " + " | ".join(cells) + f" | {gain} |")
    lines += ["", f"The fastest latency any run measured, against {REFERENCE}'s median after N:", ""]
    for workload, entry in table.items():
        if "fastest_vs_reference" in entry:
            latency, contender, seed = entry["fastest"]
            lines.append(f"- {workload}: {latency * 1e6:.1f} us ({contender}, seed {seed}): "
                         f"{entry['fastest_vs_reference']:.3f}")
    ratios = [e["fastest_vs_reference"] for e in table.values() if "fastest_vs_reference" in e]
    if ratios:
        lines.append(f"- geometric mean: {_geomean(ratios):.3f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--n", type=positive_int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the table (and a .json beside it)")
    args = parser.parse_args(argv)
    runs = load_runs(args.results)
    if not runs:
        raise SystemExit(f"plateau: no runs in {args.results / 'runs.jsonl'}")
    table = plateau(runs, args.n)
    if not table:
        raise SystemExit(f"plateau: no run at N={args.n} in {args.results / 'runs.jsonl'}")
    text = markdown(table, args.n, str(args.results / "runs.jsonl"), machines(runs, args.n))
    print(text, end="")
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
