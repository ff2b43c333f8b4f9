"""Droplet against MetaSchedule's own strategies, side by side on one machine.

    python bench/suite.py run      [--workloads GMM-2,C2D-1] [--contenders droplet@N,...] [--n 300]
    python bench/suite.py compare  [--workloads ...] [--rounds 5] [--processes 5]
    python bench/suite.py quick    [--out DIR]          # one workload, small N, all steps

``run`` tunes every (workload, contender) in its own fresh process (``bench/tune_one.py``)
with the same builder, runner settings and seed, and appends one JSON line per run to
``results/runs.jsonl``; a pair already there is skipped, so runs resume and can be sliced
(``--workloads GMM-2 --contenders evolutionary@10N``). ``compare`` compiles the best schedule
of every contender, exports it, and times them all interleaved (A B C ... A B C ...) in each of
``--processes`` fresh processes (``bench/process_timing.py``: a kernel's speed can depend on the
process), then writes ``results/summary-N<N>.json``, ``summary-N<N>.md`` and ``plots/N<N>/``. Run both alone: other
heavy jobs on a 2-core machine skew the timings.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = ["GMM-2", "C2D-1", "C1D-0", "DEP-1", "T2D-1", "SFM-1"]
CONTENDERS = ["droplet@N", "evolutionary@N", "evolutionary@10N", "replay-trace@N", "evolutionary+post@N"]
BASELINE = "evolutionary@N"
BASELINE_10N = "evolutionary@10N"
# The reference matmul's slowest workload median over its fastest above which a compare warns of a
# machine whose speed changed while it timed kernels (a quiet six-workload compare: 1.03, docs/benchmarks.md).
SPEED_SPREAD_WARN = 1.10
# Options any contender takes: how its candidates are timed while tuning (default: LocalRunner).
RUNNER_OPTIONS = {"runner"}


def parse_contender(spec: str, n: int) -> tuple[str, int, bool, dict[str, str]]:
    """``"evolutionary+post@10N"`` -> ("evolutionary", 10 * n, True, {}).

    Droplet options may follow the name, colon-separated:
    ``"droplet:explore=replay@N"`` -> ("droplet", n, False, {"explore": "replay"}); any contender
    takes ``runner=interleaved`` (the interleaved runner instead of LocalRunner while tuning).
    """
    name, _, budget = spec.partition("@")
    name, *option_specs = name.split(":")
    post = name.endswith("+post")
    strategy = name.removesuffix("+post")
    if strategy not in ("droplet", "evolutionary", "replay-trace") or not budget.endswith("N"):
        raise ValueError(f"contender {spec!r} is not STRATEGY[+post][:OPTION=VALUE...]@[K]N "
                         "(for example evolutionary@10N)")
    factor = budget[:-1]
    if factor and not factor.isdigit():
        raise ValueError(f"contender {spec!r}: budget multiplier {factor!r} is not an integer")
    if any(not key or not sep for key, sep, _ in (o.partition("=") for o in option_specs)):
        raise ValueError(f"contender {spec!r}: options are OPTION=VALUE")
    options = dict(o.partition("=")[::2] for o in option_specs)
    if set(options) - RUNNER_OPTIONS and strategy != "droplet":
        raise ValueError(f"contender {spec!r}: options other than {sorted(RUNNER_OPTIONS)} are for droplet only")
    if options.get("runner", "local") not in ("local", "interleaved"):
        raise ValueError(f"contender {spec!r}: runner must be local or interleaved")
    return strategy, (int(factor) if factor else 1) * n, post, options


def work_dir_name(contender: str, n: int, seed: int = 0) -> str:
    """A file name for a contender's work dir that any file system takes (no ':' or '@').

    Tuning seeds other than 0 get their own work dir (``-s1``): a database is a resume point.
    """
    name = contender.replace("@", "-at-").replace(":", "_").replace("=", "-") + f"-N{n}"
    return name + (f"-s{seed}" if seed else "")


def add_run_choice(parser: argparse.ArgumentParser) -> None:
    """The options that pick some runs of one workload: --results, --workload, --contenders, --seeds, --n."""
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--contenders", required=True, type=lambda s: s.split(","))
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--n", type=int, default=300)


def chosen_runs(args: argparse.Namespace) -> dict[tuple[str, int], dict]:
    """The runs that :func:`add_run_choice`'s options pick and ``runs.jsonl`` holds: (contender, seed) -> run."""
    runs = {(r["contender"], r.get("seed", 0)): r for r in load_runs(args.results)
            if r["workload"] == args.workload and r["n"] == args.n}
    return {(c, s): runs[(c, s)] for c in args.contenders for s in args.seeds if (c, s) in runs}


