"""Exploration: where the schedules a descent starts from come from.

Two sources, one interface (``propose(n, wanted)``, ``notify(results)``, ``close()``):
random replay of the design spaces, and MetaSchedule's own evolutionary search driven from
inside. :class:`Exploration` spends a budget of trials on one source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel
from tvm.s_tir.meta_schedule.search_strategy import EvolutionarySearch
from tvm.s_tir.schedule import Trace

from .candidates import Pending, Proposal
from .trace import base_trace, module_key, replay

if TYPE_CHECKING:
    from tvm.s_tir.meta_schedule import TuneContext

SOURCES = ("auto", "evolutionary", "replay")
# MetaSchedule's xgb cost model scores at random until it has trained on this many results
# (XGBModel.num_warmup_samples): a shorter evolutionary exploration is ranked by noise, costs
# ~30x replay's CPU per candidate, and measured no better (bench/, N=100), so "auto" replays.
COST_MODEL_WARMUP = 100
# Exploration rounds in a row that yield nothing new before exploration is declared exhausted.
MAX_EMPTY_ROUNDS = 3

# (key, keys taken in this batch, the candidate's module) -> worth measuring: not measured before,
# not taken, and not refused by the recompute guard (:mod:`.recompute`)
Wanted = Callable[[int, set[int], IRModule], bool]


def model_ranks(cost_model, seen: int) -> bool:
    """Whether ``cost_model`` ranks by what it learnt: there is one and it has seen ``seen``
    results, at least its warm-up."""
    return cost_model is not None and seen >= COST_MODEL_WARMUP


def resolve_source(source: str, database, cost_model, ranked_after: int) -> str:
    """``"auto"``: evolutionary search when it can rank by a trained cost model, else replay.

    ``ranked_after`` is the number of results the cost model will have seen by the end of the
    exploration (or has seen, for an exploration that starts late).
    """
    if source == "auto":
        ranked = database is not None and model_ranks(cost_model, ranked_after)
        source = "evolutionary" if ranked else "replay"
    if source == "evolutionary" and (database is None or cost_model is None):
        raise ValueError(
            "DropletSearch: explore='evolutionary' needs a database and a cost model, "
            f"got database={database!r}, cost_model={cost_model!r}"
        )
    return source


class ReplayExplorer:
    """Random replay of the design spaces: every decision sampled afresh."""

    def __init__(self, mod, design_traces: list[Trace], postprocs, new_seed: Callable[[], int],
                 rng_index: Callable[[int], int], max_fail_count: int) -> None:
        self.mod = mod
        self.design_traces = design_traces
        self.postprocs = postprocs
        self.new_seed = new_seed
        self.rng_index = rng_index
        self.max_fail_count = max_fail_count

    def propose(self, n: int, wanted: Wanted) -> list[Proposal]:
        picked: list[Proposal] = []
        taken: set[int] = set()
        for _ in range(n * self.max_fail_count):
            if len(picked) == n:
                break
            design = self.design_traces[self.rng_index(len(self.design_traces))]
            sch = replay(self.mod, Trace(design.insts, {}), self.postprocs, self.new_seed())
            if sch is None:
                continue
            key = module_key(sch.mod)
            if wanted(key, taken, sch.mod):
                taken.add(key)
                picked.append((sch, Pending(key, base_trace(sch.trace))))
        return picked

    def notify(self, results) -> None:
        pass

    def close(self) -> None:
        pass


class _EarlyRanked(PyCostModel):
    """What the exploration's evolutionary search ranks by: the run's cost model once it ranks
    (``ranks()``: past its warm-up), before that ``early``, a model of the task's own that has
    trained on the exploration's results (:class:`EvolutionaryExplorer`). Only ``predict`` is
    asked of it: the search never trains the model it is given."""

    def __init__(self, shared, early, ranks: Callable[[], bool]) -> None:
        self.shared, self.early, self.ranks = shared, early, ranks

    def predict(self, context, candidates):
        return (self.shared if self.ranks() else self.early).predict(context, candidates)


EarlyRanked = derived_object(_EarlyRanked)


def early_model(after: int, num_threads: int):
    """MetaSchedule's xgb cost model ranking after ``after`` results instead of its 100."""
    try:
        import xgboost  # noqa: F401  (TVM's XGBModel imports it only once it trains)
    except ImportError as err:
        raise ValueError(f"DropletSearch: early_model={after!r} trains an xgb model, but {err}") from err
    from tvm.s_tir.meta_schedule.cost_model import XGBModel

    return XGBModel(num_warmup_samples=after, num_tuning_cores=num_threads)


