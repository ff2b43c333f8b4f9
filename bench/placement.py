"""Is a kernel's speed a draw of its process? Runs' best kernels, timed in fresh processes, ASLR on and off.

    python bench/placement.py --results bench/results/zen4 --workload T2D-1 --contenders evolutionary@N,droplet@N --seeds 0,1,2

Each run's best schedule is compiled once and exported; then every kernel is timed (interleaved,
``--rounds`` rounds) in ``--processes`` fresh processes with address-space layout randomisation as
the system has it, and in as many with it off (``setarch -R``). A kernel whose spread over
processes is wide with randomisation on and narrow with it off runs at a speed set by where the
process's memory happens to land: one process, one draw. Run it alone.
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
from suite import add_run_choice, chosen_runs, export_best, missing_runs, positive_int  # noqa: E402  (bench/ is on the path from here on)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_choice(parser)
    parser.add_argument("--processes", type=positive_int, default=8)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = parser.parse_args(argv)

    from process_timing import time_in_processes

    from ms_droplet.machine import machine_info
    from ms_droplet.workloads import get_workload, host_target

    runs = chosen_runs(args)
    missing = missing_runs(args, runs)
    if missing:
        raise SystemExit(f"placement: no run of {', '.join(missing)} on {args.workload} at N={args.n} in {args.results}")
    mine: dict[str, list[dict]] = {}
    for contender, seed in runs:
        mine.setdefault(contender, []).append(runs[(contender, seed)])
    with tempfile.TemporaryDirectory() as tmp:
        libraries = export_best(mine, get_workload(args.workload), host_target(), Path(tmp))
        on = time_in_processes(args.workload, libraries, args.rounds, args.processes)
        off = time_in_processes(args.workload, libraries, args.rounds, args.processes, randomize=False)
    print(f"{args.workload}: us, each process's median of {args.rounds} rounds; min / median / max over "
          f"{args.processes} processes")
    print("| kernel | ASLR on | max/min | ASLR off | max/min |")
    print("| --- | ---: | ---: | ---: | ---: |")
    table = []
    for name in libraries:
        row = {"kernel": name}
        cells = []
        for key, per in (("aslr_on", on), ("aslr_off", off)):
            medians = sorted(statistics.median(s) for s in per[name])
            row[key] = medians
            cells += [f"{medians[0] * 1e6:.0f} / {statistics.median(medians) * 1e6:.0f} / {medians[-1] * 1e6:.0f}",
                      f"{medians[-1] / medians[0]:.2f}"]
        table.append(row)
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine_info(), "command": " ".join(["python", *sys.argv]),
                                        "workload": args.workload, "rows": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