def missing_runs(args: argparse.Namespace, runs: dict[tuple[str, int], dict]) -> list[str]:
    """The runs :func:`add_run_choice`'s options ask for that ``runs`` (:func:`chosen_runs`) lacks, as "C seed S"."""
    return [f"{c} seed {s}" for c in args.contenders for s in args.seeds if (c, s) not in runs]


def load_runs(results: Path) -> list[dict]:
    path = results / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cmd_run(args) -> int:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    done = {(r["workload"], r["contender"], r["n"], r.get("seed", 0)) for r in load_runs(results)}
    if args.jobs == 1:
        print("suite run: run this alone; other heavy jobs skew the timings", flush=True)
    else:
        print(f"suite run: {args.jobs} contenders at once: a smoke test, their timings are skewed", flush=True)
    todo = []
    for seed in args.seeds:  # seed by seed, so that a stopped run leaves whole seeds behind
        for workload in args.workloads:
            for contender in args.contenders:
                parse_contender(contender, args.n)
                if (workload, contender, args.n, seed) in done:
                    print(f"  {workload} {contender} seed {seed}: already in {results / 'runs.jsonl'}, skipped")
                    continue
                todo.append((workload, contender, seed))
    running: list[tuple[str, str, subprocess.Popen]] = []
    while todo or running:
        while todo and len(running) < args.jobs:
            workload, contender, seed = todo.pop(0)
            print(f"  {workload} {contender} (N={args.n}, seed {seed}) ...", flush=True)
            cmd = [sys.executable, str(HERE / "tune_one.py"), "--workload", workload, "--contender", contender,
                   "--n", str(args.n), "--seed", str(seed), "--per-iter", str(args.per_iter),
                   "--results", str(results)]
            running.append((workload, contender, subprocess.Popen(cmd)))
        workload, contender, proc = running.pop(0)
        if proc.wait() != 0:
            print(f"  {workload} {contender}: failed with status {proc.returncode}", flush=True)
            for _, _, other in running:
                other.wait()
            return proc.returncode
    return 0


def _inputs_for(func, seed: int):
    import numpy as np
    import tvm
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    rng = np.random.default_rng(seed)
    arrays = []
    for info in ArgInfo.from_prim_func(func):
        shape = [int(x) for x in info.shape]
        arrays.append(rng.uniform(-1, 1, size=shape).astype(str(info.dtype)))
    return arrays, [tvm.runtime.tensor(a, tvm.cpu()) for a in arrays]


def kernel_timer(mod, target, tensors):
    """Time a kernel in this process as the compare does in each of its processes: ``tvm.compile``,
    fixed inputs, ``time_evaluator`` of at least 100 ms (``bench/transfer.py``'s compare column).
    """
    import tvm

    from ms_droplet.timing import evaluator_timer

    lib = tvm.compile(mod, target=target).jit()
    evaluator = lib.time_evaluator("main", tvm.cpu(), number=1, repeat=1, min_repeat_ms=100)
    return evaluator_timer(evaluator, *tensors)


# CPUs whose AVX-512 runs on 256-bit FMA units, two passes per instruction (Zen 4 "double-pumps"):
# their fp32 peak per cycle is AVX2's, 32 FLOP, not the 64 of two 512-bit units (Zen 5; two assumed on Intel).
_HALF_WIDTH_AVX512 = {"znver4"}


