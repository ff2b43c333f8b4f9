"""Droplet inside Relax: prepare a model, tune it, and compile it with every tuned schedule applied.

Three pieces, usable alone or together:

- :func:`prepare` lowers a Relax model to the fused TIR functions MetaSchedule tunes, in a form
  that Relax's own preparation passes (run again by ``compile_relax`` and the zero pipeline)
  leave unchanged, so the functions tuned are the functions compiled;
- :func:`apply_database` puts the database's best schedules into a prepared module and reports,
  per tuned task, whether its schedule was applied; a tuned task left untuned is an error
  (:class:`TunedScheduleNotApplied`), never a silent fallback;
- :func:`tune_pass` (``MetaScheduleTuneIRMod``'s signature plus strategy, builder and runner) and
  :func:`tuning_pipeline` (a whole ``relax_pipeline`` for ``tvm.compile``) bring Droplet where
  Relax tunes by itself::

      exe = tvm.compile(mod, target, relax_pipeline=tuning_pipeline(300, work_dir="logs"))

Nothing here changes what other code in the process gets from TVM.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

#: The attribute MetaScheduleApplyDatabase sets on every function it replaced.
SCHEDULED = "tirx.is_scheduled"


class TunedScheduleNotApplied(RuntimeError):
    """A task has tuning records, but the compiled module would not run its tuned schedule."""


def fuse_passes() -> list[tvm.transform.Pass]:
    """The passes ``compile_relax`` and Relax's zero pipeline run before applying a database."""
    return [
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def prepare(mod: tvm.IRModule) -> tvm.IRModule:
    """Lower a Relax model to fused TIR tasks, the form MetaSchedule extracts and tunes.

    The result ends with ``AnnotateTIROpPattern``: ``FuseTIR`` makes functions without an
    ``op_pattern`` attribute, and the annotation that ``compile_relax`` runs again would add one,
    so the compiled functions would differ from the tuned tasks and miss every record.
    """
    return tvm.transform.Sequential(
        [
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            *fuse_passes(),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.DeadCodeElimination(),
        ]
    )(mod)


def tuned_tasks(database: ms.Database, tasks: Sequence, target: Target) -> list[str]:
    """Names of the ``tasks`` (from ``extract_tasks``) that have a valid record in ``database``."""
    target = Target(target) if not isinstance(target, Target) else target
    return [
        t.task_name for t in tasks
        if database.query_tuning_record(t.dispatched[0], target, t.task_name) is not None
    ]


def apply_database(
    mod: tvm.IRModule, database: ms.Database, target, tasks: Sequence | None = None
) -> tuple[tvm.IRModule, dict[str, bool]]:
    """Replace the prepared ``mod``'s functions by their tuned schedules; check every tuned task.

    Returns the module and, for every task of ``tasks`` (default: extracted from ``mod``) that
    has a record in ``database``, whether its function now runs the tuned schedule. Raises
    :class:`TunedScheduleNotApplied` naming every tuned task that is not applied (the module
    is not the one that was tuned, e.g. prepared differently).
    """
    target = Target(target) if not isinstance(target, Target) else target
    if tasks is None:
        tasks = ms.relax_integration.extract_tasks(mod, target)
    tuned = tuned_tasks(database, tasks, target)
    with target, database, tvm.transform.PassContext(opt_level=3):
        mod = relax.transform.MetaScheduleApplyDatabase()(mod)
    functions = {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
    applied = {name: bool(name in functions and (functions[name].attrs or {}).get(SCHEDULED, False))
               for name in tuned}
    missed = [name for name, ok in applied.items() if not ok]
    if missed:
        raise TunedScheduleNotApplied(
            f"{len(missed)} tuned task(s) would run untuned: {', '.join(missed)}. Their functions in the "
            "module differ from the tuned tasks; prepare the module with ms_droplet.relax_pipeline.prepare "
            "and compile that same module."
        )
    return mod, applied


def build(mod: tvm.IRModule, target) -> relax.VMExecutable:
    """Compile a prepared (and possibly scheduled) module with Relax's default build pipeline."""
    return tvm.compile(mod, target=target, relax_pipeline="default")


def tune_pass(
    params: dict | None,
    work_dir: str | Path,
    max_trials_global: int,
    max_trials_per_task: int | None = None,
    op_names: list[str] | None = None,
    *,
    strategy="droplet",
    builder=None,
    runner=None,
    cost_model: str = "xgb",
    num_trials_per_iter: int = 32,
    seed: int | None = None,
    measure_callbacks=None,
) -> tvm.transform.Pass:
    """``relax.transform.MetaScheduleTuneIRMod`` with a strategy, builder and runner of your choice.

    Tunes every task of the (prepared) module under the current target into ``work_dir`` and
    returns the module unchanged, as MetaScheduleTuneIRMod does; follow it with
    ``MetaScheduleApplyDatabase(work_dir)`` or use :func:`tuning_pipeline`. Defaults: Droplet,
    :func:`ms_droplet.builder.fast_builder`, :func:`ms_droplet.runners.local_runner`.
    """
    from .builder import fast_builder
    from .runners import local_runner

    if isinstance(max_trials_global, bool) or not isinstance(max_trials_global, int) or max_trials_global < 0:
        raise ValueError(f"tune_pass: max_trials_global must be an integer >= 0, got {max_trials_global!r}")

    @tvm.transform.module_pass(opt_level=0, name="DropletTuneIRMod")
    def _tune(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        if max_trials_global == 0:
            return mod
        target = Target.current(allow_none=True)
        if target is None:
            raise ValueError("tune_pass: no target; run it inside 'with target:' or through tvm.compile(mod, target)")
        Path(work_dir).mkdir(parents=True, exist_ok=True)
        ms.relax_integration.tune_relax(
            mod=mod, params=params or {}, target=target, work_dir=str(work_dir),
            max_trials_global=max_trials_global, max_trials_per_task=max_trials_per_task, op_names=op_names,
            num_trials_per_iter=num_trials_per_iter, builder=builder or fast_builder(),
            runner=runner or local_runner(), cost_model=cost_model, strategy=strategy, seed=seed,
            measure_callbacks=measure_callbacks if measure_callbacks is not None else "default",
        )
        return mod

    return _tune


def tuning_pipeline(
    total_trials: int,
    target=None,
    work_dir: str | Path = "tuning_logs",
    max_trials_per_task: int | None = None,
    *,
    strategy="droplet",
    builder=None,
    runner=None,
    cost_model: str = "xgb",
    num_trials_per_iter: int = 32,
    seed: int | None = None,
    build: bool = True,
) -> tvm.transform.Pass:
    """Relax's ``static_shape_tuning`` pipeline with Droplet, for ``tvm.compile(relax_pipeline=...)``.

    Prepares the module (:func:`prepare`), tunes it with :func:`tune_pass`, applies the best
    schedules with :func:`apply_database` (an error names any tuned task left untuned), and,
    with ``build=True``, lowers it with Relax's default build pipeline so that ``tvm.compile``
    can finish the job. ``target`` defaults to the one ``tvm.compile`` enters. A second run on
    the same ``work_dir`` resumes: schedules already measured are not measured again.
    """
    tune = tune_pass(
        {}, work_dir, total_trials, max_trials_per_task, strategy=strategy, builder=builder, runner=runner,
        cost_model=cost_model, num_trials_per_iter=num_trials_per_iter, seed=seed,
    )

    @tvm.transform.module_pass(opt_level=0, name="DropletTuningPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        tgt = Target(target) if target is not None else Target.current(allow_none=True)
        if tgt is None:
            raise ValueError("tuning_pipeline: no target; pass target= or use tvm.compile(mod, target, ...)")
        with tgt:
            mod = tune(prepare(mod))
            if Path(work_dir, "database_tuning_record.json").exists():
                database = ms.database.JSONDatabase(work_dir=str(work_dir), allow_missing=False)
                mod, _ = apply_database(mod, database, tgt)
            if build:
                mod = relax.get_pipeline("default")(mod)
        return mod

    return _pipeline
