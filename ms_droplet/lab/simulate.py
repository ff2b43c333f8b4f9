"""Strategies compared over many seeds on a landscape, through MetaSchedule's real tuning loop.

Each run is ``ms.tune_tir`` with the real strategy object, the real xgb cost model and a real
JSON database in a fresh work dir; only the builder and runner are simulated
(:mod:`.simulated`). A run's score is the noise-free value of the schedule it ends with (the
database's best by measured mean, as ``compile_tir`` would pick it), so luck in the last
measurement does not count as a better kernel.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from ..trace import run_samples
from . import landscape as ls
from .noise import NoiseModel
from .simulated import PREFIX, Oracle, SimulatedBuilder, SimulatedRunner
from .strategies import StrategySpec, parse_strategies
from .surrogate import feature_context, train

__all__ = ["Simulation", "load_simulation", "parse_strategies", "simulate", "write_report"]

#: tuning seed of the first run: clear of the seeds a recording uses (0-2), whose replay phase a
#: replay-trace run with the same seed would repeat schedule for schedule (all exact answers)
SEED_BASE = 1000


@dataclass
class Simulation:
    """Every run of a simulation and what it was run on."""

    landscape: str
    workload: str
    trials: int
    seeds: int
    noise: dict[str, float]
    runs: list[dict[str, Any]] = field(default_factory=list)
    setup_s: float = 0.0

    def labels(self) -> list[str]:
        return list(dict.fromkeys(r["strategy"] for r in self.runs))

    def finals(self, label: str) -> np.ndarray:
        return np.array([r["final_s"] for r in self.runs if r["strategy"] == label and r["final_s"] is not None])

    def stats(self) -> dict[str, dict[str, float]]:
        """Per strategy: quartiles of the final value, trials, strategy CPU, wall, exact share."""
        out = {}
        for label in self.labels():
            runs = [r for r in self.runs if r["strategy"] == label]
            finals = self.finals(label)
            q1, med, q3 = np.percentile(finals, [25, 50, 75]) if len(finals) else (np.nan,) * 3
            answers = sum(r["exact"] + r["predicted"] for r in runs)
            out[label] = {
                "median_us": med * 1e6, "q1_us": q1 * 1e6, "q3_us": q3 * 1e6, "runs": len(runs),
                "trials": float(np.median([r["trials"] for r in runs])),
                "strategy_cpu_s": float(np.median([r["strategy_cpu_s"] for r in runs])),
                "wall_s": float(np.median([r["wall_s"] for r in runs])),
                "exact_share": sum(r["exact"] for r in runs) / answers if answers else float("nan"),
                # a run ending on a predicted schedule is scored by the surrogate, not by a measurement
                "final_exact_share": sum(bool(r["final_exact"]) for r in runs) / len(runs),
            }
        return out

    def beats(self, a: str, b: str) -> float:
        """P(a run of ``a`` ends faster than a run of ``b``), ties counted half."""
        x, y = self.finals(a), self.finals(b)
        if not len(x) or not len(y):
            return float("nan")
        diff = x[:, None] - y[None, :]
        return float(((diff < 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


class _Curve:
    """The noise-free value of the database's best-by-measurement schedule after every batch."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle
        self.best_measured = float("inf")
        self.best_key: int | None = None
        self.trials = 0
        self.points: list[tuple[int, float]] = []

    def add(self, builder_results, runner_results) -> None:
        for built, ran in zip(builder_results, runner_results, strict=True):
            self.trials += 1
            samples = None if built.error_msg or ran.error_msg else run_samples(ran.run_secs)
            if samples is not None and sum(samples) / len(samples) < self.best_measured:
                self.best_measured = sum(samples) / len(samples)
                self.best_key = int(built.artifact_path.removeprefix(PREFIX))
        if self.best_key is not None:
            self.points.append((self.trials, self.oracle.value(self.best_key)))


@derived_object
class _CurveCallback(PyMeasureCallback):
    def __init__(self, curve: _Curve) -> None:
        self.curve = curve

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        self.curve.add(builder_results, runner_results)


class _LazyCostModel(PyCostModel):
    """MetaSchedule's xgb cost model, trained only when a strategy asks it for a prediction.

    Updates are kept and replayed in order, one by one, on the first ``predict`` after them, so
    the model a strategy reads is the one eager updates would have made (same data, same
    retraining points); a strategy that never asks (random replay) never pays for training.
    Training is most of a simulated run's time: the measurements it waits for on the machine
    take none here.
    """

    def __init__(self, inner=None) -> None:
        from tvm.s_tir.meta_schedule.cost_model import XGBModel

        from ..workloads import physical_cores

        self.inner = inner or XGBModel(num_tuning_cores=physical_cores())
        self.pending: list[tuple] = []

    def _catch_up(self) -> None:
        for context, candidates, results in self.pending:
            self.inner.update(context, candidates, results)
        self.pending = []

    def load(self, path: str) -> None:
        self.inner.load(path)

    def save(self, path: str) -> None:
        self._catch_up()
        self.inner.save(path)

    def update(self, context, candidates, results) -> None:
        self.pending.append((context, list(candidates), list(results)))

    def predict(self, context, candidates) -> np.ndarray:
        self._catch_up()
        return self.inner.predict(context, candidates)


