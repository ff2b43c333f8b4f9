"""Recording a landscape on the real machine, and adding a MetaSchedule work dir to one.

A recording spends its trials in three phases on one work dir (so nothing is measured twice by
the searches): random replay of the design spaces (the broad sample), MetaSchedule's
evolutionary search (warm-started from the replay, so it finds the good region), then Droplet
descents from the best schedules with no exploration of their own (their neighbourhoods: the
region a descent walks). Between phases a fixed panel of schedules (the best few and some
random ones) is measured again, twice, in batches of its own: with the centres a paired descent
re-times in each batch, these repeats are what the noise model is fitted on.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from ..machine import machine_info
from ..trace import module_key, run_samples
from . import landscape as ls

logger = logging.getLogger("ms_droplet.lab")

#: share of the searches' trials per phase (the panel's repeats come off the top)
PHASES = (("replay", 0.3), ("evolutionary", 0.4), ("droplet", 0.3))
PANEL_SIZE = 12  # half the best schedules so far, half random ones (fewer for small recordings)
PANEL_REPEATS = 2  # panel batches after each phase


def quiet_metaschedule() -> None:
    """Keep MetaSchedule's console at WARNING for the next ``tune_tir`` call.

    Each ``tune_tir`` configures its console handler at the logger's level, and leaves the
    logger at DEBUG: without this, the second call of a process prints every batch.
    """
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)


def trace_json(trace) -> Any:
    """A trace in MetaSchedule's JSON form, as plain Python lists, strings and numbers."""
    return ls.plain(trace.as_json())


def schedule_of(mod, trace: Any):
    """The schedule a landscape trace rebuilds (post-processing included, as recorded)."""
    from tvm.s_tir.schedule import Schedule, Trace

    sch = Schedule(mod, debug_mask=0, error_render_level="none")
    Trace.apply_json_to_schedule(trace, sch)
    return sch


class Recorder:
    """Appends every measured candidate to a landscape, one batch number per measured batch."""

    def __init__(self, directory: Path, land: ls.Landscape) -> None:
        self.directory = directory
        self.batch = ls.next_batch(land)
        self.known = set(land.traces)
        self.source = "unknown"
        self.count = 0
        self.on_batch: Callable[[int], None] | None = None

    def add(self, schedules, results) -> None:
        rows = []
        for sch, (build_error, run) in zip(schedules, results, strict=True):
            secs = None if build_error or run is None or run.error_msg else run_samples(run.run_secs)
            rows.append((ls.Measurement(module_key(sch.mod), self.batch, self.source, secs), trace_json(sch.trace)))
        ls.append(self.directory, rows, self.known)
        self.batch += 1
        self.count += len(rows)
        if self.on_batch is not None:
            self.on_batch(self.count)

    def callback(self):
        return _RecorderCallback(self)


@derived_object
class _RecorderCallback(PyMeasureCallback):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        pairs = [(b.error_msg, r) for b, r in zip(builder_results, runner_results, strict=True)]
        self.recorder.add([c.sch for c in measure_candidates], pairs)


