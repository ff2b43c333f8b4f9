"""How noisy is a measurement? MetaSchedule's LocalRunner against ms_droplet's interleaved runner.

    python bench/measurement.py noise --minutes 10     # noise floor and A/A false moves
    python bench/measurement.py rank                   # Kendall tau of 32 schedules measured twice
    python bench/measurement.py cost                   # wall seconds per candidate, same samples

Schedules are real: replayed from the bench's own databases (bench/results/work/WORKLOAD/
evolutionary-at-N-N300), built once with the fast builder and measured by both runners in
turn (batch A by one runner, then by the other, alternating), so both see the same stretch of
the machine. Results go to bench/results/measurement.json (one key per sub-command) and
measurement.md. Run it alone.

- noise: each batch holds 8 schedules of GMM-2 plus one schedule twice; per batch, the ratio of
  the two copies' medians. Its spread (IQR) is the noise floor a comparison inside one batch
  has. A/A false moves: how often a copy is "accepted" as faster than the other by the rule
  each runner goes with: LocalRunner with the Welch rule against the copy measured in the
  previous batch (what the descent did), the interleaved runner with the paired rule against
  the copy in the same batch.
- rank: a fixed batch of 32 schedules (spread over the database from best to worst) measured
  twice, the second pass after the first pass of the other runner; Kendall tau between passes.
- cost: wall seconds per candidate of a 32-schedule batch, both runners at the same number of
  samples and the same least duration of a sample.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"


def schedules(workload: str, count: int, spread: bool = True):
    """``count`` distinct schedules of ``workload`` from the bench's database, built: RunnerInputs."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.builder import fast_builder
    from ms_droplet.trace import base_trace, module_key, replay, run_samples
    from ms_droplet.workloads import get_workload, host_target

    target = host_target()
    mod = get_workload(workload).mod
    db = ms.database.JSONDatabase(work_dir=str(RESULTS / "work" / workload / "evolutionary-at-N-N300"))
    records = [r for r in db.get_all_tuning_records() if run_samples(r.run_secs)]
    records.sort(key=lambda r: statistics.fmean(run_samples(r.run_secs)))
    ctx = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply", task_name="m")
    postprocs = list(ctx.space_generator.postprocs)
    step = max(1, len(records) // count) if spread else 1
    picked, keys = [], set()
    for record in records[::step] + records:
        sch = replay(mod, base_trace(record.trace), postprocs, seed=1)
        if sch is None or module_key(sch.mod) in keys:
            continue
        keys.add(module_key(sch.mod))
        picked.append(ms.MeasureCandidate(sch, ms.arg_info.ArgInfo.from_entry_func(sch.mod, True)))
        if len(picked) == count:
            break
    built = fast_builder().build([ms.builder.BuilderInput(c.sch.mod, target) for c in picked])
    return [ms.runner.RunnerInput(b.artifact_path, "cpu", c.args_info)
            for c, b in zip(picked, built, strict=True) if b.error_msg is None]


def runners(samples: int, min_repeat_ms: int, seed: int = 0):
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.interleaved import interleaved_runner
    from ms_droplet.machine import use_all_cores

    local = ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(
        number=1, repeat=samples, min_repeat_ms=min_repeat_ms), initializer=use_all_cores)
    return {"local": local, "interleaved": interleaved_runner(rounds=samples, min_repeat_ms=min_repeat_ms, seed=seed)}


def measure(runner, inputs) -> list[list[float]]:
    out = []
    for future in runner.run(inputs):
        result = future.result()
        if result.error_msg:
            raise RuntimeError(result.error_msg)
        out.append([float(getattr(x, "value", x)) for x in result.run_secs])
    return out


def _iqr(values) -> float:
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def _save(key: str, value: dict) -> None:
    from ms_droplet.machine import machine_info

    path = RESULTS / "measurement.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = {**value, "machine": machine_info(), "command": " ".join(["python", *sys.argv])}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({k: v for k, v in data[key].items() if k not in ("log_ratios", "interleaved_pairs")}, indent=2))