def peak_fp32_per_cycle(flags: set[str], llvm_cpu: str) -> tuple[int, str]:
    """fp32 FLOP per cycle per core from the vector flags and LLVM's CPU name, and how it was derived."""
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    if lanes == 16 and llvm_cpu in _HALF_WIDTH_AVX512:
        lanes = 8
        note = f"{llvm_cpu} runs AVX-512 on 256-bit units: 8 lanes"
    else:
        note = f"{lanes} lanes"
    fma = "fma" in flags or "avx512f" in flags
    fma_units = 2
    per_cycle = lanes * 2 * fma_units if fma else lanes * 2
    how = f"{note} x 2 (FMA) x {fma_units} FMA units" if fma else f"{note} x 2 (add and multiply)"
    return per_cycle, how


def _peak_gflops() -> tuple[float, str]:
    """Peak fp32 rate from the clock, the cores and the vector FMA width the CPU reports.

    /proc/cpuinfo's clock in a VM is often the nominal one, so a kernel may exceed this "peak" at boost."""
    import tvm

    from ms_droplet.machine import cpuinfo
    from ms_droplet.workloads import physical_cores

    info = cpuinfo()
    if "cpu MHz" not in info:
        return math.nan, "unknown (no cpu MHz in /proc/cpuinfo)"
    mhz = float(info["cpu MHz"])
    per_cycle, per_cycle_how = peak_fp32_per_cycle(set(info.get("flags", "").split()),
                                                  tvm.target.codegen.llvm_get_system_cpu())
    cores = physical_cores()
    peak = cores * mhz / 1e3 * per_cycle
    how = (f"{cores} cores x {mhz / 1e3:.2f} GHz (cpu MHz in /proc/cpuinfo) x {per_cycle} fp32 FLOP/cycle "
           f"({per_cycle_how})")
    return peak, how


