"""Shared real TVM objects at small sizes."""

from __future__ import annotations

import pytest
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing import te_workload

import ms_droplet
from ms_droplet.builder import fast_builder
from ms_droplet.workloads import host_target


def matmul_mod(n: int = 32) -> tvm.IRModule:
    return tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(n, n, n))})


@pytest.fixture(scope="session")
def target():
    return host_target()


@pytest.fixture(scope="session")
def builder():
    return fast_builder()


@pytest.fixture(scope="session")
def runner():
    return ms.runner.LocalRunner(
        evaluator_config=ms.runner.EvaluatorConfig(number=1, repeat=2, min_repeat_ms=0)
    )


def matmul_relu_model() -> tvm.IRModule:
    """A tiny Relax model, relu(x @ w), not yet legalized: one fused task once prepared."""
    from tvm.script import ir as I
    from tvm.script import relax as R

    @I.ir_module
    class Model:
        @R.function
        def main(x: R.Tensor((16, 32), "float32"), w: R.Tensor((32, 16), "float32")):
            with R.dataflow():
                z = R.nn.relu(R.matmul(x, w))
                R.output(z)
            return z

    return Model


def make_context(mod, target, strategy=None, postprocs="default", seed=7, space_generator=None):
    space = ms.space_generator.PostOrderApply(postprocs=postprocs) if postprocs != "default" else "post-order-apply"
    space = space_generator if space_generator is not None else space
    return ms.TuneContext(
        mod=mod,
        target=target,
        space_generator=space,
        search_strategy=strategy if strategy is not None else ms_droplet.DropletSearch(),
        task_name="test",
        num_threads=1,
        rand_state=seed,
    )


def recorded_run_times(candidates):
    """Recorded measurements: a fixed run time per schedule, so two runs see the same numbers."""
    from ms_droplet.trace import module_key

    return [ms.runner.RunnerResult([1e-6 * (1 + module_key(c.sch.mod) % 997)] * 2, None) for c in candidates]


def measure(candidates, target, builder, runner):
    """Build and run candidates with the real builder and runner: the lab's ``measure``, as RunnerResults."""
    from ms_droplet.lab.record import measure as measure_schedules

    pairs = measure_schedules([c.sch for c in candidates], target, builder, runner)
    return [ms.runner.RunnerResult(None, error) if error else result for error, result in pairs]


def measured_twice_unasked(batches, before=()) -> list[int]:
    """Schedule keys measured again other than alone in a batch. A descent confirming a move
    (``confirm_moves``, the default) measures its point again, alone; nothing else is measured
    twice, neither within a run nor after ``before`` (the keys of an earlier run)."""
    seen, out = set(before), []
    for batch in batches:
        for key in batch:
            if key in seen and len(batch) != 1:
                out.append(key)
            seen.add(key)
    return out


def remeasured_on_purpose(work_dir) -> tuple[int, int]:
    """From a run's logs: (paired descent batches that re-time their centre, logged when the
    batch is made; faster points measured again to confirm a move, and centres measured again
    with ``confirm_moves="retime"`` or moved to on a ``sure_gain``, logged with the result)."""
    from pathlib import Path

    logs = "".join(p.read_text() for p in (Path(work_dir) / "logs").glob("*.log"))
    return (logs.count("re-times its centre"),
            logs.count(", measured twice") + logs.count("a faster point measured again at")
            + logs.count("re-timed its centre at"))
