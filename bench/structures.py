"""Which design space each tuning run's records come from, and the best of each.

MetaSchedule's CPU space generator makes several design spaces per workload (traces of
different structure: a cache write or not, another tiling); a descent moves decisions within
its seed's structure only. This prints, per run, the records of each structure (named by the
length of its trace without post-processing, which tells them apart on the bench's workloads),
their best time, and the order in which the run measured them (one letter per record).

    python bench/structures.py --results bench/results/zen4 --workload C1D-0 \
        droplet-at-N-N300-s4 evolutionary-at-N-N300-s4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def structures(work_dir: Path) -> list[tuple[int, float | None]]:
    """(instructions before post-processing, mean run seconds or None) of each record, in order."""
    out = []
    for line in (work_dir / "database_tuning_record.json").read_text().splitlines():
        record = json.loads(line)
        insts = record[1][0][0]
        length = next((i for i, inst in enumerate(insts) if inst[0] == "EnterPostproc"), len(insts))
        secs = record[1][1]
        out.append((length, sum(secs) / len(secs) if secs and max(secs) < 1e9 else None))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("runs", nargs="+", help="work dir names under RESULTS/work/WORKLOAD")
    args = parser.parse_args(argv)
    for run in args.runs:
        seq = structures(Path(args.results) / "work" / args.workload / run)
        lengths = sorted({n for n, _ in seq})
        best = {n: min((s for m, s in seq if m == n and s), default=None) for n in lengths}
        print(run + ": " + ", ".join(
            f"{n} insts: {sum(1 for m, _ in seq if m == n)} records, best "
            + (f"{best[n] * 1e6:.1f} us" if best[n] else "none") for n in lengths))
        letters = "".join("ABCDEFGH"[lengths.index(n)] for n, _ in seq)
        for start in range(0, len(letters), 50):
            done = [s for _, s in seq[:start + 50] if s]
            print(f"  {start:4d} {letters[start:start + 50]:50s} best so far {min(done) * 1e6:.1f} us" if done else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
