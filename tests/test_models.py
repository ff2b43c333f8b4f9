"""Whole models: nn-built CNN and transformer, and an ONNX file, tuned with droplet end to end."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms

import ms_droplet
from ms_droplet.cli import main
from ms_droplet.model_tuning import compile_model, prepare, run
from ms_droplet.models import load_onnx, onnx_cnn_reference, small_cnn, transformer_block, write_onnx_cnn

TOL = {"rtol": 1e-3, "atol": 1e-3}


@pytest.mark.parametrize("make", [small_cnn, transformer_block], ids=["cnn", "transformer"])
def test_untuned_build_matches_the_numpy_reference(make, target):
    # Guards the references themselves, so the tuned tests below check against something true.
    model = make()
    got = run(compile_model(prepare(model.mod), target)[0], model.inputs)
    np.testing.assert_allclose(got, model.reference(model.inputs), **TOL)


def _tune_and_check(model, target, tmp_path, builder, runner, trials):
    mod = prepare(model.mod)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    assert len(tasks) >= 3, [t.task_name for t in tasks]
    # Exploring by replay and a random cost model keep the test short: MetaSchedule's evolutionary
    # search evolves a population of 2048 per batch, for every task. (The string "droplet" goes
    # through tune_relax in test_end_to_end.py and the ONNX test below.)
    database = ms.relax_integration.tune_relax(
        mod=mod, params={}, target=target, work_dir=str(tmp_path), max_trials_global=trials,
        num_trials_per_iter=2, strategy=ms_droplet.DropletSearch(explore="replay"), builder=builder,
        runner=runner, seed=5, cost_model="random",
    )
    # The task scheduler checks the budget before each batch, so the last batch may pass it.
    records = database.get_all_tuning_records()
    assert trials <= len(records) < trials + 2
    exe = ms.relax_integration.compile_relax(database, mod, target, params=None)
    vm = relax.VirtualMachine(exe, tvm.cpu())
    got = vm["main"](*(tvm.runtime.tensor(v) for v in model.inputs.values())).numpy()
    np.testing.assert_allclose(got, model.reference(model.inputs), **TOL)
    # Every task that got a record runs it (compile_model raises otherwise).
    _, applied = compile_model(mod, target, database, tasks)
    assert applied and all(applied.values()), applied
    return tasks, database


@pytest.mark.slow
def test_tune_relax_cnn_with_droplet_matches_numpy(tmp_path, target, builder, runner):
    tasks, _ = _tune_and_check(small_cnn(), target, tmp_path, builder, runner, trials=8)
    names = " ".join(t.task_name for t in tasks)
    assert "conv2d" in names and "matmul" in names


@pytest.mark.slow
def test_tune_relax_transformer_with_droplet_matches_numpy(tmp_path, target, builder, runner):
    tasks, _ = _tune_and_check(transformer_block(), target, tmp_path, builder, runner, trials=8)
    assert any("softmax" in t.task_name for t in tasks)


@pytest.mark.slow
def test_tune_model_cli_on_onnx_file_writes_a_library_that_matches_numpy(tmp_path, capsys):
    path = tmp_path / "cnn.onnx"
    weights = write_onnx_cnn(path)
    lib = tmp_path / "tuned.so"
    code = main(
        ["tune-model", str(path), "--trials", "8", "--per-iter", "2", "--repeat", "2", "--rounds", "2",
         "--work-dir", str(tmp_path / "wd"), "--out", str(lib), "--cost-model", "random", "--explore", "replay"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for label in ("task", "weight", "best latency", "trials", "applied", "end to end, untuned build", "tuned build"):
        assert label in out
    # Every task with records says "yes" in the applied column; none says "NO" (that would have raised).
    assert re.search(r"\s+\d+\s+\d+\s+yes$", out, re.M) and not re.search(r"\sNO$", out, re.M), out
    # The task scheduler checks the budget before each batch, so the last batch may pass it.
    measured = int(re.search(r"trials\s+(\d+) measured in this run \(0 failed\)", out).group(1))
    assert 8 <= measured < 8 + 2, out
    assert (tmp_path / "wd" / "database_tuning_record.json").exists()
    # The written library runs on the VM and computes the network.
    model = load_onnx(path)
    exe = tvm.runtime.load_module(str(lib))
    vm = relax.VirtualMachine(exe, tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(model.inputs["input"])).numpy()
    np.testing.assert_allclose(got, onnx_cnn_reference(weights, model.inputs["input"]), **TOL)


def test_load_onnx_needs_shapes_for_symbolic_inputs(tmp_path):
    import onnx

    path = tmp_path / "cnn.onnx"
    write_onnx_cnn(path)
    proto = onnx.load(str(path))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    sym = tmp_path / "symbolic.onnx"
    onnx.save(proto, str(sym))
    with pytest.raises(ValueError, match=r"'input'.*symbolic"):
        load_onnx(sym)
    with pytest.raises(ValueError, match="'image'"):
        load_onnx(sym, {"image": (1, 3, 16, 16)})
    model = load_onnx(sym, {"input": (2, 3, 16, 16)})
    assert model.inputs["input"].shape == (2, 3, 16, 16)


def test_resnet18_writer_gives_resnet18s_tasks_and_a_runnable_network(tmp_path, target):
    from ms_droplet.models import write_onnx_resnet18

    path = tmp_path / "resnet18.onnx"
    write_onnx_resnet18(path, size=32, width=8, classes=10)
    model = load_onnx(path)
    mod = prepare(model.mod)
    names = [t.task_name for t in ms.relax_integration.extract_tasks(mod, target)]
    # Stem, 4 stages x (first block, second block) with projections in stages 2-4, pool, dense:
    # the 19 distinct fused functions of ResNet-18.
    assert len(names) == 19 and sum("conv2d" in n for n in names) == 15, names
    out = run(compile_model(mod, target)[0], model.inputs)
    assert out.shape == (1, 10) and np.isfinite(out).all()
