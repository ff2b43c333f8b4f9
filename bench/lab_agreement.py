"""Does the lab's verdict agree with the real bench? One table per pair of strategies and workload.

    python bench/lab_agreement.py --sims landscapes/GMM-2/sim-N300,... --bench bench/results/xeon/summary-N300.json

For each workload and each pair of contenders found in both, the lab's median ratio (median final
value of one over the other's, over seeds) and P(first ends faster), beside the bench's ratio of
re-timed kernels (``compare`` step). They agree when both put the same contender ahead; a pair
the lab calls a toss-up (P within 0.4-0.6) agrees with any bench ratio within 5% of 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# lab label -> bench contender
NAMES = {"droplet": "droplet@N", "evolutionary": "evolutionary@N", "replay-trace": "replay-trace@N"}


def rows(sim: dict, bench: dict) -> list[dict]:
    out = []
    workload = sim["workload"]
    timed = bench["workloads"].get(workload, {}).get("contenders", {})
    labels = [label for label in sim["stats"] if NAMES.get(label) in timed]
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            lab_ratio = sim["stats"][a]["median_us"] / sim["stats"][b]["median_us"]
            p = sim["beats"][a][b]
            bench_ratio = timed[NAMES[a]]["latency_s"] / timed[NAMES[b]]["latency_s"]
            # a toss-up in the lab agrees with a near tie on the bench; otherwise the same one is ahead
            agree = abs(bench_ratio - 1) <= 0.05 if 0.4 <= p <= 0.6 else (p > 0.5) == (bench_ratio < 1)
            out.append({"workload": workload, "pair": f"{a} / {b}", "lab_ratio": lab_ratio, "lab_p_first_faster": p,
                        "bench_ratio": bench_ratio, "agree": agree})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", required=True, type=lambda s: s.split(","), help="simulate output dirs")
    parser.add_argument("--bench", required=True, type=Path, help="a bench summary-N*.json")
    parser.add_argument("--out", type=Path, default=None, help="markdown table to write")
    args = parser.parse_args(argv)
    bench = json.loads(args.bench.read_text())
    table = []
    from ms_droplet.lab.simulate import load_simulation, write_report

    for sim_dir in args.sims:
        write_report(load_simulation(sim_dir), sim_dir)  # every run in the dir, however many calls made them
        table += rows(json.loads((Path(sim_dir) / "simulation.json").read_text()), bench)
    lines = [f"Bench: `{args.bench}` ({bench['machine']['cpu']}, {bench['machine']['date']}); lab: "
             + ", ".join(f"`{s}`" for s in args.sims), "",
             "| workload | pair | lab median ratio | lab P(first faster) | bench ratio | agree |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    lines += [f"| {r['workload']} | {r['pair']} | {r['lab_ratio']:.3f} | {r['lab_p_first_faster']:.2f} | "
              f"{r['bench_ratio']:.3f} | {'yes' if r['agree'] else 'NO'} |" for r in table]
    lines.append("")
    lines.append(f"Agreement: {sum(r['agree'] for r in table)} of {len(table)} pairs. "
                 "Command: `python " + " ".join(sys.argv) + "`")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
