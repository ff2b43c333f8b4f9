"""Tune every task of a Relax model, compile it, and compare it with the untuned build."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms

from .models import Model
from .relax_pipeline import apply_database, build, prepare
from .timing import evaluator_timer, interleaved, medians
from .trace import module_key, run_samples


@dataclass(frozen=True)
class TaskRow:
    """One tuned task: its name, weight (occurrences in the model), best latency and trials."""

    name: str
    weight: float
    latency: float | None
    trials: int
    failures: int
    applied: bool | None = None  # None: no valid record, so nothing to apply


@dataclass
class ModelResult:
    """What :func:`tune_model` measured."""

    model: str
    tasks: list[TaskRow]
    untuned_latency: float
    tuned_latency: float
    max_abs_diff: float
    tuning_wall: float
    library: Path | None
    database: Path
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

    def table(self) -> str:
        """The per-task table and the end-to-end latencies, as text."""
        width = max([len("task"), *(len(t.name) for t in self.tasks)])
        lines = [f"  {'task':<{width}}  weight  best latency (us)  trials  failed  applied"]
        for t in self.tasks:
            shown = f"{t.latency * 1e6:17.2f}" if t.latency is not None else f"{'-':>17}"
            applied = {True: "yes", False: "NO", None: "-"}[t.applied]
            lines.append(
                f"  {t.name:<{width}}  {t.weight:6g}  {shown}  {t.trials:6d}  {t.failures:6d}  {applied:>7}"
            )
        speedup = self.untuned_latency / self.tuned_latency
        lines += [
            f"  end to end, untuned build: {self.untuned_latency * 1e6:10.2f} us",
            f"  end to end, tuned build:   {self.tuned_latency * 1e6:10.2f} us  ({speedup:.2f}x)",
            f"  tuned vs untuned output: max abs difference {self.max_abs_diff:.2e}",
        ]
        return "\n".join(lines)


def compile_model(
    mod: tvm.IRModule, target, database: ms.Database | None = None, tasks: Sequence | None = None
) -> tuple[relax.VMExecutable, dict[str, bool]]:
    """Compile a prepared module with the schedules of ``database``; without one, the untuned build.

    Returns the executable and, per tuned task, whether its schedule was applied (see
    :func:`~ms_droplet.relax_pipeline.apply_database`, which raises if one is not).
    """
    applied: dict[str, bool] = {}
    if database is not None:
        mod, applied = apply_database(mod, database, target, tasks)
    return build(mod, target), applied


def run(exe, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Run ``main`` on the Relax VM on the CPU; the first output as numpy."""
    vm = relax.VirtualMachine(exe, tvm.cpu())
    out = vm["main"](*(tvm.runtime.tensor(v) for v in inputs.values()))
    while isinstance(out, (list, tuple)) or type(out).__name__ == "Array":
        out = out[0]
    return out.numpy()


def vm_timers(exes: dict[str, object], inputs: dict[str, np.ndarray]) -> dict[str, Callable[[], float]]:
    """A timer for :func:`~ms_droplet.timing.interleaved` per executable (a Relax executable, or
    one exported and loaded back with ``tvm.runtime.load_module``): seconds of one ``main`` on the
    Relax VM on the CPU, on ``inputs`` in order."""
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(v) for v in inputs.values()]
    return {
        name: evaluator_timer(
            relax.VirtualMachine(exe, dev).time_evaluator("main", dev, number=1, repeat=1, min_repeat_ms=100), *args
        )
        for name, exe in exes.items()
    }


def time_interleaved(exes: dict[str, object], inputs: dict[str, np.ndarray], rounds: int = 5) -> dict[str, float]:
    """Median latency of each executable, timed in turn (A B A B ...) for ``rounds`` rounds."""
    return medians(interleaved(vm_timers(exes, inputs), rounds))


def task_rows(database: ms.Database, tasks, applied: dict[str, bool] | None = None) -> list[TaskRow]:
    """Best latency, number of records and whether applied, of each extracted task in ``database``."""
    by_key: dict[int, list] = {}
    for record in database.get_all_tuning_records():
        by_key.setdefault(module_key(record.workload.mod), []).append(record)
    rows = []
    for task in tasks:
        records = by_key.get(module_key(task.dispatched[0]), [])
        times = [s for s in (run_samples(r.run_secs) for r in records) if s is not None]
        best = min((math.fsum(s) / len(s) for s in times), default=None)
        rows.append(TaskRow(task.task_name, float(task.weight), best, len(records), len(records) - len(times),
                            (applied or {}).get(task.task_name)))
    return rows


def _is_scheduled(task) -> bool:
    attrs = task.mod.attrs
    return bool(attrs is not None and attrs.get("tirx.is_scheduled", False))


def tune_model(
    model: Model,
    target,
    work_dir: str | Path,
    max_trials_global: int,
    strategy="droplet",
    *,
    num_trials_per_iter: int = 32,
    builder=None,
    runner=None,
    cost_model: str = "xgb",
    seed: int = 0,
    progress=None,
    first_callbacks: Sequence = (),
    rounds: int = 5,
    library: str | Path | None = None,
) -> ModelResult:
    """Tune every task of ``model`` with ``strategy``, compile, check and time it.

    The tuned build's output is compared with the untuned build's (``max_abs_diff``); both are
    timed interleaved on this machine. ``progress`` (a :class:`~ms_droplet.progress.ProgressPrinter`)
    prints a line per measured batch; ``first_callbacks`` run before MetaSchedule's own (see
    :mod:`ms_droplet.interrupt`). ``library``, if given, receives the compiled model
    (``tvm.runtime.load_module`` reads it back).
    """
    from .builder import fast_builder
    from .runners import local_runner

    work_dir = Path(work_dir)
    mod = prepare(model.mod)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    callbacks = [*first_callbacks, *ms.measure_callback.MeasureCallback.create("default")]
    if progress is not None:
        # tune_relax skips tasks that are already scheduled; task ids count the others.
        progress.task_names = [t.task_name for t in tasks if not _is_scheduled(t)]
        callbacks = [*callbacks, progress.callback()]
    start = time.perf_counter()
    database = ms.relax_integration.tune_relax(
        mod=mod,
        params={},
        target=target,
        work_dir=str(work_dir),
        max_trials_global=max_trials_global,
        num_trials_per_iter=num_trials_per_iter,
        builder=builder or fast_builder(),
        runner=runner or local_runner(),
        cost_model=cost_model,
        strategy=strategy,
        seed=seed,
        measure_callbacks=callbacks,
    )
    wall = time.perf_counter() - start
    (untuned, _), (tuned, applied) = compile_model(mod, target), compile_model(mod, target, database, tasks)
    outputs = {"untuned": run(untuned, model.inputs), "tuned": run(tuned, model.inputs)}
    latency = time_interleaved({"untuned": untuned, "tuned": tuned}, model.inputs, rounds)
    if library is not None:
        tuned.export_library(str(library))
    return ModelResult(
        model=model.name,
        tasks=task_rows(database, tasks, applied),
        untuned_latency=latency["untuned"],
        tuned_latency=latency["tuned"],
        max_abs_diff=float(np.max(np.abs(outputs["tuned"] - outputs["untuned"]))),
        tuning_wall=wall,
        library=Path(library) if library is not None else None,
        database=work_dir / "database_tuning_record.json",
        outputs=outputs,
    )