def measure(schedules, target, builder, runner) -> list[tuple[str | None, Any]]:
    """Build and run ``schedules`` as one batch with MetaSchedule's builder and runner objects."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.builder import BuilderInput
    from tvm.s_tir.meta_schedule.runner import RunnerInput

    built = builder.build([BuilderInput(sch.mod, target) for sch in schedules])
    device = "cpu" if target.kind.name == "llvm" else target.kind.name
    inputs, where = [], []
    for i, (sch, b) in enumerate(zip(schedules, built, strict=True)):
        if b.error_msg is None:
            where.append(i)
            args = ArgInfo.from_entry_func(sch.mod, remove_preproc=True)
            inputs.append(RunnerInput(b.artifact_path, device, args))
    out: list[tuple[str | None, Any]] = [(b.error_msg, None) for b in built]
    for i, future in zip(where, runner.run(inputs) if inputs else [], strict=True):
        out[i] = (None, future.result())
    for b in built:
        if b.artifact_path:
            shutil.rmtree(Path(b.artifact_path).parent, ignore_errors=True)
    return out


def panel_size(trials: int) -> int:
    """Schedules in the panel: 12, or fewer so that the repeats take at most a quarter of ``trials``."""
    return max(2, min(PANEL_SIZE, trials // (4 * PANEL_REPEATS * len(PHASES))))


def pick_panel(land: ls.Landscape, size: int, rng: np.random.Generator) -> list[int]:
    """The best schedules and a few random working ones: the schedules measured again."""
    values = sorted((v, k) for k, v in land.values().items() if v is not None)
    best = [k for _, k in values[: size // 2]]
    rest = [k for _, k in values[size // 2 :]]
    picked = rng.permutation(len(rest))[: size - len(best)]  # indices: 64-bit keys do not survive numpy
    return best + [rest[i] for i in picked]


def record(
    workload: str,
    trials: int,
    directory: str | Path,
    target=None,
    *,
    seed: int = 0,
    per_iter: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> ls.Landscape:
    """Measure about ``trials`` schedules of ``workload`` on this machine into a new landscape.

    The searches run through ``ms.tune_tir`` with this package's fast builder and interleaved
    runner (5 rounds per batch); the MetaSchedule work dir they share is ``DIR/work``.
    """
    import tvm.s_tir.tensor_intrin  # noqa: F401  (the TuneContext would import it anyway; do it once, first)
    from tvm.s_tir import meta_schedule as ms

    from ..builder import fast_builder
    from ..runners import interleaved_runner
    from ..strategy import DropletSearch
    from ..workloads import get_workload, host_target

    if trials < 100:
        raise ValueError(f"landscape record: trials must be at least 100, got {trials}")
    wl = get_workload(workload)
    target = target or host_target()
    directory = Path(directory)
    ls.create(directory, workload, wl.mod, target, machine_info())
    land = ls.load(directory)
    recorder = Recorder(directory, land)
    recorder.on_batch = on_batch
    builder, runner = fast_builder(), interleaved_runner(seed=seed)
    work_dir = directory / "work"
    work_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    panel: list = []
    size = panel_size(trials)
    searched = trials - PANEL_REPEATS * len(PHASES) * size
    callbacks = [*ms.measure_callback.MeasureCallback.create("default"), recorder.callback()]
    for number, (phase, share) in enumerate(PHASES):
        recorder.source = phase
        strategy = {
            "replay": "replay-trace",
            "evolutionary": "evolutionary",
            # no exploration: every descent starts from the best schedules already recorded
            "droplet": DropletSearch(explore_trials=0, num_seeds=1000, paired=True, seed=seed + 1),
        }[phase]
        quiet_metaschedule()
        ms.tune_tir(mod=wl.mod, target=target, work_dir=str(work_dir), max_trials_global=int(share * searched),
                    num_trials_per_iter=per_iter, strategy=strategy, builder=builder, runner=runner,
                    cost_model="xgb", measure_callbacks=callbacks, seed=seed + number)
        land = ls.load(directory)
        if not panel:
            keys = pick_panel(land, size, rng)
            panel = [schedule_of(wl.mod, land.traces[k]) for k in keys]
        recorder.source = "repeat"
        for _ in range(PANEL_REPEATS):
            recorder.add(panel, measure(panel, target, builder, runner))
    return ls.load(directory)


def add_work_dir(directory: str | Path, work_dir: str | Path) -> int:
    """Add the records of a MetaSchedule work dir whose workload is the landscape's; returns how many.

    Their batches are unknown (:data:`~.landscape.UNKNOWN_BATCH`): they count as values, not as
    repeats for the noise model. Records of other workloads are skipped.
    """
    import tvm_ffi
    from tvm.s_tir import meta_schedule as ms

    from ..database import check_work_dir

    land = ls.load(directory)
    mod = land.mod
    check_work_dir(Path(work_dir))
    db = ms.database.JSONDatabase(work_dir=str(work_dir), allow_missing=False)
    rows = []
    for rec in db.get_all_tuning_records():
        if not tvm_ffi.structural_equal(rec.workload.mod, mod):
            continue
        try:
            sch = schedule_of(mod, trace_json(rec.trace))
        except Exception as err:  # a trace that no longer replays is skipped, said once below
            logger.warning("landscape add: a record of %s does not replay (%s)", work_dir, err)
            continue
        secs = run_samples(rec.run_secs)
        rows.append((ls.Measurement(module_key(sch.mod), ls.UNKNOWN_BATCH, f"workdir:{Path(work_dir).name}", secs),
                     trace_json(sch.trace)))
    ls.append(directory, rows, set(land.traces))
    return len(rows)
