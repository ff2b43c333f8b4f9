"""End-to-end latency of a whole model: untuned build, evolutionary and droplet at one budget.

    python bench/model_e2e.py run [--model cnn] [--trials 200] [--strategies droplet,evolutionary]

Each strategy tunes in its own fresh process (``tune`` sub-command; same builder, runner,
cost model and seed), appending to ``results/model_runs.jsonl``; a (model, strategy, trials)
already there is skipped, so runs resume. Then every build (untuned, and one per strategy)
is compiled in ONE process and timed interleaved for ``--rounds`` rounds; the medians go to
``results/model_e2e.json`` and ``results/model_e2e.md``. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _runs(results: Path) -> list[dict]:
    path = results / "model_runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def cmd_tune(args) -> int:
    import logging

    import tvm.s_tir.tensor_intrin  # noqa: F401  (imported before the clock, as in tune_one.py)
    from suite import machine_info
    from tvm.s_tir import meta_schedule as ms

    import ms_droplet
    from ms_droplet.builder import fast_builder
    from ms_droplet.model_tuning import prepare
    from ms_droplet.models import get_model
    from ms_droplet.runners import local_runner
    from ms_droplet.workloads import host_target

    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    results = Path(args.results)
    work_dir = results / "work" / f"model-{args.model}" / f"{args.strategy}-{args.trials}"
    mod = prepare(get_model(args.model).mod)
    strategy = ms_droplet.DropletSearch(seed=args.seed) if args.strategy == "droplet" else args.strategy
    start = time.perf_counter()
    database = ms.relax_integration.tune_relax(
        mod=mod, params={}, target=host_target(), work_dir=str(work_dir), max_trials_global=args.trials,
        num_trials_per_iter=args.per_iter, strategy=strategy, builder=fast_builder(), runner=local_runner(3),
        seed=args.seed,
    )
    wall = time.perf_counter() - start
    record = {"model": args.model, "strategy": args.strategy, "trials": args.trials, "seed": args.seed,
              "work_dir": str(work_dir), "wall_s": wall, "measured": len(database.get_all_tuning_records()),
              "machine": machine_info(), "command": " ".join(["python", *sys.argv])}
    with (results / "model_runs.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"  {args.model} {args.strategy}@{args.trials}: {wall:.0f} s, {record['measured']} records", flush=True)
    return 0


def cmd_run(args) -> int:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    print("model_e2e run: run this alone; other heavy jobs skew the timings", flush=True)
    done = {(r["model"], r["strategy"], r["trials"]) for r in _runs(results)}
    for strategy in args.strategies:
        if (args.model, strategy, args.trials) in done:
            print(f"  {args.model} {strategy}@{args.trials}: already in model_runs.jsonl, skipped")
            continue
        cmd = [sys.executable, __file__, "tune", "--model", args.model, "--strategy", strategy,
               "--trials", str(args.trials), "--seed", str(args.seed), "--per-iter", str(args.per_iter),
               "--results", str(results)]
        if subprocess.run(cmd, check=False).returncode != 0:
            return 1
    return cmd_compare(args)


def cmd_compare(args) -> int:
    from suite import machine_info
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.model_tuning import compile_model, prepare, time_interleaved
    from ms_droplet.models import get_model
    from ms_droplet.workloads import host_target

    results = Path(args.results)
    target = host_target()
    model = get_model(args.model)
    mod = prepare(model.mod)
    runs = {r["strategy"]: r for r in _runs(results)
            if r["model"] == args.model and r["trials"] == args.trials and r["strategy"] in args.strategies}
    exes = {"untuned": compile_model(mod, target)}
    for strategy, run in runs.items():
        db = ms.database.JSONDatabase(work_dir=run["work_dir"], allow_missing=False)
        exes[f"{strategy}@{args.trials}"] = compile_model(mod, target, db)
    latency = time_interleaved(exes, model.inputs, args.rounds)
    rows = []
    for name, seconds in latency.items():
        run = runs.get(name.split("@")[0])
        rows.append({"build": name, "latency_s": seconds, "vs_untuned": seconds / latency["untuned"],
                     "tuning_wall_s": run["wall_s"] if run else None, "measured": run["measured"] if run else None})
    summary = {"machine": machine_info(), "command": " ".join(["python", *sys.argv]), "model": args.model,
               "rounds": args.rounds, "rows": rows}
    (results / "model_e2e.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"Model `{args.model}`, {summary['machine']['cpu']}, {summary['machine']['logical_cores']} cores, "
             f"TVM {summary['machine']['tvm']}, {summary['machine']['date']}. Median of {args.rounds} interleaved "
             f"rounds. Command: `{summary['command']}`", "",
             "| build | latency (us) | vs untuned | tuning wall (s) | trials |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        wall = f"{r['tuning_wall_s']:.0f}" if r["tuning_wall_s"] is not None else ""
        lines.append(f"| {r['build']} | {r['latency_s'] * 1e6:.1f} | {r['vs_untuned']:.3f} | {wall} | "
                     f"{r['measured'] or ''} |")
    (results / "model_e2e.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "compare", "tune"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="cnn")
        p.add_argument("--trials", type=int, default=200)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--per-iter", type=int, default=32)
        p.add_argument("--rounds", type=int, default=7)
        p.add_argument("--results", default=str(HERE / "results"))
        if name == "tune":
            p.add_argument("--strategy", required=True, choices=["droplet", "evolutionary", "replay-trace"])
        else:
            p.add_argument("--strategies", type=lambda s: s.split(","), default=["droplet", "evolutionary"])
    args = parser.parse_args(argv)
    return {"run": cmd_run, "compare": cmd_compare, "tune": cmd_tune}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
