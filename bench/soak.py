"""Soak: a long droplet run on a small workload, with memory sampled at intervals.

    python bench/soak.py [--trials 2000] [--workload matmul-small] [--interval 10]

Tunes until the work dir's database holds ``--trials`` records: one ``tune_tir`` call after
another in this one process (each call resumes from the database, as a user re-running would;
droplet may end a call early once its descents converge). A thread samples the resident memory
of this process and of all its children every ``--interval`` seconds. Writes
``results/soak.json`` and ``results/soak.md``: memory against records, and the growth between
the first quarter of the run and its end. Run it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rss_mb(proc) -> tuple[float, float]:
    """Resident MiB of ``proc`` and of its live children."""
    import psutil

    own = proc.memory_info().rss
    children = 0
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += child.memory_info().rss
    return own / 2**20, children / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--workload", default="matmul-small")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--per-iter", type=int, default=64)
    parser.add_argument("--results", default=str(HERE / "results"))
    args = parser.parse_args(argv)

    import logging

    import psutil
    import tvm.s_tir.tensor_intrin  # noqa: F401
    from tvm.s_tir import meta_schedule as ms

    import ms_droplet
    from ms_droplet.builder import fast_builder
    from ms_droplet.machine import machine_info
    from ms_droplet.runners import local_runner
    from ms_droplet.workloads import get_workload, host_target

    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    print("soak: run this alone", flush=True)
    results = Path(args.results)
    work_dir = results / "work" / f"soak-{args.workload}"
    if (work_dir / "database_tuning_record.json").exists():
        raise SystemExit(f"{work_dir} already holds a database: remove it for a fresh soak")
    workload = get_workload(args.workload)
    target = host_target()
    proc = psutil.Process()
    record_file = work_dir / "database_tuning_record.json"
    samples: list[dict] = []
    stop = threading.Event()
    start = time.perf_counter()

    def records() -> int:
        return len(record_file.read_text().splitlines()) if record_file.exists() else 0

    def sample() -> None:
        own, children = _rss_mb(proc)
        samples.append({"t_s": round(time.perf_counter() - start, 1), "records": records(),
                        "rss_mb": round(own, 1), "children_rss_mb": round(children, 1)})

    def sampler() -> None:
        while not stop.wait(args.interval):
            sample()

    sample()
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    calls = 0
    try:
        while records() < args.trials:
            calls += 1
            before = records()
            ms.tune_tir(
                mod=workload.mod, target=target, work_dir=str(work_dir),
                max_trials_global=args.trials - before, num_trials_per_iter=args.per_iter,
                strategy=ms_droplet.DropletSearch(num_seeds=10**6, seed=calls), builder=fast_builder(),
                runner=local_runner(3), seed=calls,
            )
            print(f"  call {calls}: {records() - before} new records, {records()} in all, "
                  f"rss {_rss_mb(proc)[0]:.0f} MiB", flush=True)
            if records() == before:
                print("  no new record: the space is exhausted for this workload", flush=True)
                break
    finally:
        stop.set()
        thread.join()
        sample()
    quarter = next(s for s in samples if s["records"] >= records() / 4)
    end = samples[-1]
    growth = end["rss_mb"] - quarter["rss_mb"]
    per_1000 = growth / max(1, end["records"] - quarter["records"]) * 1000
    summary = {"machine": machine_info(), "command": " ".join(["python", *sys.argv]), "workload": args.workload,
               "records": end["records"], "tune_tir_calls": calls, "wall_s": end["t_s"],
               "rss_at_quarter_mb": quarter["rss_mb"], "rss_at_end_mb": end["rss_mb"],
               "growth_mb_per_1000_records": round(per_1000, 2), "samples": samples}
    (results / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"Soak: `{summary['command']}` on {summary['machine']['cpu']}, {summary['machine']['date']}, run alone.",
        "",
        f"{end['records']} records in {calls} tune_tir call(s), {end['t_s'] / 60:.1f} min. Resident memory of the "
        f"tuning process: {samples[0]['rss_mb']:.0f} MiB at start, {quarter['rss_mb']:.0f} MiB at "
        f"{quarter['records']} records, {end['rss_mb']:.0f} MiB at {end['records']} records "
        f"({per_1000:+.1f} MiB per 1000 records after the first quarter).",
        "",
        "| t (s) | records | rss (MiB) | children rss (MiB) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    step = max(1, len(samples) // 20)
    lines += [f"| {s['t_s']} | {s['records']} | {s['rss_mb']} | {s['children_rss_mb']} |" for s in samples[::step]]
    (results / "soak.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
