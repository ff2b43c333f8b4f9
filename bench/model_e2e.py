"""End-to-end latency of whole models: the untuned build against strategies at one global budget.

    python bench/model_e2e.py run --model cnn --trials 300 \
        --contenders droplet@N,droplet:num_seeds=1000@N,evolutionary@N

Models: ``cnn``, ``transformer`` (built in), ``onnx-cnn`` (the small ONNX CNN of
``models.write_onnx_cnn``) and ``resnet18`` (``models.write_onnx_resnet18``: ResNet-18's
structure at a 112x112 input). Contenders are written as in ``bench/suite.py``
(``STRATEGY[:OPTION=VALUE...]@[K]N``); ``droplet:num_seeds=1000`` is droplet without early
hand-back: it never runs out of descents, so it spends its task's share to the end.

Each contender tunes in its own fresh process (``tune`` sub-command; same builder, runner,
cost model and seed), once per tuning seed (``--seeds 0-2``; seed K > 0 in its own work dir,
``-sK``), appending to ``results/model_runs.jsonl``; a (model, contender, trials, seed) already
there is skipped, so runs resume. Then every build (untuned, and one per contender and seed,
``CONTENDER#sK``) is compiled and checked (every tuned task's schedule applied, output equal to the untuned
build's), exported, and timed interleaved for ``--rounds`` rounds in each of ``--processes``
fresh processes (one process is one draw of where its memory lands, see
``bench/process_timing.py``); a build's latency is the median over processes of each one's
median; a contender's, the median over its seeds' builds (and its ratio to evolutionary@N's).
The results go to ``results/model_e2e-MODEL-NB.json`` and ``.md``. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MODELS = ("cnn", "transformer", "onnx-cnn", "resnet18")


def _runs(results: Path) -> list[dict]:
    path = results / "model_runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def load_model(name: str, results: Path):
    """A bench model by name; ONNX files are written under results/work/models (not committed)."""
    from ms_droplet import models

    if name in ("cnn", "transformer"):
        return models.get_model(name)
    folder = results / "work" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    if not path.exists():
        {"onnx-cnn": models.write_onnx_cnn, "resnet18": models.write_onnx_resnet18}[name](path)
    return models.load_onnx(path)


def cmd_tune(args) -> int:
    import logging

    import tvm.s_tir.tensor_intrin  # noqa: F401  (imported before the clock, as in tune_one.py)
    from suite import parse_contender, work_dir_name
    from tvm.s_tir import meta_schedule as ms

    import ms_droplet
    from ms_droplet.builder import fast_builder
    from ms_droplet.lab.strategies import typed
    from ms_droplet.machine import machine_info
    from ms_droplet.model_tuning import task_rows
    from ms_droplet.relax_pipeline import prepare
    from ms_droplet.runners import local_runner
    from ms_droplet.workloads import host_target

    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    results = Path(args.results)
    name, budget, _, options = parse_contender(args.contender, args.trials)
    work_dir = results / "work" / f"model-{args.model}" / work_dir_name(args.contender, args.trials, args.seed)
    mod = prepare(load_model(args.model, results).mod)
    target = host_target()
    tasks = ms.relax_integration.extract_tasks(mod, target)
    strategy = ms_droplet.DropletSearch(seed=args.seed, **typed(options)) if name == "droplet" else name
    start = time.perf_counter()
    database = ms.relax_integration.tune_relax(
        mod=mod, params={}, target=target, work_dir=str(work_dir), max_trials_global=budget,
        num_trials_per_iter=args.per_iter, strategy=strategy, builder=fast_builder(), runner=local_runner(3),
        seed=args.seed,
    )
    wall = time.perf_counter() - start
    record = {"model": args.model, "contender": args.contender, "trials": args.trials, "seed": args.seed,
              "work_dir": str(work_dir.relative_to(results)), "wall_s": wall,
              "measured": len(database.get_all_tuning_records()),
              "per_task": {r.name: r.trials for r in task_rows(database, tasks)},
              "machine": machine_info(), "command": " ".join(["python", *sys.argv])}
    with (results / "model_runs.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"  {args.model} {args.contender} (N={args.trials}): {wall:.0f} s, {record['measured']} records",
          flush=True)
    return 0


def cmd_run(args) -> int:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    print("model_e2e run: run this alone; other heavy jobs skew the timings", flush=True)
    done = {(r["model"], r["contender"], r["trials"], r.get("seed", 0)) for r in _runs(results)}
    for seed in args.seeds:  # seed by seed: a run cut short leaves every contender with the same seeds
        for contender in args.contenders:
            if (args.model, contender, args.trials, seed) in done:
                print(f"  {args.model} {contender} (N={args.trials}, seed {seed}): already in model_runs.jsonl, "
                      "skipped")
                continue
            cmd = [sys.executable, __file__, "tune", "--model", args.model, "--contender", contender,
                   "--trials", str(args.trials), "--seed", str(seed), "--per-iter", str(args.per_iter),
                   "--results", str(results)]
            if subprocess.run(cmd, check=False).returncode != 0:
                return 1
    return cmd_compare(args)


def contender_rows(rows: list[dict], reference: str = "evolutionary@N") -> list[dict]:
    """Per contender, the median over its tuning seeds of each seed's build latency (and of walls);
    ``vs_reference`` against ``reference``'s median, when it was compared."""
    import statistics

    by_contender: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("contender"):
            by_contender.setdefault(row["contender"], []).append(row)
    out = [{"contender": name, "seeds": [r["seed"] for r in runs],
            "latency_s": statistics.median(r["latency_s"] for r in runs),
            "seed_latencies_s": [r["latency_s"] for r in runs],
            "tuning_wall_s": statistics.median(r["tuning_wall_s"] for r in runs)}
           for name, runs in by_contender.items()]
    ref = next((r["latency_s"] for r in out if r["contender"] == reference), None)
    for r in out:
        r["vs_reference"] = r["latency_s"] / ref if ref else None
    return out