LazyCostModel = derived_object(_LazyCostModel)


def run_once(mod, target, spec: StrategySpec, oracle: Oracle, noise: NoiseModel, *, trials: int, per_iter: int,
             seed: int, runner_seed: int) -> dict[str, Any]:
    """One tuning run of ``spec`` on the simulated machine; returns its record."""
    from tvm.s_tir import meta_schedule as ms

    from ..timed import TimedStrategy
    from .record import quiet_metaschedule

    exact0, predicted0 = oracle.exact_answers, oracle.predicted_answers
    curve = _Curve(oracle)
    clock = {"cpu_s": 0.0, "candidates": 0}
    callbacks = [ms.measure_callback.AddToDatabase(), ms.measure_callback.UpdateCostModel(), _CurveCallback(curve)]
    work_dir = tempfile.mkdtemp(prefix="ms-droplet-sim-")
    # XGBModel scores with numpy's global generator until its warm-up: seeded, a run is repeatable
    np.random.seed(seed)
    start = time.perf_counter()
    try:
        quiet_metaschedule()
        ms.tune_tir(mod=mod, target=target, work_dir=work_dir, max_trials_global=trials,
                    num_trials_per_iter=per_iter, strategy=TimedStrategy(spec.make(), clock),
                    builder=SimulatedBuilder(oracle), runner=SimulatedRunner(oracle, noise, seed=runner_seed),
                    cost_model=LazyCostModel(), measure_callbacks=callbacks, seed=seed)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    final = curve.points[-1][1] if curve.points else None
    return {"strategy": spec.label, "seed": seed, "final_s": final, "trials": curve.trials,
            "strategy_cpu_s": clock["cpu_s"], "wall_s": time.perf_counter() - start,
            "exact": oracle.exact_answers - exact0, "predicted": oracle.predicted_answers - predicted0,
            "final_exact": curve.best_key is not None and oracle.is_exact(curve.best_key),
            "curve": curve.points}


def simulate(
    landscape_dir: str | Path,
    strategies: list[StrategySpec] | list[Any],
    *,
    trials: int = 300,
    seeds: int = 20,
    per_iter: int = 32,
    noise_scale: float = 1.0,
    out: str | Path | None = None,
    stream: TextIO | None = None,
) -> Simulation:
    """Run every strategy ``seeds`` times on the landscape's simulated machine.

    ``strategies`` holds :class:`~.strategies.StrategySpec` (from :func:`parse_strategies`),
    MetaSchedule names, or ``SearchStrategy`` instances (each run gets a ``clone()``).
    Tuning seeds are ``SEED_BASE`` + 0, 1, ...; runs go seed by seed, every strategy once per
    seed. With ``out``, runs are appended to ``out/runs.jsonl`` as they finish, and the runs
    already there (same landscape, trials, batch size and noise) are kept and not run again:
    an interrupted simulation resumes, and contenders run by separate calls share one report.
    """
    from tvm.target import Target

    from .record import quiet_metaschedule

    stream = stream or sys.stdout
    specs = [_as_spec(s) for s in strategies]
    start = time.perf_counter()
    land = ls.load(landscape_dir)
    quiet_metaschedule()
    context = feature_context(land)
    noise = NoiseModel.fit(land).scaled(noise_scale)
    oracle = Oracle(land.values(), train(land, context), context)
    mod, target = land.mod, Target(land.target)
    sim = Simulation(str(landscape_dir), land.workload, trials, seeds, noise.__dict__.copy(),
                     setup_s=time.perf_counter() - start)
    setting = {"landscape": Path(landscape_dir).resolve().name, "trials": trials, "per_iter": per_iter,
               "noise_scale": noise_scale}
    log = None
    if out is not None:
        sim.runs = _earlier_runs(Path(out) / "runs.jsonl", setting)
        log = open(Path(out) / "runs.jsonl", "a")  # noqa: SIM115  (closed below, written run by run)
    done = {(r["strategy"], r["seed"]) for r in sim.runs}
    print(f"simulate {land.workload}: {len(oracle.values)} recorded schedules, noise {noise.describe()}; "
          f"{len(specs)} strategies x {seeds} seeds x {trials} trials ({len(done)} runs already in {out})",
          file=stream, flush=True)
    try:
        for seed in range(SEED_BASE, SEED_BASE + seeds):
            for spec in specs:
                if (spec.label, seed) in done:
                    continue
                run = run_once(mod, target, spec, oracle, noise, trials=trials, per_iter=per_iter, seed=seed,
                               runner_seed=seed * 7919 + zlib.crc32(spec.label.encode()) % 7919)
                run.update(setting)
                sim.runs.append(run)
                if log is not None:
                    log.write(json.dumps(run) + "\n")
                    log.flush()
                final = "n/a" if run["final_s"] is None else f"{run['final_s'] * 1e6:.2f} us"
                print(f"  [{time.perf_counter() - start:7.1f} s] seed {seed - SEED_BASE + 1}/{seeds} {spec.label}: {final} "
                      f"({run['trials']} trials, {run['exact']} exact / {run['predicted']} predicted answers, "
                      f"strategy CPU {run['strategy_cpu_s']:.1f} s, wall {run['wall_s']:.1f} s)",
                      file=stream, flush=True)
    finally:
        if log is not None:
            log.close()
    return sim


