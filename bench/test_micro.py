"""Micro-benchmarks of the strategy's own overhead (pytest-benchmark).

    python -m pytest bench/test_micro.py --benchmark-enable

Compare runs with ``--benchmark-autosave`` and ``--benchmark-compare`` to see a regression.
Run them alone: other heavy jobs skew the timings.
"""

from __future__ import annotations

import pytest
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing import te_workload

import ms_droplet
from ms_droplet.neighbourhood import neighbours
from ms_droplet.space import CATEGORICAL, TILE, DecisionSpace, Site
from ms_droplet.trace import module_key
from ms_droplet.workloads import host_target

SPACE = DecisionSpace(
    (
        Site(TILE, 4, extent=512, max_innermost=64),
        Site(TILE, 6, extent=512, max_innermost=64),
        Site(TILE, 8, extent=512, max_innermost=64),
        Site(CATEGORICAL, 16, num_choices=4),
    )
)
POINT = ((4, 8, 2, 8), (2, 16, 4, 4), (128, 4), 1)


@pytest.mark.parametrize("radius", [1, 3])
def test_neighbourhood_generation(benchmark, radius):
    found = benchmark(neighbours, SPACE, POINT, radius)
    assert found


def _recorded(cands):
    return [ms.runner.RunnerResult([1e-6 * (1 + module_key(c.sch.mod) % 997)] * 2, None) for c in cands]


def test_droplet_candidate_generation(benchmark):
    """One exploit batch of a 128^3 matmul, divided per candidate (replay + postprocs + hashing)."""
    mod = tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(128, 128, 128))})
    ctx = ms.TuneContext(mod=mod, target=host_target(), space_generator="post-order-apply",
                         search_strategy=ms_droplet.DropletSearch(explore_trials=16, seed=1),
                         task_name="bench", num_threads=1, rand_state=1)
    ctx.pre_tuning(100_000, 16, ctx.generate_design_space(), None, None)
    for _ in range(2):  # explore, so that the next calls descend
        cands = ctx.generate_measure_candidates()
        ctx.notify_runner_results(cands, _recorded(cands))
    sizes = []

    def one_batch():
        cands = ctx.generate_measure_candidates()
        ctx.notify_runner_results(cands, _recorded(cands))
        sizes.append(len(cands))

    benchmark.pedantic(one_batch, rounds=5, iterations=1)
    benchmark.extra_info["candidates_per_batch"] = sizes
    assert all(sizes)
    ctx.post_tuning()