def cmd_compare(args) -> int:
    import numpy as np
    from process_timing import latency, time_models_in_processes
    from suite import run_label
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.machine import machine_info
    from ms_droplet.model_tuning import compile_model, run
    from ms_droplet.relax_pipeline import prepare
    from ms_droplet.workloads import host_target

    results = Path(args.results)
    target = host_target()
    model = load_model(args.model, results)
    mod = prepare(model.mod)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    runs = {run_label(r["contender"], r.get("seed", 0)): r for r in _runs(results)
            if r["model"] == args.model and r["trials"] == args.trials and r["contender"] in args.contenders
            and r.get("seed", 0) in args.seeds}
    exes = {"untuned": compile_model(mod, target)[0]}
    applied = {}
    for label, entry in runs.items():
        db = ms.database.JSONDatabase(work_dir=str(results / entry["work_dir"]), allow_missing=False)
        exes[label], applied[label] = compile_model(mod, target, db, tasks)  # raises if one is not
    reference = run(exes["untuned"], model.inputs)
    max_diff = {name: float(np.max(np.abs(run(exe, model.inputs) - reference))) for name, exe in exes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        libraries = {name: str(Path(tmp) / f"build{i}.so") for i, name in enumerate(exes)}
        for name, exe in exes.items():
            exe.export_library(libraries[name])
        per_process = time_models_in_processes(args.model, libraries, model.inputs, args.rounds, args.processes)
    seconds = {name: latency(per_process[name]) for name in exes}
    rows = []
    for name in exes:
        entry = runs.get(name)
        rows.append({
            "build": name, "contender": entry["contender"] if entry else None,
            "seed": entry.get("seed", 0) if entry else None,
            "latency_s": seconds[name], "vs_untuned": seconds[name] / seconds["untuned"],
            "process_medians_s": [float(np.median(x)) for x in per_process[name]],
            "tuning_wall_s": entry["wall_s"] if entry else None, "measured": entry["measured"] if entry else None,
            "tasks_applied": f"{sum(applied[name].values())}/{len(tasks)}" if entry else None,
            "per_task": entry.get("per_task") if entry else None, "max_abs_diff_vs_untuned": max_diff[name],
        })
    contenders = contender_rows(rows)
    summary = {"machine": machine_info(), "command": " ".join(["python", *sys.argv]), "model": args.model,
               "trials": args.trials, "rounds": args.rounds, "processes": args.processes, "rows": rows,
               "contenders": contenders}
    stem = f"model_e2e-{args.model}-N{args.trials}"
    (results / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    machine = summary["machine"]
    lines = [f"Model `{args.model}` ({len(tasks)} tasks), global budget {args.trials}. {machine['cpu']}, "
             f"{machine['logical_cores']} cores, target {machine['target']}, TVM {machine['tvm']}, {machine['date']}. Latency: "
             f"median over {args.processes} fresh processes of each one's median of {args.rounds} interleaved rounds. "
             f"Command: `{summary['command']}`", "",
             "| build | latency (us) | vs untuned | tuning wall (s) | trials | tuned tasks applied |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        wall = f"{r['tuning_wall_s']:.0f}" if r["tuning_wall_s"] is not None else ""
        lines.append(f"| {r['build']} | {r['latency_s'] * 1e6:.1f} | {r['vs_untuned']:.3f} | {wall} | "
                     f"{r['measured'] or ''} | {r['tasks_applied'] or ''} |")
    lines += ["", "Per contender, median over tuning seeds (seeds' builds in brackets):", "",
              "| contender | seeds | latency (us) | vs evolutionary@N | tuning wall (s) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for c in contenders:
        spread = " / ".join(f"{x * 1e6:.1f}" for x in c["seed_latencies_s"])
        ratio = f"{c['vs_reference']:.3f}" if c["vs_reference"] else ""
        lines.append(f"| {c['contender']} | {len(c['seeds'])} | {c['latency_s'] * 1e6:.1f} ({spread}) | {ratio} | "
                     f"{c['tuning_wall_s']:.0f} |")
    lines += ["", "Trials per task:", ""]
    for r in rows:
        if r["per_task"]:
            lines.append(f"- {r['build']}: " + ", ".join(f"{k} {v}" for k, v in r["per_task"].items()))
    (results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    from suite import parse_seeds, positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "compare", "tune"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="cnn", choices=MODELS)
        p.add_argument("--trials", type=int, default=300)
        if name == "tune":
            p.add_argument("--seed", type=int, default=0)
        else:
            p.add_argument("--seeds", type=parse_seeds, default=[0], help="tuning seeds, e.g. 0-2 or 0,3")
        p.add_argument("--per-iter", type=int, default=32)
        p.add_argument("--rounds", type=positive_int, default=7)
        p.add_argument("--processes", type=positive_int, default=5, help="fresh processes the builds are timed in")
        p.add_argument("--results", default=str(HERE / "results"))
        if name == "tune":
            p.add_argument("--contender", required=True)
        else:
            p.add_argument("--contenders", type=lambda s: s.split(","),
                           default=["droplet@N", "droplet:num_seeds=1000@N", "evolutionary@N"])
    args = parser.parse_args(argv)
    return {"run": cmd_run, "compare": cmd_compare, "tune": cmd_tune}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