def cmd_compare(args) -> int:
    import tempfile

    from process_timing import REFERENCE, REFERENCE_SIZE, THREADS, time_in_processes
    from process_timing import latency as process_latency

    from ms_droplet.machine import machine_info
    from ms_droplet.workloads import flop_count, get_workload, host_target

    results = Path(args.results)
    runs = [r for r in load_runs(results) if args.contenders is None or r["contender"] in args.contenders]
    # a workload with a run of any contender asked for needs a run of each of them
    have = {(r["workload"], r["contender"]) for r in runs if r["n"] == args.n}
    tuned = {w for w, _ in have}
    missing = [f"{c} on {w}" for w in args.workloads if w in tuned for c in args.contenders or () if (w, c) not in have]
    if args.contenders and not have:
        missing = list(args.contenders)
    for name in (args.verdict, *(c for _, c in args.verdict_on or ())):
        if args.contenders and name not in args.contenders:
            print(f"suite compare: --verdict contender {name!r} is not among --contenders", file=sys.stderr)
            return 2
    if missing:
        print(f"suite compare: no run of {', '.join(missing)} at N={args.n} in {results}", file=sys.stderr)
        return 2
    target = host_target()
    print("suite compare: run this alone; other heavy jobs skew the timings", flush=True)
    peak, peak_how = _peak_gflops()
    summary = {"machine": machine_info(), "command": " ".join(["python", *sys.argv]), "rounds": args.rounds,
               "processes": args.processes, "peak_gflops": peak, "peak_derivation": peak_how, "workloads": {}}
    for workload in args.workloads:
        by_seed = {(r["contender"], r.get("seed", 0)): r for r in runs if r["workload"] == workload and r["n"] == args.n}
        if not by_seed:
            continue
        mine: dict[str, list[dict]] = {}  # contender -> its runs, one per tuning seed
        for (contender, _), run in sorted(by_seed.items(), key=lambda kv: kv[0][1]):
            mine.setdefault(contender, []).append(run)
        wl = get_workload(workload)
        flops = flop_count(wl.mod)
        with tempfile.TemporaryDirectory() as tmp:
            libraries = export_best(mine, wl, target, Path(tmp))
            per_process = time_in_processes(workload, libraries, args.rounds, args.processes,
                                            with_numpy=workload.startswith("GMM"), reference=True)
        reference_s = per_process.pop(REFERENCE)
        threads = sorted({n for (n,) in per_process.pop(THREADS)})
        per_kernel = {name: process_latency(samples) for name, samples in per_process.items()}
        # a contender's latency: the median over its tuning seeds of each seed's kernel (re-timed here)
        labels = {name: [run_label(name, r.get("seed", 0)) for r in seeded] for name, seeded in mine.items()}
        med: dict[str, float] = {}
        for name, mine_labels in labels.items():
            timed = [per_kernel[label] for label in mine_labels if label in per_kernel]
            if timed:
                med[name] = statistics.median(timed)
        if "numpy" in per_kernel:
            med["numpy"] = per_kernel["numpy"]
        entry = {"flops": flops, "reference_s": reference_s, "runtime_threads": threads, "contenders": {}}
        for name, latency in med.items():
            row = {"latency_s": latency, "gflops": flops / latency / 1e9}
            for ref in (BASELINE, BASELINE_10N, "replay-trace@N", "numpy"):
                if ref in med and ref != name:
                    row[f"ratio_to_{ref}"] = latency / med[ref]
            if name in mine:
                seeded = mine[name]
                row["seeds"] = {str(r.get("seed", 0)): {"latency_s": per_kernel.get(label),
                                                        "samples_s": per_process.get(label)}
                                for r, label in zip(seeded, labels[name], strict=True)}
                for key in ("wall_s", "trials", "failures", "strategy_cpu_per_candidate_ms"):
                    row[key] = statistics.median(r[key] for r in seeded)
                row["wall_per_trial_s"] = statistics.median(r["wall_s"] / max(r["trials"], 1) for r in seeded)
                row["machines"] = sorted({r["machine"]["target"] for r in seeded})
                row["build_timeouts_s"] = sorted({build_timeout(r) for r in seeded})
                row["build_workers"] = sorted({build_workers(r) for r in seeded})
                row["runner_threads"] = sorted({r.get("runner_threads") for r in seeded}, key=str)
                if "post_optimization" in seeded[0]:
                    row["post_optimization"] = [r.get("post_optimization") for r in seeded]
            else:
                row["samples_s"] = per_process[name]
            if not math.isnan(peak):
                row["fraction_of_peak"] = flops / latency / 1e9 / peak
            entry["contenders"][name] = row
        summary["workloads"][workload] = entry
        print(f"  {workload}: " + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in med.items()), flush=True)
    summary["machine_speed"] = machine_speed(summary, f"numpy matmul, {REFERENCE_SIZE}^2 fp32")
    summary["verdict"] = verdict(summary, args.verdict, dict(args.verdict_on or ()))
    # One set of outputs per N, so that a compare at another budget does not overwrite them.
    stem = f"N{args.n}" + (f"-{args.tag}" if args.tag else "")
    (results / f"summary-{stem}.json").write_text(json.dumps(summary, indent=2))
    (results / f"summary-{stem}.md").write_text(markdown_table(summary))
    from plots import plot_curves, plot_ratios

    plot_curves([r for r in runs if r["workload"] in summary["workloads"]], results / "plots" / stem, args.n)
    plot_ratios(summary, results / "plots" / stem)
    print(markdown_table(summary))
    return 0