def _earlier_runs(path: Path, setting: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs already in ``path``; an error naming the file when they were run with another setting."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return []
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{path} line {number} is not JSON; use another --out") from None
        other = {k: run.get(k) for k in setting}
        if other != setting:
            raise ValueError(f"{path} holds runs of another setting ({other}, not {setting}); use another --out")
        runs.append(run)
    return runs


def load_simulation(out: str | Path) -> Simulation:
    """The runs in ``out/runs.jsonl`` as a :class:`Simulation`, for a report without running anything."""
    path = Path(out) / "runs.jsonl"
    if not path.exists():
        raise ValueError(f"{path} does not exist: nothing was simulated into {out}")
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not runs:
        raise ValueError(f"{path} holds no run")
    seeds = max(sum(r["strategy"] == label for r in runs) for label in {r["strategy"] for r in runs})
    return Simulation(runs[0]["landscape"], runs[0]["landscape"], runs[0]["trials"], seeds, {}, runs=runs)


def _as_spec(strategy) -> StrategySpec:
    if isinstance(strategy, StrategySpec):
        return strategy
    if isinstance(strategy, str):
        return parse_strategies(strategy)[0]
    return StrategySpec(type(strategy).__name__, strategy.clone)


def write_report(sim: Simulation, out: str | Path) -> str:
    """Write ``simulation.json``, ``simulation.md`` and ``curves.png`` into ``out``; return the table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = sim.stats()
    labels = sim.labels()
    beats = {a: {b: sim.beats(a, b) for b in labels if b != a} for a in labels}
    (out / "simulation.json").write_text(json.dumps(
        {"landscape": sim.landscape, "workload": sim.workload, "trials": sim.trials, "seeds": sim.seeds,
         "noise": sim.noise, "setup_s": sim.setup_s, "stats": stats, "beats": beats,
         "command": " ".join(["ms-droplet", *sys.argv[1:]])}, indent=2))
    lines = [
        f"{sim.workload}, {sim.trials} trials, up to {sim.seeds} seeds; value = noise-free run time of the "
        "schedule each run ends with (us).",
        "",
        "| strategy | runs | median | q1 | q3 | trials | strategy CPU (s) | wall (s) | exact answers | ends on a recorded schedule |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, s in stats.items():
        lines.append(f"| {label} | {s['runs']} | {s['median_us']:.2f} | {s['q1_us']:.2f} | {s['q3_us']:.2f} | {s['trials']:.0f} | "
                     f"{s['strategy_cpu_s']:.1f} | {s['wall_s']:.1f} | {100 * s['exact_share']:.0f}% | "
                     f"{100 * s['final_exact_share']:.0f}% |")
    if len(labels) > 1:
        lines += ["", "P(row ends faster than column):", "",
                  "| | " + " | ".join(labels) + " |", "| --- |" + " ---: |" * len(labels)]
        for a in labels:
            cells = ["" if a == b else f"{beats[a][b]:.2f}" for b in labels]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "simulation.md").write_text(table)
    plot_curves(sim, out / "curves.png")
    return table


def plot_curves(sim: Simulation, path: Path) -> Path:
    """Median and interquartile band over seeds of each strategy's value after every trial count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = np.arange(1, sim.trials + 1)
    for label in sim.labels():
        rows = []
        for run in (r for r in sim.runs if r["strategy"] == label and r["curve"]):
            trials, values = zip(*run["curve"], strict=True)
            idx = np.searchsorted(trials, grid, side="right") - 1  # value of the last batch done by then
            rows.append(np.where(idx >= 0, np.asarray(values)[np.maximum(idx, 0)], np.nan) * 1e6)
        if not rows:
            continue
        with warnings.catch_warnings():  # trial counts before a run's first batch have no value yet
            warnings.simplefilter("ignore", RuntimeWarning)
            q1, med, q3 = np.nanpercentile(np.vstack(rows), [25, 50, 75], axis=0)
        (line,) = ax.plot(grid, med, label=f"{label} (median of {len(rows)})")
        ax.fill_between(grid, q1, q3, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("trials")
    ax.set_ylabel("noise-free latency of the best-measured schedule (us)")
    ax.set_yscale("log")
    ax.set_title(f"{sim.workload}: simulated tuning, {sim.seeds} seeds (band: quartiles)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
