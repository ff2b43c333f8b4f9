"""Schedules that recompute far more than the workload needs are never measured.

A compute location inside a long loop makes a block redo its whole work on every iteration of
that loop: on SFM-1 (softmax, 512x512) a row maximum or sum placed under the loop over a row's
elements makes the schedule do about 65,000 times the workload's floating-point operations.
Such a schedule cannot be fast; measured, it runs into the runner's timeout (30 s of the tuning
run's wall for one useless trial). MetaSchedule's own estimate of the work
(``estimate_tir_flops``, which multiplies each block's operations by the loops around it) shows
it before anything is built.

The bound is wide on purpose. The estimate counts what the TIR says, not what LLVM leaves of it
after hoisting loop-invariant code: SFM-1's fastest kernel in one run estimated 139 times the
workload's work. Over the 2,100 SFM-1 schedules of seven runs on the bench (``bench/work_ratio.py``,
docs/benchmarks.md), those within 1.1x of the fastest estimated at most 161 times; of the 15
above 1000 times, 12 timed out in the runner and 3 ran at least 584 times slower than the
fastest. On the other five workloads every one of 18,500 schedules estimated exactly the
workload's work: there the guard never refuses anything.
"""

from __future__ import annotations

from tvm.ir import IRModule
from tvm.s_tir.analysis import estimate_tir_flops

from .trace import module_key

#: Default bound: a schedule estimated above this multiple of the workload's work is skipped.
MAX_WORK_RATIO = 1000.0


def estimated_work(mod: IRModule) -> float:
    """Floating-point operations of one run of ``mod`` as MetaSchedule estimates them; 0 if it cannot."""
    try:
        return float(estimate_tir_flops(mod))
    except Exception:  # an estimate is a hint: a module it cannot read is never skipped for it
        return 0.0


class RecomputeGuard:
    """Tells which schedules of one workload do more than ``max_ratio`` times its work.

    ``max_ratio=None`` switches the guard off, as does a workload without floating-point work
    (nothing to compare with).
    """

    def __init__(self, mod: IRModule, max_ratio: float | None = MAX_WORK_RATIO) -> None:
        self.max_ratio = max_ratio
        self.base = estimated_work(mod)
        self.refused: set[int] = set()  # keys of the schedules refused so far

    @property
    def skipped(self) -> int:
        """Distinct schedules refused so far (one drawn twice counts once)."""
        return len(self.refused)

    @property
    def active(self) -> bool:
        return self.max_ratio is not None and self.base > 0

    def ratio(self, mod: IRModule) -> float:
        """``mod``'s estimated work over the workload's."""
        return estimated_work(mod) / self.base if self.base > 0 else 0.0

    def excessive(self, mod: IRModule, key: int | None = None) -> bool:
        """Whether ``mod`` (a scheduled version of the workload) is over the bound; counts refusals
        by ``key`` (its :func:`~ms_droplet.trace.module_key`, computed if not given)."""
        if not self.active or self.ratio(mod) <= self.max_ratio:
            return False
        self.refused.add(module_key(mod) if key is None else key)
        return True