def export_best(mine: dict[str, list[dict]], wl, target, out: Path) -> dict[str, str]:
    """Compile each run's best schedule with ``tvm.compile`` and export it to ``out``: label -> library."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    libraries = {}
    for contender, seeded in mine.items():
        for run in seeded:
            db = ms.database.JSONDatabase(work_dir=run["work_dir"], allow_missing=False)
            sch = ms.tir_integration.compile_tir(db, wl.mod, target)
            if sch is None:
                print(f"  {wl.name} {contender}: no valid schedule in {run['work_dir']}")
                continue
            label = run_label(contender, run.get("seed", 0))
            libraries[label] = str(out / f"kernel-{len(libraries)}.so")
            tvm.compile(sch.mod, target=target).export_library(libraries[label])
    return libraries


def run_label(contender: str, seed: int) -> str:
    """A tuning run's name: the contender, with ``#sK`` for tuning seed K > 0."""
    return contender if seed == 0 else f"{contender}#s{seed}"


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def verdict(summary: dict, contender: str = "droplet@N", on: dict[str, str] | None = None) -> dict:
    """Issue 13's targets for ``contender`` over the workloads compared (per-workload medians over seeds).

    ``on`` maps a workload to the contender that stands for ``contender`` there: runs of the same
    strategy recorded under another name (the default's options spelled out, say).
    """
    on = on or {}
    out: dict = {"contender": contender, **({"on": dict(on)} if on else {})}
    entries = {}
    for w, e in summary["workloads"].items():
        rows = dict(e["contenders"])
        if w in on:
            rows.pop(contender, None)
            if on[w] in rows:
                rows[contender] = rows.pop(on[w])
        if contender in rows:
            entries[w] = rows
    for ref, key in ((BASELINE, "vs_evolutionary"), ("replay-trace@N", "vs_replay"), (BASELINE_10N, "vs_evolutionary_10N")):
        ratios = {w: rows[contender][f"ratio_to_{ref}"] for w, rows in entries.items() if f"ratio_to_{ref}" in rows[contender]}
        if ratios:
            out[key] = {"per_workload": ratios, "geomean": _geomean(list(ratios.values())), "max": max(ratios.values()),
                        "seeds": {w: (len(rows[contender].get("seeds", {})), len(rows[ref].get("seeds", {})))
                                  for w, rows in entries.items() if w in ratios}}
    walls = {w: (rows[contender]["wall_per_trial_s"], rows[BASELINE]["wall_per_trial_s"]) for w, rows in entries.items()
             if BASELINE in rows and "wall_per_trial_s" in rows[BASELINE]}
    if walls:
        out["wall_per_trial_vs_evolutionary"] = {w: a / b for w, (a, b) in walls.items()}
    tens = {w: rows[contender]["wall_s"] / rows[BASELINE_10N]["wall_s"] for w, rows in entries.items()
            if BASELINE_10N in rows and "wall_s" in rows[BASELINE_10N]}
    if tens:
        out["wall_vs_evolutionary_10N"] = tens
    # every run counts here under its own name, stand-ins and the runs they replace alike
    fastest = {w: run for w, rows in entries.items()
               if BASELINE in rows and (run := _fastest_run(summary["workloads"][w]["contenders"]))}
    if fastest:
        # context for the first target: where the best kernel any run found lies against evolutionary@N's median
        ratios = {w: lat / entries[w][BASELINE]["latency_s"] for w, (lat, _) in fastest.items()}
        out["fastest_run_vs_evolutionary"] = {"per_workload": ratios, "geomean": _geomean(list(ratios.values())),
                                              "runs": {w: run for w, (_, run) in fastest.items()}}
    return out


def _fastest_run(rows: dict) -> tuple[float, str] | None:
    """The fastest kernel of any tuning run among ``rows``: every seed of every contender (numpy has no seeds)."""
    kernels = [(s["latency_s"], run_label(name, int(seed))) for name, row in rows.items()
               for seed, s in row.get("seeds", {}).items() if s.get("latency_s")]
    return min(kernels, default=None)


