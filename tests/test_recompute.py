"""The recompute guard: schedules estimated to do far more work than the workload are never measured.

Real schedules of a 64x64 softmax (its design spaces replayed with every postproc). There, a few
in ten random schedules estimate 16-50 times the workload's work (a reduction recomputed under
an outer loop), about one in 200 over 1000 times (recomputed for every element); run times are
recorded, not measured, since the guard decides before anything is built.
"""

from __future__ import annotations

import logging

import tvm
from conftest import make_context, recorded_run_times
from tvm import te
from tvm.s_tir.meta_schedule.testing import te_workload

import ms_droplet
from ms_droplet.recompute import RecomputeGuard

BOUND = 10.0


def softmax_mod(n: int = 64) -> tvm.IRModule:
    return tvm.IRModule({"main": te.create_prim_func(te_workload.softmax_mn(n, n))})


class _Messages(logging.Handler):
    """The droplet logger's messages (a named handler: pytest's log capture is off in this project)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.set_name("test_recompute")
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _measured_ratios(max_work_ratio, target):
    """Work ratios of every candidate handed out in a 96-trial run, and the strategy's guard."""
    mod = softmax_mod()
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=48, num_seeds=2, seed=5,
                                        max_work_ratio=max_work_ratio)
    ctx = make_context(mod, target, strategy)
    ctx.pre_tuning(96, 16, ctx.generate_design_space(), None, None)
    guard, check = strategy._state.guard, RecomputeGuard(mod)
    ratios = []
    while (cands := ctx.generate_measure_candidates()) is not None:
        ratios += [check.ratio(c.sch.mod) for c in cands]
        ctx.notify_runner_results(cands, recorded_run_times(cands))
    ctx.post_tuning()
    return ratios, guard


def test_guard_ratio_of_the_workload_itself_is_one_and_none_switches_it_off():
    mod = softmax_mod()
    guard = RecomputeGuard(mod, max_ratio=1.0)
    assert guard.ratio(mod) == 1.0
    assert not guard.excessive(mod) and guard.skipped == 0
    assert not RecomputeGuard(mod, max_ratio=None).active


def test_guard_is_off_for_a_workload_without_floating_point_work():
    a = te.placeholder((16, 16), name="A")
    copy = te.compute((16, 16), lambda i, j: a[j, i], name="T")
    guard = RecomputeGuard(tvm.IRModule({"main": te.create_prim_func([a, copy])}), max_ratio=1.0)
    assert guard.base == 0 and not guard.active


def test_strategy_never_hands_out_a_schedule_above_the_bound(target):
    unguarded, _ = _measured_ratios(None, target)
    assert max(unguarded) > BOUND, "the run without a guard met nothing to refuse: the test shows nothing"
    logger, handler = logging.getLogger("tvm.s_tir.meta_schedule.droplet"), _Messages()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        guarded, guard = _measured_ratios(BOUND, target)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert max(guarded) <= BOUND
    assert guard.skipped > 0
    assert len(guarded) >= len(unguarded) * 0.9, "refusals should be replaced, not cost the budget"
    assert any(m.endswith(f"not measured, estimated above 10 times the workload's work: {guard.skipped} schedule(s)")
               for m in handler.messages)