class EvolutionaryExplorer:
    """MetaSchedule's ``EvolutionarySearch`` driven from inside; schedules not wanted are dropped.

    With ``early`` (a cost model) and ``ranks`` (whether the run's cost model ranks yet), the search
    ranks by ``early`` until the run's model does, and ``early`` trains on every batch measured
    until then.
    """

    def __init__(self, context: TuneContext, trials: int, batch: int, design_spaces, database, cost_model,
                 early=None, ranks: Callable[[], bool] | None = None) -> None:
        self.context = context
        self.early = early if early is not None and ranks is not None and not ranks() else None
        self.ranks = ranks
        if self.early is not None:
            cost_model = EarlyRanked(cost_model, self.early, ranks)
        self.inner = EvolutionarySearch()
        self.inner._initialize_with_tune_context(context)
        self.inner.pre_tuning(trials, batch, design_spaces, database, cost_model)
        self.kept: list = []  # what the inner strategy proposed and we kept, for its notify

    def propose(self, n: int, wanted: Wanted) -> list[Proposal] | None:
        candidates = self.inner.generate_measure_candidates()
        if candidates is None:
            return None
        picked, kept, taken = [], [], set()
        for cand in candidates:
            key = module_key(cand.sch.mod)
            if len(picked) < n and wanted(key, taken, cand.sch.mod):
                taken.add(key)
                kept.append(cand)
                picked.append((cand.sch, Pending(key, base_trace(cand.sch.trace))))
        self.kept = kept
        if not picked:
            self.inner.notify_runner_results([], [])
        return picked

    def notify(self, results) -> None:
        self.inner.notify_runner_results(self.kept, results)
        if self.early is not None:
            if self.ranks():
                self.early = None  # the run's model ranks from now on: stop training this one
            else:
                self.early.update(self.context, self.kept, results)

    def close(self) -> None:
        self.early = None
        if self.inner is not None:
            self.inner.post_tuning()
            self.inner = None


class Exploration:
    """A budget of exploration trials spent on one source."""

    def __init__(self, source: str, explorer: ReplayExplorer | EvolutionaryExplorer, trials: int) -> None:
        self.source = source
        self.explorer = explorer
        self.left = trials
        self.empty_rounds = 0

    @property
    def active(self) -> bool:
        return self.left > 0

    def propose(self, n: int, wanted: Wanted) -> list[Proposal] | None:
        """Up to ``n`` new candidates; ``None`` when the exploration is over (spent, exhausted or dry)."""
        while self.left > 0:
            picked = self.explorer.propose(min(n, self.left), wanted)
            if picked is None:
                break
            if picked:
                self.empty_rounds = 0
                return picked
            self.empty_rounds += 1
            if self.empty_rounds >= MAX_EMPTY_ROUNDS:
                break
        self.close()
        return None

    def set_aside(self, trials: int) -> None:
        """Give ``trials`` of its budget to candidates it does not propose (the workload as written)."""
        self.left = max(0, self.left - trials)

    def notify(self, results) -> None:
        """Results of the batch it proposed last (none: the batch held only others' candidates)."""
        if results:
            self.explorer.notify(results)
        self.left = max(0, self.left - len(results))
        if self.left == 0:
            self.close()

    def close(self) -> None:
        self.left = 0
        self.explorer.close()