def verdict_lines(v: dict) -> list[str]:
    stand_ins = "".join(f"; on {w}, {c}'s runs" for w, c in v.get("on", {}).items())
    lines = [f"Targets of issue 13 for {v['contender']}{stand_ins} (per-workload median over tuning seeds):"]
    for key, name, bound in (("vs_evolutionary", "evolutionary@N", 0.90), ("vs_replay", "replay-trace@N", 0.93)):
        if key in v:
            r = v[key]
            lines.append(f"- geometric mean vs {name}: {r['geomean']:.3f} (target <= {bound:.2f}: "
                         f"{'met' if r['geomean'] <= bound else 'NOT met'}) over {len(r['per_workload'])} workloads; "
                         f"worst {r['max']:.3f}")
    if "vs_evolutionary" in v:
        worst = v["vs_evolutionary"]["max"]
        lines.append(f"- no workload above 1.05x evolutionary@N: {'met' if worst <= 1.05 else 'NOT met'} (worst {worst:.3f})")
    if "vs_evolutionary_10N" in v:
        lines.append("- vs evolutionary@10N: " + ", ".join(f"{w} {r:.3f}" for w, r in v["vs_evolutionary_10N"]["per_workload"].items())
                     + " (target <= 1.00); wall vs its wall: "
                     + ", ".join(f"{w} {r:.2f}" for w, r in v.get("wall_vs_evolutionary_10N", {}).items()) + " (target <= 0.15)")
    if "fastest_run_vs_evolutionary" in v:
        f = v["fastest_run_vs_evolutionary"]
        lines.append(f"- for scale, the fastest kernel of any run here (every seed of every contender) vs evolutionary@N: "
                     f"geometric mean {f['geomean']:.3f}; "
                     + ", ".join(f"{w} {r:.3f} ({f['runs'][w]})" for w, r in f["per_workload"].items()))
    if "wall_per_trial_vs_evolutionary" in v:
        lines.append("- tuning wall per trial vs evolutionary@N: "
                     + ", ".join(f"{w} {r:.2f}" for w, r in v["wall_per_trial_vs_evolutionary"].items()) + " (target <= 1)")
    return lines


def machine_speed(summary: dict, reference: str) -> dict | None:
    """How the machine's speed moved during a compare, from the readings of the ``reference`` kernel
    (start and end of every timing process, ``bench/process_timing.py``): each workload's median,
    their spread (slowest over fastest: a load that lasts while a workload's kernels are timed), and
    the range of single readings. ``None`` for summaries without readings."""
    per = {w: [t for pair in e["reference_s"] for t in pair]
           for w, e in summary["workloads"].items() if e.get("reference_s")}
    if not per:
        return None
    medians = {w: statistics.median(ts) for w, ts in per.items()}
    singles = [t for ts in per.values() for t in ts]
    return {"reference": reference, "per_workload_s": medians,
            "spread": max(medians.values()) / min(medians.values()),
            "slowest_workload": max(medians, key=medians.get),
            "readings_s": [min(singles), max(singles)]}


def machine_speed_lines(speed: dict | None) -> list[str]:
    if speed is None:
        return []
    low, high = speed["readings_s"]
    lines = [f"Machine speed: the reference ({speed['reference']}, timed at the start and end of every timing "
             "process) took, median per workload: "
             + ", ".join(f"{w} {t * 1e6:.0f} us" for w, t in speed["per_workload_s"].items())
             + f" (slowest / fastest {speed['spread']:.2f}; single readings {low * 1e6:.0f} to {high * 1e6:.0f} us)."]
    if speed["spread"] > SPEED_SPREAD_WARN:
        lines.append(f"WARNING: the machine was more than {SPEED_SPREAD_WARN - 1:.0%} slower while "
                     f"{speed['slowest_workload']} was timed than while another workload was: kernels timed "
                     "interleaved keep their ratios, but a loaded machine slows memory-bound and compute-bound "
                     "kernels unequally; re-time to be sure.")
    return lines


def build_timeout(run: dict) -> float:
    """The builder's per-candidate timeout a run had; runs recorded before it was kept had 30 s."""
    return run.get("build_timeout_s", 30.0)


def build_workers(run: dict) -> str:
    """Whether a run's builder kept its workers across batches; runs recorded before it did started them per batch."""
    return run.get("build_workers", "per batch")


