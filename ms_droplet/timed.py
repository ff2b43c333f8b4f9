"""A search strategy wrapper that measures the CPU time spent inside any strategy."""

from __future__ import annotations

import time

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy, SearchStrategy


class _TimedStrategy(PySearchStrategy):
    """Delegates every call to ``inner`` and adds up the process CPU time of generate + notify.

    Builds and runs happen in worker processes, so the process CPU time spent in these two
    calls is the strategy's own cost (candidate generation, cost-model queries, bookkeeping).
    """

    def __init__(self, inner: SearchStrategy | str, clock: dict | None = None) -> None:
        self.inner = SearchStrategy.create(inner) if isinstance(inner, str) else inner
        self.clock = clock if clock is not None else {"cpu_s": 0.0, "candidates": 0}

    def _initialize_with_tune_context(self, context) -> None:
        self.inner._initialize_with_tune_context(context)

    def pre_tuning(self, max_trials, num_trials_per_iter, design_spaces, database=None, cost_model=None):
        self.inner.pre_tuning(max_trials, num_trials_per_iter, design_spaces, database, cost_model)

    def post_tuning(self) -> None:
        self.inner.post_tuning()

    def generate_measure_candidates(self):
        start = time.process_time()
        out = self.inner.generate_measure_candidates()
        self.clock["cpu_s"] += time.process_time() - start
        if out is not None:
            self.clock["candidates"] += len(out)
        return out

    def notify_runner_results(self, measure_candidates, results) -> None:
        start = time.process_time()
        self.inner.notify_runner_results(measure_candidates, results)
        self.clock["cpu_s"] += time.process_time() - start

    def clone(self):
        # the clock is shared with clones: tune_tir tunes the clone, not the instance it was given
        return TimedStrategy(self.inner.clone(), self.clock)


TimedStrategy = derived_object(_TimedStrategy)
