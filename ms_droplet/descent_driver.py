"""Descents over real schedules: the TVM side of :mod:`.descent`, one descent at a time.

A descent starts from the best measured schedule no descent has visited; its proposals are
replayed into schedules (aliases and failures are answered at once, schedules measured before
with their samples), the rest are measured. With ``paired``, the centre is re-timed in the same
batch as the control of its neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tvm.s_tir.schedule import Trace

from .candidates import Measured, Pending, Proposal
from .descent import Droplet
from .space import Point
from .stats import mean
from .trace import count_loops, module_key, read_point, read_space, replay, with_point

logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")

Samples = tuple[float, ...] | None


@dataclass
class Descent:
    droplet: Droplet
    trace: Trace  # base trace of the seed: the structure every point is replayed on
    known: dict[Point, Samples] = field(default_factory=dict)  # the batch in flight's answered points


class DescentDriver:
    """Runs descents one after another, from ever later seeds, up to ``num_seeds`` of them."""

    def __init__(self, mod, postprocs, task_name: str, *, p_value: float, min_gain: float, paired: bool,
                 num_seeds: int, new_seed: Callable[[], int],
                 rank: Callable[[list[Proposal]], list[Proposal]]) -> None:
        self.mod = mod
        self.postprocs = postprocs
        self.task_name = task_name
        self.p_value = p_value
        self.min_gain = min_gain
        self.paired = paired
        self.num_seeds = num_seeds
        self.new_seed = new_seed
        self.rank = rank
        self.descent: Descent | None = None
        self.descended: set[int] = set()  # keys of every schedule a descent started from or proposed
        self.seeds_used = 0

    def allow_one_more(self) -> None:
        """Permit one more descent even when ``num_seeds`` are used up (a refill of the budget)."""
        self.seeds_used = min(self.seeds_used, self.num_seeds - 1)

    def _start(self, measured: dict[int, Measured]) -> bool:
        if self.seeds_used >= self.num_seeds:
            return False
        ranked = sorted((mean(m.samples), key) for key, m in measured.items() if m.samples and key not in self.descended)
        for _, key in ranked:
            m = measured[key]
            self.descended.add(key)
            try:
                space, point = read_space(m.trace, count_loops(self.mod, m.trace))
                droplet = Droplet(space, point, m.samples, self.p_value, self.min_gain)
            except Exception as err:  # a seed that cannot be read is skipped, not fatal
                logger.warning("droplet: cannot descend from a seed (%s); trying the next", err)
                continue
            self.seeds_used += 1
            self.descent = Descent(droplet, m.trace)
            logger.info("droplet %s: descent %d from a seed at %.4g ms over %d sites",
                        self.task_name, self.seeds_used, droplet.best_time * 1e3, len(space.sites))
            return True
        return False

    def next_batch(self, n: int, measured: dict[int, Measured]) -> list[Proposal] | None:
        """Up to ``n`` candidates of the current descent (starting one if needed); ``None``: no descent left."""
        while True:
            if self.descent is None or self.descent.droplet.converged:
                if self.descent is not None:
                    droplet = self.descent.droplet
                    logger.info("droplet %s: descent %d converged at %.4g ms after %d accepted moves",
                                self.task_name, self.seeds_used, droplet.best_time * 1e3, len(droplet.accepted))
                self.descent = None
                if not self._start(measured):
                    return None
            descent = self.descent
            droplet = descent.droplet
            proposals = droplet.proposals()
            if not proposals:
                continue
            known, fresh = self._replay(descent, proposals, measured)
            # paired: one slot of the batch re-times the centre, the control of this batch's pairs
            control = self._control(descent) if self.paired and n >= 2 and fresh else None
            room = n - (control is not None)
            if len(fresh) > room:
                fresh = self.rank(fresh)[:room]
            if fresh:
                descent.known = known
                if control is None:
                    return fresh
                logger.info("droplet %s: re-timing the centre (%.4g ms) beside %d neighbours",
                            self.task_name, droplet.best_time * 1e3, len(fresh))
                return [*fresh, control]
            self.observe(known)

    def _replay(self, descent: Descent, proposals: list[Point],
                measured: dict[int, Measured]) -> tuple[dict[Point, Samples], list[Proposal]]:
        """Proposals as schedules: answered at once (alias, failure, known) or fresh to measure."""
        droplet = descent.droplet
        known: dict[Point, Samples] = {}
        fresh: list[Proposal] = []
        taken: set[int] = set()
        positions = [s.position for s in droplet.space.sites]
        for point in proposals:
            trace = with_point(descent.trace, droplet.space, point)
            sch = replay(self.mod, trace, self.postprocs, self.new_seed())
            # A compute location that is not valid replays as another one: an alias, not a point.
            if sch is None or read_point(sch.trace, positions) != point:
                known[point] = None
                continue
            key = module_key(sch.mod)
            self.descended.add(key)
            if key in measured:
                known[point] = measured[key].samples
            elif key in taken:
                known[point] = None
            else:
                taken.add(key)
                fresh.append((sch, Pending(key, trace, point)))
        return known, fresh

    def _control(self, descent: Descent) -> Proposal | None:
        """The centre's schedule, to be measured again beside its neighbours."""
        droplet = descent.droplet
        trace = with_point(descent.trace, droplet.space, droplet.center)
        sch = replay(self.mod, trace, self.postprocs, self.new_seed())
        if sch is None:  # replayed before, so not expected; the batch then goes without a control
            return None
        return sch, Pending(module_key(sch.mod), trace, control=True)

    def observe(self, results: dict[Point, Samples], control: Samples = None,
                beside_control: dict[Point, Samples] | None = None) -> None:
        if self.descent.droplet.observe(results, control, beside_control) is not None:
            logger.info("droplet %s: moved to %.4g ms", self.task_name, self.descent.droplet.best_time * 1e3)

    def notify(self, results: dict[Point, Samples], control: Samples) -> None:
        """Results of the batch it proposed last (only its own neighbours were timed beside the control)."""
        if self.descent is not None:
            self.observe({**self.descent.known, **results}, control, results)