def cmd_noise(args) -> int:
    from ms_droplet.stats import is_faster, is_faster_paired

    others = schedules("GMM-2", 9)
    twin, others = others[0], others[1:]
    batch = [twin, *others[:4], twin, *others[4:]]  # the copies at positions 0 and 5
    run = runners(args.samples, args.min_repeat_ms)
    log_ratio = {name: [] for name in run}
    pairs: list[tuple[list[float], list[float]]] = []  # the two copies' samples, interleaved runner
    false_moves = {"welch_across_batches": [], "paired_same_batch": []}
    previous_local = None
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline:
        for name, runner in run.items():
            times = measure(runner, batch)
            a, b = times[0], times[5]
            log_ratio[name].append(math.log(statistics.median(a) / statistics.median(b)))
            if name == "interleaved":
                pairs.append((a, b))
                false_moves["paired_same_batch"] += [is_faster_paired(a, b), is_faster_paired(b, a)]
            else:
                if previous_local is not None:  # the copy against the centre measured a batch earlier
                    false_moves["welch_across_batches"] += [is_faster(a, previous_local), is_faster(b, previous_local)]
                previous_local = a
        print(f"  {len(log_ratio['local'])} batches", flush=True)
    summary = {
        "batches": len(log_ratio["local"]), "samples": args.samples, "min_repeat_ms": args.min_repeat_ms,
        "iqr_log_ratio": {k: _iqr(v) for k, v in log_ratio.items()},
        "max_abs_log_ratio": {k: max(map(abs, v)) for k, v in log_ratio.items()},
        "false_moves_per_100": {k: 100 * sum(v) / len(v) for k, v in false_moves.items() if v},
        "comparisons": {k: len(v) for k, v in false_moves.items()},
        # The paired rule with an effect-size floor, on the same recorded pairs.
        "paired_false_moves_per_100_by_min_gain": {
            str(g): 100 * sum(is_faster_paired(a, b, 0.05, g) + is_faster_paired(b, a, 0.05, g) for a, b in pairs)
            / (2 * len(pairs)) for g in (0.0, 0.005, 0.01, 0.02, 0.03)},
        "interleaved_pairs": pairs,
        "log_ratios": log_ratio,
    }
    _save(f"noise-R{args.samples}-{args.min_repeat_ms}ms-{args.minutes:g}min", summary)
    return 0


def cmd_rank(args) -> int:
    from scipy.stats import kendalltau

    out = {}
    for workload in args.workloads:
        batch = schedules(workload, 32)
        run = runners(args.samples, args.min_repeat_ms)
        passes = {name: [] for name in run}
        for _ in range(2):
            for name, runner in run.items():
                passes[name].append([statistics.median(t) for t in measure(runner, batch)])
                time.sleep(args.pause)
        out[workload] = {name: float(kendalltau(*p).statistic) for name, p in passes.items()}
        out[workload]["schedules"] = len(batch)
        print(workload, out[workload], flush=True)
    _save(f"rank-R{args.samples}-{args.min_repeat_ms}ms", {"kendall_tau": out, "pause_s": args.pause})
    return 0


def cmd_cost(args) -> int:
    batch = schedules("GMM-2", 32)
    run = runners(args.samples, args.min_repeat_ms)
    seconds = {name: [] for name in run}
    for _ in range(args.repeats):
        for name, runner in run.items():
            start = time.perf_counter()
            measure(runner, batch)
            seconds[name].append((time.perf_counter() - start) / len(batch))
    per_candidate = {k: statistics.median(v) for k, v in seconds.items()}
    _save(f"cost-R{args.samples}-{args.min_repeat_ms}ms", {
        "wall_s_per_candidate": per_candidate, "ratio": per_candidate["interleaved"] / per_candidate["local"],
        "batch": len(batch), "repeats": args.repeats})
    return 0


def write_markdown() -> None:
    data = json.loads((RESULTS / "measurement.json").read_text())
    lines = ["# Measurement noise: LocalRunner against the interleaved runner", ""]
    for key, value in data.items():
        m = value["machine"]
        lines.append(f"## {key}")
        lines.append(f"{m['cpu']}, {m['logical_cores']} cores, {m['date']}. Command: `{value['command']}`")
        lines.append("")
        lines.append("```")
        lines.append(json.dumps({k: v for k, v in value.items()
                                 if k not in ("machine", "command", "log_ratios", "interleaved_pairs")},
                                indent=2))
        lines.append("```")
        lines.append("")
    (RESULTS / "measurement.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("noise", "rank", "cost"):
        p = sub.add_parser(name)
        p.add_argument("--samples", type=int, default=5, help="samples per candidate (rounds / repeat)")
        p.add_argument("--min-repeat-ms", type=int, default=30)
        if name == "noise":
            p.add_argument("--minutes", type=float, default=10)
        if name == "rank":
            p.add_argument("--workloads", type=lambda s: s.split(","), default=["GMM-2", "C2D-1"])
            p.add_argument("--pause", type=float, default=60, help="seconds between passes")
        if name == "cost":
            p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("measurement: run this alone; other heavy jobs skew the timings", flush=True)
    code = {"noise": cmd_noise, "rank": cmd_rank, "cost": cmd_cost}[args.command](args)
    write_markdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