def mixed_builders(summary: dict, key: str) -> list[str]:
    """Workloads whose contenders were tuned with different builders (``key``: ``build_timeouts_s`` or
    ``build_workers``): a timed-out build costs its whole timeout, starting workers costs ~2 s a batch,
    so their walls do not compare."""
    return [w for w, entry in summary["workloads"].items()
            if len({t for row in entry["contenders"].values() for t in row.get(key, ())}) > 1]


def thread_mismatches(summary: dict) -> list[str]:
    """Workloads where a run was tuned on another thread count than its kernels were timed on here
    (runs record ``runner_threads`` since 2026-12-04 23:43; earlier ones, ``None``, are not judged):
    a schedule picked while timing on one thread is not the one to pick on two."""
    return [w for w, entry in summary["workloads"].items()
            if any(t is not None and [t] != entry.get("runtime_threads", [t])
                   for row in entry["contenders"].values() for t in row.get("runner_threads", ()))]


def markdown_table(summary: dict) -> str:
    lines = [
        f"Machine: {summary['machine']['cpu']}, {summary['machine']['logical_cores']} cores, "
        f"TVM {summary['machine']['tvm']}, {summary['machine']['date']}. "
        f"Kernel times: {_timing_how(summary)}. Command: `{summary['command']}`",
        "",
        "| workload | contender | seeds | latency (us) | GFLOPS | vs evo@N | vs evo@10N | vs replay@N | vs numpy | "
        "tuning wall (s) | trials | strategy ms/cand |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, entry in summary["workloads"].items():
        for name, row in entry["contenders"].items():
            def fmt(key, spec=".2f", row=row):
                return format(row[key], spec) if key in row and row[key] is not None else ""
            seeds = row.get("seeds", {})
            spread = (" (" + " / ".join(f"{s['latency_s'] * 1e6:.1f}" for s in seeds.values() if s["latency_s"]) + ")"
                      if len(seeds) > 1 else "")
            lines.append(
                f"| {workload} | {name} | {len(seeds) or ''} | {row['latency_s'] * 1e6:.1f}{spread} | {row['gflops']:.1f} | "
                f"{fmt(f'ratio_to_{BASELINE}')} | {fmt(f'ratio_to_{BASELINE_10N}')} | {fmt('ratio_to_replay-trace@N')} | "
                f"{fmt('ratio_to_numpy')} | "
                f"{fmt('wall_s', '.0f')} | {fmt('trials', '.0f')} | {fmt('strategy_cpu_per_candidate_ms', '.1f')} |"
            )
    lines.append("")
    lines.append("Latency: median over tuning seeds of each seed's kernel, re-timed interleaved here (seeds in "
                 "brackets); wall, trials and ms/cand: medians over seeds. Ratios are latency / reference latency: "
                 "below 1 is faster than the reference.")
    timeouts = sorted({t for e in summary["workloads"].values() for row in e["contenders"].values()
                       for t in row.get("build_timeouts_s", ())})
    if timeouts:
        lines.append("Build timeout per candidate: " + ", ".join(f"{t:g} s" for t in timeouts) + ".")
    if mixed := mixed_builders(summary, "build_timeouts_s"):
        lines.append(f"WARNING: contenders tuned with different build timeouts on {', '.join(mixed)}: "
                     "a timed-out build costs its whole timeout, so their walls do not compare.")
    if mixed := mixed_builders(summary, "build_workers"):
        lines.append(f"WARNING: contenders tuned with build workers kept and started per batch on {', '.join(mixed)}: "
                     "starting them costs about 2 s a batch, so their walls do not compare.")
    timed = sorted({t for e in summary["workloads"].values() for t in e.get("runtime_threads", ())})
    tuned = sorted({t for e in summary["workloads"].values() for row in e["contenders"].values()
                    for t in row.get("runner_threads", ())}, key=str)
    if timed:
        how = ", ".join("unrecorded" if t is None else str(t) for t in tuned)
        lines.append(f"Threads per kernel: timed here on {', '.join(map(str, timed))}"
                     + (f"; tuned on {how}." if how else "."))
    if mixed := thread_mismatches(summary):
        lines.append(f"WARNING: runs tuned on another thread count than they were timed on here on {', '.join(mixed)}.")
    lines += machine_speed_lines(summary.get("machine_speed"))
    if summary.get("peak_derivation"):
        lines.append(f"Peak: {summary['peak_gflops']:.0f} GFLOPS = {summary['peak_derivation']}.")
    if summary.get("verdict", {}).get("vs_evolutionary"):
        lines += ["", *verdict_lines(summary["verdict"])]
    return "\n".join(lines) + "\n"


def _timing_how(summary: dict) -> str:
    if "processes" not in summary:  # summaries written before kernels were timed in several processes
        return f"median of {summary['rounds']} interleaved rounds in one process"
    return (f"median over {summary['processes']} fresh processes of each one's median of "
            f"{summary['rounds']} interleaved rounds")


def cmd_quick(args) -> int:
    """The quick tier: one workload, small N, droplet / evolutionary / replay, then compare."""
    out = Path(args.out)
    base = ["--results", str(out), "--n", str(args.n), "--workloads", args.workload]
    # Three processes at once: the quick tier checks that every step works, its timings mean nothing.
    code = main(["run", *base, "--contenders", "droplet@N,evolutionary@N,replay-trace@N", "--per-iter", "8",
                 "--jobs", "3"])
    if code:
        return code
    return main(["compare", *base, "--rounds", "5", "--processes", "2"])


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` -> [0, 1, 2]."""
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-"))
            return list(range(low, high + 1))
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds {text!r} are not like 0,1,2 or 0-2") from None


def positive_int(text: str) -> int:
    """An argparse type: a positive integer, or an error naming the text."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _tag(text: str) -> str:
    if not text.replace("-", "").replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"tag {text!r} is not letters, digits, '-' and '_'")
    return text


def _stand_in(text: str) -> tuple[str, str]:
    workload, sep, contender = text.partition("=")
    if not sep or not workload or not contender:
        raise argparse.ArgumentTypeError(f"--verdict-on {text!r} is not WORKLOAD=CONTENDER")
    return workload, contender


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "compare"):
        p = sub.add_parser(name)
        p.add_argument("--workloads", type=lambda s: s.split(","), default=SUITE)
        p.add_argument("--n", type=int, default=300)
        p.add_argument("--results", default=str(HERE / "results"))
        p.add_argument("--contenders", type=lambda s: s.split(","), default=CONTENDERS if name == "run" else None,
                       help="default: " + (",".join(CONTENDERS) if name == "run" else "every contender run at this N"))
        if name == "run":
            p.add_argument("--seeds", type=parse_seeds, default=[0], help="tuning seeds, e.g. 0,1,2 or 0-2")
            p.add_argument("--per-iter", type=int, default=32)
            p.add_argument("--jobs", type=int, default=1, help="contenders tuned at once (>1 skews timings)")
        else:
            p.add_argument("--rounds", type=int, default=5, help="interleaved rounds in each timing process")
            p.add_argument("--processes", type=positive_int, default=5,
                           help="fresh processes each kernel is timed in; its latency is the median over them "
                                "(one process is one draw of memory placement, see bench/process_timing.py)")
            p.add_argument("--tag", type=_tag, default=None, help="written to summary-N<n>-<tag>.*: a partial "
                           "compare does not overwrite the full one")
            p.add_argument("--verdict", default="droplet@N", metavar="CONTENDER",
                           help="the contender whose issue-13 targets are reported (default: droplet@N)")
            p.add_argument("--verdict-on", type=_stand_in, action="append", metavar="WORKLOAD=CONTENDER",
                           help="on WORKLOAD, CONTENDER's runs stand for --verdict's (repeatable)")
    q = sub.add_parser("quick")
    q.add_argument("--out", default=str(HERE / "results" / "quick"))
    q.add_argument("--n", type=int, default=16)
    q.add_argument("--workload", default="GMM-0")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    return {"run": cmd_run, "compare": cmd_compare, "quick": cmd_quick}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
