"""Tuned schedules are what a compiled model runs: prepare, apply_database, the Relax tuning pipeline."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
import tvm_ffi
from conftest import matmul_relu_model
from tvm import relax
from tvm.s_tir import meta_schedule as ms

import ms_droplet
from ms_droplet.model_tuning import compile_model, run, time_interleaved, tune_model
from ms_droplet.models import load_onnx, small_cnn, transformer_block, write_onnx_cnn
from ms_droplet.relax_pipeline import (
    SCHEDULED,
    TunedScheduleNotApplied,
    apply_database,
    fuse_passes,
    prepare,
    tuning_pipeline,
)

TOL = {"rtol": 1e-3, "atol": 1e-3}


def _onnx_cnn(tmp_path):
    write_onnx_cnn(tmp_path / "cnn.onnx")
    return load_onnx(tmp_path / "cnn.onnx")


@pytest.mark.parametrize("make", [small_cnn, transformer_block, _onnx_cnn], ids=["cnn", "transformer", "onnx"])
def test_prepared_module_is_left_unchanged_by_the_passes_compile_relax_runs_again(make, tmp_path):
    # compile_relax and Relax's zero pipeline re-run these passes before looking up the database:
    # if they changed a function (FuseTIR's output gains an op_pattern), its record was missed.
    model = make(tmp_path) if make is _onnx_cnn else make()
    prepared = prepare(model.mod)
    assert tvm_ffi.structural_equal(tvm.transform.Sequential(fuse_passes())(prepared), prepared)


def _tiny_tuned(tmp_path, target, builder, runner):
    """A matmul + relu model, prepared and tuned for a few trials."""
    raw = matmul_relu_model()
    mod = prepare(raw)
    database = ms.relax_integration.tune_relax(
        mod=mod, params={}, target=target, work_dir=str(tmp_path), max_trials_global=4, num_trials_per_iter=4,
        strategy=ms_droplet.DropletSearch(explore="replay"), builder=builder, runner=runner, seed=3,
        cost_model="random",
    )
    return raw, mod, database


@pytest.mark.slow
def test_a_tuned_task_whose_function_differs_is_an_error_naming_it(tmp_path, target, builder, runner):
    raw, mod, database = _tiny_tuned(tmp_path, target, builder, runner)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    (name,) = [t.task_name for t in tasks]

    applied_mod, applied = apply_database(mod, database, target, tasks)
    assert applied == {name: True}
    functions = {gv.name_hint: f for gv, f in applied_mod.functions.items()}
    assert functions[name].attrs[SCHEDULED]

    # The defect as it was: the compiled function lacks an attribute the tuned task had.
    gv = mod.get_global_var(name)
    differs = tvm.IRModule(dict(mod.functions.items()))
    differs[gv] = mod[gv].without_attr("op_pattern")
    with pytest.raises(TunedScheduleNotApplied, match=name):
        apply_database(differs, database, target, tasks)
    # A module prepared differently (not fused): the tuned function is not there at all.
    unfused = relax.transform.LegalizeOps()(raw)
    with pytest.raises(TunedScheduleNotApplied, match=name):
        apply_database(unfused, database, target, tasks)


def test_a_model_runs_the_workload_as_written_when_its_record_is_the_fastest(target):
    # The unscheduled candidate (strategy option `unscheduled`) helps a model only if, when its
    # record is the task's fastest, the compiled model runs it. The records' run times are set
    # here, not measured: what is tested is which kernel the compiled model then runs.
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from ms_droplet.trace import has_parallel_loop, replay, unscheduled_trace

    model = transformer_block()
    mod = prepare(model.mod)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    task = next(t for t in tasks if "transpose" in t.task_name)
    workload_mod = task.dispatched[0]
    postprocs = ms.postproc.Postproc.create("llvm")
    ctx = ms.TuneContext(mod=workload_mod, target=target, space_generator="post-order-apply",
                         task_name=task.task_name)
    (space,) = ctx.generate_design_space()  # a transpose: one schedule, no decision
    scheduled = replay(workload_mod, space.trace, postprocs, 1)
    plain = replay(workload_mod, unscheduled_trace(workload_mod), postprocs, 1)
    assert has_parallel_loop(scheduled.mod) and not has_parallel_loop(plain.mod)

    def compiled_task(plain_secs: float, scheduled_secs: float):
        database = ms.database.MemoryDatabase()
        workload = database.commit_workload(workload_mod)
        args = ArgInfo.from_prim_func(workload_mod["main"])
        for sch, secs in ((plain, plain_secs), (scheduled, scheduled_secs)):
            database.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, [secs], target, args))
        applied_mod, applied = apply_database(mod, database, target, tasks)
        assert applied == {task.task_name: True}
        return applied_mod, applied_mod[task.task_name]

    applied_mod, func = compiled_task(plain_secs=1e-6, scheduled_secs=6e-6)
    assert not has_parallel_loop(tvm.IRModule({"main": func})), "the workload as written runs"
    exe, _ = compile_model(applied_mod, target)
    np.testing.assert_allclose(run(exe, model.inputs), model.reference(model.inputs), **TOL)
    _, func = compiled_task(plain_secs=6e-6, scheduled_secs=1e-6)
    assert has_parallel_loop(tvm.IRModule({"main": func})), "the faster scheduled kernel runs"


@pytest.mark.slow
def test_tuned_cnn_runs_every_tuned_schedule_and_is_much_faster(tmp_path, target, builder, runner):
    model = small_cnn()
    # Two batches per task: every task gets tuned (the task scheduler goes round them first).
    result = tune_model(
        model, target, tmp_path, max_trials_global=48, strategy=ms_droplet.DropletSearch(explore="replay"),
        num_trials_per_iter=4, builder=builder, runner=runner, cost_model="random", seed=0, rounds=5,
    )
    assert len(result.tasks) >= 5
    for row in result.tasks:
        assert row.trials > 0 and row.latency is not None, row
        assert row.applied is True, row
    assert "applied" in result.table() and " NO" not in result.table()
    np.testing.assert_allclose(result.outputs["tuned"], model.reference(model.inputs), **TOL)
    # Untuned convolutions are naive loops; tuned ones run several times faster. A sanity bound.
    assert result.untuned_latency / result.tuned_latency > 1.5, result.table()
    # Every task planned its exploration from its share of the 48 trials (split_budget), so the
    # tasks given a second batch descended from their first one instead of exploring on.
    logs = "".join(f.read_text() for f in (tmp_path / "logs").glob("*.log"))
    plans = re.findall(r"budget 48 \((\d+) per task of (\d+)\), explore (\d+)", logs)
    tasks = len(plans)
    assert tasks >= 5 and set(plans) == {(str(48 // tasks), str(tasks), str(48 // tasks // 2))}, plans
    assert "descent 1 from a seed" in logs


@pytest.mark.slow
def test_tvm_compile_with_the_droplet_tuning_pipeline(tmp_path, target, builder, runner):
    model = small_cnn()
    work_dir = tmp_path / "logs"
    before = (dict(relax.pipeline.PIPELINE_MAP), ms.search_strategy.SearchStrategy.create,
              tvm.get_global_func("tvm.s_tir.meta_schedule.tune_relax"))
    pipeline = tuning_pipeline(
        48, work_dir=work_dir, strategy=ms_droplet.DropletSearch(explore="replay"), builder=builder,
        runner=runner, cost_model="random", num_trials_per_iter=4, seed=0,
    )
    exe = tvm.compile(model.mod, target=target, relax_pipeline=pipeline)

    assert len(ms.database.JSONDatabase(work_dir=str(work_dir)).get_all_tuning_records()) >= 48
    logs = "".join(p.read_text() for p in (work_dir / "logs").glob("*.log"))
    assert "droplet fused_conv2d" in logs and "explore" in logs
    got = run(exe, model.inputs)
    np.testing.assert_allclose(got, model.reference(model.inputs), **TOL)
    untuned, _ = compile_model(prepare(model.mod), target)
    latency = time_interleaved({"untuned": untuned, "tuned": exe}, model.inputs, rounds=5)
    assert latency["untuned"] / latency["tuned"] > 1.5, latency
    # Nothing TVM hands to other code changed.
    after = (dict(relax.pipeline.PIPELINE_MAP), ms.search_strategy.SearchStrategy.create,
             tvm.get_global_func("tvm.s_tir.meta_schedule.tune_relax"))
    assert after[0] == before[0] and after[1] is before[1] and after[2].same_as(before[2])


def test_tuning_pipeline_without_a_target_says_so(tmp_path):
    model = small_cnn()
    with pytest.raises(ValueError, match="no target"):
        tuning_pipeline(4, work_dir=tmp_path)(model.mod)
