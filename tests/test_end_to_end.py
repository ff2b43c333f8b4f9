"""tune_tir / tune_relax with strategy="droplet", real builder, runner and JSON database."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from conftest import matmul_mod, matmul_relu_model, remeasured_on_purpose
from tvm.s_tir import meta_schedule as ms

import ms_droplet  # noqa: F401 - registers "droplet"
from ms_droplet.trace import base_trace, module_key, replay


def _median_time(executable, args, dev) -> float:
    lib = executable.jit()
    evaluator = lib.time_evaluator("main", dev, number=20, repeat=7)
    return float(np.median(evaluator(*args).results))


def _record_keys(database, mod, target):
    ctx = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply", task_name="k")
    postprocs = list(ctx.space_generator.postprocs)
    keys = []
    for record in database.get_all_tuning_records():
        sch = replay(mod, base_trace(record.trace), postprocs, seed=1)
        assert sch is not None
        keys.append(module_key(sch.mod))
    return keys


@pytest.mark.slow
def test_tune_tir_droplet_is_correct_faster_and_resumes_without_measuring_twice(tmp_path, target, builder, runner):
    mod = matmul_mod(64)
    kwargs = dict(
        mod=mod, target=target, work_dir=str(tmp_path), max_trials_global=24, num_trials_per_iter=12,
        strategy="droplet", builder=builder, runner=runner,
    )
    database = ms.tune_tir(seed=1, **kwargs)
    assert len(database.get_all_tuning_records()) == 24

    sch = ms.tir_integration.compile_tir(database, mod, target)
    assert sch is not None
    tuned = tvm.compile(sch.mod, target=target)
    untuned = tvm.compile(mod, target=target)
    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((64, 64)).astype("float32") for _ in range(2))
    args = [tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev), tvm.runtime.tensor(np.zeros((64, 64), "float32"), dev)]
    tuned(*args)
    np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-4, atol=1e-4)
    assert _median_time(tuned, args, dev) < _median_time(untuned, args, dev)

    # same work dir again: warm start from the records, none measured a second time but the
    # faster points a descent measured again to confirm a move (logged)
    again = ms.tune_tir(seed=2, **kwargs)
    keys = _record_keys(again, mod, target)
    assert len(keys) == 48
    retimed, confirmed = remeasured_on_purpose(tmp_path)
    assert retimed == 0
    assert len(keys) - len(set(keys)) == confirmed, "a schedule was measured twice"


@pytest.mark.slow
def test_tune_relax_with_droplet_string(tmp_path, target, builder, runner):
    from tvm import relax

    from ms_droplet.relax_pipeline import prepare

    mod = prepare(matmul_relu_model())
    database = ms.relax_integration.tune_relax(
        mod=mod, params={}, target=target, work_dir=str(tmp_path), max_trials_global=8,
        num_trials_per_iter=4, strategy="droplet", builder=builder, runner=runner, seed=3,
    )
    assert database.get_all_tuning_records()
    exe = ms.relax_integration.compile_relax(database, mod, target, params=None)
    vm = relax.VirtualMachine(exe, tvm.cpu())
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((16, 32)).astype("float32")
    wa = rng.standard_normal((32, 16)).astype("float32")
    got = vm["main"](tvm.runtime.tensor(xa), tvm.runtime.tensor(wa)).numpy()
    np.testing.assert_allclose(got, np.maximum(xa @ wa, 0), rtol=1e-4, atol=1e-4)
