"""DropletSearch: the MetaSchedule search strategy (a thin adapter around :mod:`.descent`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.search_strategy import (
    EvolutionarySearch,
    MeasureCandidate,
    PySearchStrategy,
    SearchStrategy,
)
from tvm.s_tir.schedule import Trace

from .descent import Droplet
from .space import Point
from .stats import mean
from .trace import (
    base_trace,
    count_loops,
    module_key,
    read_point,
    read_space,
    replay,
    run_samples,
    with_point,
)

if TYPE_CHECKING:
    from tvm.s_tir.meta_schedule import TuneContext
    from tvm.s_tir.meta_schedule.cost_model import CostModel
    from tvm.s_tir.meta_schedule.database import Database
    from tvm.s_tir.meta_schedule.runner import RunnerResult
    from tvm.s_tir.schedule import Schedule

# A child of MetaSchedule's logger: droplet events land in its console and task_scheduler.log.
logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")

EXPLORE_SOURCES = ("auto", "evolutionary", "replay")
_MAX_SEED = 2**31 - 1
# Exploration rounds in a row that yield nothing new before exploration is declared exhausted.
_MAX_EMPTY_EXPLORE_ROUNDS = 3
# MetaSchedule's xgb cost model scores at random until it has trained on this many results
# (XGBModel.num_warmup_samples): a shorter evolutionary exploration is ranked by noise, costs
# ~30x replay's CPU per candidate, and measured no better (bench/, N=100), so "auto" replays.
_COST_MODEL_WARMUP = 100
# A/A on this package's bench (one schedule timed twice per interleaved batch, 5 rounds): the paired
# test alone accepted 7-8 copies in 100; with a 0.5% floor, 2.4; with 1%, none (docs/benchmarks.md).
PAIRED_MIN_GAIN = 0.005


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"DropletSearch: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"DropletSearch: {name} must be True or False, got {value!r}")
    return value


def _check_min_gain(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"DropletSearch: min_gain must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_fraction(name: str, value: Any, *, allow_zero: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value <= 1) or (value == 0 and not allow_zero):
        bound = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"DropletSearch: {name} must be a number in {bound}, got {value!r}")
    return float(value)


@dataclass
class _Measured:
    """A schedule measured in this run or found in the database."""

    trace: Trace  # base trace (post-processing stripped)
    samples: tuple[float, ...] | None  # run seconds; None when it failed


@dataclass
class _Pending:
    """A candidate handed out and not yet notified; index in the batch = index here."""

    key: int
    trace: Trace
    point: Point | None = None  # set for droplet candidates
    control: bool = False  # the descent's centre, re-timed beside its neighbours (paired=True)


@dataclass
class _Descent:
    droplet: Droplet
    trace: Trace  # base trace of the seed: the structure every point is replayed on
    known: dict[Point, tuple[float, ...] | None] = field(default_factory=dict)


class _TaskState:
    """Everything one ``pre_tuning`` .. ``post_tuning`` span owns."""

    def __init__(
        self,
        opts: dict[str, Any],
        context: TuneContext,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: list[Schedule],
        database: Database | None,
        cost_model: CostModel | None,
        seed: int,
    ) -> None:
        self.opts = opts
        self.context = context
        self.mod = context.mod
        self.postprocs = list(context.space_generator.postprocs or [])
        self.max_trials = max_trials
        self.batch = num_trials_per_iter
        self.cost_model = cost_model
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.measured: dict[int, _Measured] = {}
        self.pending: list[_Pending] = []
        self.exploring_batch = False  # what the batch in flight is: exploration or a descent's
        self.descent: _Descent | None = None
        self.descended: set[int] = set()
        self.seeds_used = 0
        self.empty_explore_rounds = 0
        self.design_traces = [sch.trace for sch in design_spaces]
        self.num_db_records = self._load_database(database)

        planned = min(opts["explore_trials"], int(opts["explore_fraction"] * max_trials))
        have = sum(1 for m in self.measured.values() if m.samples)
        self.explore_left = max(planned - have, 0 if have else 1)
        source = opts["explore"]
        if source == "auto":
            ranked = database is not None and cost_model is not None and self.explore_left >= _COST_MODEL_WARMUP
            source = "evolutionary" if ranked else "replay"
        if source == "evolutionary" and (database is None or cost_model is None):
            raise ValueError(
                "DropletSearch: explore='evolutionary' needs a database and a cost model, "
                f"got database={database!r}, cost_model={cost_model!r}"
            )
        self.explore_source = source
        self.design_spaces = design_spaces
        self.database = database
        self.inner: SearchStrategy | None = None
        self._inner_batch: list[MeasureCandidate] = []  # what the inner strategy proposed and we kept
        self.refills = 0
        self.fruitless_refills = 0
        self.sent_at_refill = -1
        self._start_explore(self.explore_left, source)
        logger.info(
            "droplet %s: budget %d, explore %d by %s, %d records already in the database",
            context.task_name, max_trials, self.explore_left, source, self.num_db_records,
        )

    def _start_explore(self, trials: int, source: str) -> None:
        self.explore_left = trials
        self.empty_explore_rounds = 0
        if source == "evolutionary" and trials > 0:
            self.inner = EvolutionarySearch()
            self.inner._initialize_with_tune_context(self.context)
            self.inner.pre_tuning(trials, self.batch, self.design_spaces, self.database, self.cost_model)

    def _refill(self) -> bool:
        """``spend_budget``: when the descents are done, explore one more batch and descend once more."""
        if not self.opts["spend_budget"] or self.sent >= self.max_trials:
            return False
        self.fruitless_refills = self.fruitless_refills + 1 if self.sent == self.sent_at_refill else 0
        if self.fruitless_refills >= _MAX_EMPTY_EXPLORE_ROUNDS:
            return False
        self.sent_at_refill = self.sent
        source = self.opts["explore"]
        if source == "auto":  # by now the cost model may have trained: rank with it if it has
            ranked = self.database is not None and self.cost_model is not None and self.sent >= _COST_MODEL_WARMUP
            source = "evolutionary" if ranked else "replay"
        self.refills += 1
        self.seeds_used = self.opts["num_seeds"] - 1  # one descent per refill, from the best unvisited schedule
        self._start_explore(min(self.batch, self.max_trials - self.sent), source)
        self.explore_source = source
        logger.info("droplet %s: descents done with %d trials left; exploring %d more by %s",
                    self.context.task_name, self.max_trials - self.sent, self.explore_left, source)
        return True

    # ---------------------------------------------------------------- database
    def _load_database(self, database: Database | None) -> int:
        """Replay this workload's records: they seed the descent and are never measured again."""
        if database is None:
            return 0
        workload = database.commit_workload(self.mod)
        count = skipped = 0
        for record in database.get_all_tuning_records():
            if not (record.workload.same_as(workload) or _same_module(record.workload.mod, self.mod)):
                continue
            count += 1
            trace = base_trace(record.trace)
            sch = replay(self.mod, trace, self.postprocs, seed=1)
            if sch is None:
                skipped += 1
                continue
            self.measured.setdefault(module_key(sch.mod), _Measured(trace, run_samples(record.run_secs)))
        if skipped:
            logger.warning("droplet: skipped %d database record(s) whose trace no longer replays", skipped)
        return count

    # ---------------------------------------------------------------- generate
    def generate(self) -> list[MeasureCandidate] | None:
        while self.sent < self.max_trials:
            n = min(self.batch, self.max_trials - self.sent)
            if self.explore_left > 0:
                picked = self._explore(min(n, self.explore_left))
                if picked is None:
                    self._end_explore()
                    continue
                if not picked:
                    self.empty_explore_rounds += 1
                    if self.empty_explore_rounds >= _MAX_EMPTY_EXPLORE_ROUNDS:
                        self._end_explore()
                    continue
                self.empty_explore_rounds = 0
                return self._send(picked, exploring=True)
            picked = self._exploit(n)
            if picked is None:
                if self._refill():
                    continue
                return None
            return self._send(picked, exploring=False)
        return None

    def _send(self, picked: list[tuple[Schedule, _Pending]], exploring: bool) -> list[MeasureCandidate]:
        self.pending = [p for _, p in picked]
        self.exploring_batch = exploring
        self.sent += len(picked)
        return [_candidate(sch) for sch, _ in picked]

    def _new_seed(self) -> int:
        return int(self.rng.integers(1, _MAX_SEED))

    def _is_new(self, key: int, taken: set[int]) -> bool:
        return key not in self.measured and key not in taken

    # ---------------------------------------------------------------- explore
    def _explore(self, n: int) -> list[tuple[Schedule, _Pending]] | None:
        if self.inner is not None:
            return self._explore_evolutionary()
        picked: list[tuple[Schedule, _Pending]] = []
        taken: set[int] = set()
        for _ in range(n * self.opts["max_fail_count"]):
            if len(picked) == n:
                break
            design = self.design_traces[int(self.rng.integers(len(self.design_traces)))]
            sch = replay(self.mod, Trace(design.insts, {}), self.postprocs, self._new_seed())
            if sch is None:
                continue
            key = module_key(sch.mod)
            if self._is_new(key, taken):
                taken.add(key)
                picked.append((sch, _Pending(key, base_trace(sch.trace))))
        return picked

    def _explore_evolutionary(self) -> list[tuple[Schedule, _Pending]] | None:
        candidates = self.inner.generate_measure_candidates()
        if candidates is None:
            return None
        picked, kept, taken = [], [], set()
        for cand in candidates:
            key = module_key(cand.sch.mod)
            if self._is_new(key, taken):
                taken.add(key)
                kept.append(cand)
                picked.append((cand.sch, _Pending(key, base_trace(cand.sch.trace))))
        self._inner_batch = kept
        if not picked:
            self.inner.notify_runner_results([], [])
        return picked

    def _end_explore(self) -> None:
        self.explore_left = 0
        if self.inner is not None:
            self.inner.post_tuning()
            self.inner = None

    # ---------------------------------------------------------------- exploit
    def _start_descent(self) -> bool:
        if self.seeds_used >= self.opts["num_seeds"]:
            return False
        ranked = sorted(
            ((mean(m.samples), key) for key, m in self.measured.items() if m.samples and key not in self.descended),
        )
        for _, key in ranked:
            m = self.measured[key]
            self.descended.add(key)
            try:
                space, point = read_space(m.trace, count_loops(self.mod, m.trace))
                droplet = Droplet(space, point, m.samples, self.opts["p_value"], self.opts["min_gain"])
            except Exception as err:  # a seed that cannot be read is skipped, not fatal
                logger.warning("droplet: cannot descend from a seed (%s); trying the next", err)
                continue
            self.seeds_used += 1
            self.descent = _Descent(droplet, m.trace)
            logger.info(
                "droplet %s: descent %d from a seed at %.4g ms over %d sites",
                self.context.task_name, self.seeds_used, droplet.best_time * 1e3, len(space.sites),
            )
            return True
        return False

    def _exploit(self, n: int) -> list[tuple[Schedule, _Pending]] | None:
        while True:
            if self.descent is None or self.descent.droplet.converged:
                if self.descent is not None:
                    logger.info(
                        "droplet %s: descent %d converged at %.4g ms after %d accepted moves",
                        self.context.task_name, self.seeds_used,
                        self.descent.droplet.best_time * 1e3, len(self.descent.droplet.accepted),
                    )
                self.descent = None
                if not self._start_descent():
                    return None
            descent = self.descent
            droplet = descent.droplet
            proposals = droplet.proposals()
            if not proposals:
                continue
            known: dict[Point, tuple[float, ...] | None] = {}
            fresh: list[tuple[Schedule, _Pending]] = []
            taken: set[int] = set()
            positions = [s.position for s in droplet.space.sites]
            for point in proposals:
                trace = with_point(descent.trace, droplet.space, point)
                sch = replay(self.mod, trace, self.postprocs, self._new_seed())
                # A compute location that is not valid replays as another one: an alias, not a point.
                if sch is None or read_point(sch.trace, positions) != point:
                    known[point] = None
                    continue
                key = module_key(sch.mod)
                self.descended.add(key)
                if key in self.measured:
                    known[point] = self.measured[key].samples
                elif key in taken:
                    known[point] = None
                else:
                    taken.add(key)
                    fresh.append((sch, _Pending(key, trace, point)))
            # paired: one slot of the batch re-times the centre, the control of this batch's pairs
            control = self._control(descent) if self.opts["paired"] and n >= 2 and fresh else None
            room = n - (control is not None)
            if len(fresh) > room:
                fresh = self._rank(fresh)[:room]
            if fresh:
                descent.known = known
                if control is None:
                    return fresh
                logger.info("droplet %s: re-timing the centre (%.4g ms) beside %d neighbours",
                            self.context.task_name, droplet.best_time * 1e3, len(fresh))
                return [*fresh, control]
            self._observe(known)

    def _control(self, descent: _Descent) -> tuple[Schedule, _Pending] | None:
        """The centre's schedule, to be measured again beside its neighbours."""
        droplet = descent.droplet
        trace = with_point(descent.trace, droplet.space, droplet.center)
        sch = replay(self.mod, trace, self.postprocs, self._new_seed())
        if sch is None:  # replayed before, so not expected; the batch then goes without a control
            return None
        return sch, _Pending(module_key(sch.mod), trace, control=True)

    def _rank(self, fresh: list[tuple[Schedule, _Pending]]) -> list[tuple[Schedule, _Pending]]:
        """Best predicted first by the cost model; without one, a seeded shuffle."""
        if self.cost_model is None:
            order = self.rng.permutation(len(fresh))
        else:
            cands = [_candidate(sch) for sch, _ in fresh]
            scores = np.asarray(self.cost_model.predict(self.context, cands), dtype=float)
            order = np.argsort(-scores, kind="stable")
        return [fresh[i] for i in order]

    def _observe(
        self,
        results: dict[Point, tuple[float, ...] | None],
        control: tuple[float, ...] | None = None,
        beside_control: dict[Point, tuple[float, ...] | None] | None = None,
    ) -> None:
        if self.descent.droplet.observe(results, control, beside_control) is not None:
            logger.info(
                "droplet %s: moved to %.4g ms", self.context.task_name, self.descent.droplet.best_time * 1e3
            )

    # ---------------------------------------------------------------- notify
    def notify(self, candidates: list[MeasureCandidate], results: list[RunnerResult]) -> None:
        if len(results) != len(self.pending) or len(candidates) != len(self.pending):
            raise ValueError(
                f"DropletSearch: {len(self.pending)} candidates were handed out but "
                f"{len(candidates)} candidates and {len(results)} results came back"
            )
        droplet_results: dict[Point, tuple[float, ...] | None] = {}
        control: tuple[float, ...] | None = None
        failed: list[str] = []
        for pending, result in zip(self.pending, results, strict=False):
            samples = None if result.error_msg else run_samples(result.run_secs)
            if pending.control:
                control = samples
            if samples is not None or not pending.control:  # a failed re-run keeps the centre's samples
                self.measured[pending.key] = _Measured(pending.trace, samples)
            if pending.point is not None:
                droplet_results[pending.point] = samples
            if samples is None:
                secs = [float(getattr(x, "value", x)) for x in (result.run_secs or [])]
                failed.append(result.error_msg or f"unusable run times {secs}")
        if failed:
            logger.warning(
                "droplet %s: %d of %d candidates failed and are never chosen; first: %s",
                self.context.task_name, len(failed), len(results), str(failed[0]).strip().splitlines()[0][:200],
            )
        if self.inner is not None and self.explore_left > 0:
            self.inner.notify_runner_results(self._inner_batch, results)
        if self.exploring_batch:
            self.explore_left = max(0, self.explore_left - len(self.pending))
            if self.explore_left == 0:
                self._end_explore()
        elif self.descent is not None:
            # Only this batch's neighbours were timed beside the control; known ones were not.
            self._observe({**self.descent.known, **droplet_results}, control, droplet_results)
        self.pending = []

    def close(self) -> None:
        self._end_explore()


def _candidate(sch: Schedule) -> MeasureCandidate:
    return MeasureCandidate(sch, ArgInfo.from_entry_func(sch.mod, remove_preproc=True))


def _same_module(a, b) -> bool:
    import tvm_ffi

    return bool(tvm_ffi.structural_equal(a, b))


class _DropletSearch(PySearchStrategy):
    """Droplet Search: a short exploration, then coordinate descent over the best schedules.

    Explore
        Up to ``explore_trials`` candidates (and never more than ``explore_fraction`` of the
        task's budget) drawn by MetaSchedule's own machinery: its evolutionary search with the
        cost model (``explore="evolutionary"``, as Ansor's first 300 trials in the published
        work), or plain replay of the design spaces with random decisions
        (``explore="replay"``). ``"auto"`` takes evolutionary search when ``pre_tuning``
        receives a database and a cost model and the exploration is at least 100 trials
        (xgb's warm-up: before that it scores at random), replay otherwise. Records already
        in the database count towards the exploration, so a resumed run goes straight on.
    Exploit
        Coordinate descent from the best measured schedule over its sampling decisions
        (perfect tiles, categorical choices such as unroll, compute locations): neighbours at
        radius ``r`` move one decision by ``r`` steps (see :mod:`ms_droplet.neighbourhood`).
        A neighbour is accepted when it is faster and, where both sides have two or more run
        samples, a one-sided Welch t-test gives ``p <= p_value``; with a single sample on
        either side the lower mean decides alone. With ``paired=True`` (for a runner that
        times a batch in interleaved rounds, :func:`ms_droplet.runners.interleaved_runner`)
        every descent batch also re-times the centre, and a neighbour is accepted on the
        per-round log-ratios against it: a one-sided paired t-test at ``p_value`` that it is
        faster by more than ``min_gain``. Acceptance resets the radius to 1, otherwise
        it grows by 1. When a batch cannot hold every neighbour, the cost model (if any) picks
        the most promising ones, else a seeded shuffle does.
    Converged
        When the radius passes the largest range of any decision, the descent restarts from
        the best measured schedule that no descent has visited yet, up to ``num_seeds``
        descents in all; then the strategy returns ``None`` and the task ends early, handing
        the remaining budget back to the task scheduler. Restarts are bounded because each
        later seed is worse than the first and a full descent costs many trials; ending
        early is the point of the method (good kernels much sooner).

    Every candidate is new to the database: schedules already recorded (this run or an
    earlier one on the same work dir) are never measured again, their stored times are reused.
    The one exception is the centre re-timed as the control of a paired batch: it takes one
    slot of the batch and counts towards the budget like any candidate.
    The same seed and the same measurements give the same candidates (with
    ``explore="evolutionary"`` that holds only for ``num_threads=1``, since MetaSchedule's
    evolutionary search samples in parallel threads).

    Parameters
    ----------
    explore_trials : int, default 300
        Most candidates measured in the exploration phase.
    explore_fraction : float in (0, 1], default 0.5
        Largest share of the task's ``max_trials`` given to exploration.
    explore : {"auto", "evolutionary", "replay"}, default "auto"
        How exploration candidates are drawn.
    p_value : float in (0, 1], default 0.05
        Significance level of the acceptance test.
    num_seeds : int >= 1, default 3
        Most descents (first seed plus restarts) before the strategy stops early.
    max_fail_count : int >= 1, default 64
        Replay attempts per wanted candidate during replay exploration.
    paired : bool, default False
        Re-time the centre in every descent batch and decide moves on per-round pairs; use it
        with a runner whose samples are taken in interleaved rounds.
    min_gain : float in [0, 1), default 0.005
        With ``paired``: the least relative gain a move must show, a noise floor (measured:
        without it 7-8 of 100 A/A comparisons were accepted at ``p_value=0.05``, with it 2.4).
    spend_budget : bool, default False
        Instead of ending early when the descents are done, explore one more batch (by
        evolutionary search once the cost model has trained on 100 results, else by replay) and
        descend once more from the best schedule no descent has visited, until ``max_trials``
        (or until three such rounds in a row find nothing new).
    seed : int or None, default None
        Seed of the strategy's own random choices; ``None`` derives it from the
        ``TuneContext``'s ``rand_state`` (``tune_tir(seed=...)``).
    """

    def __init__(
        self,
        *,
        explore_trials: int = 300,
        explore_fraction: float = 0.5,
        explore: str = "auto",
        p_value: float = 0.05,
        num_seeds: int = 3,
        max_fail_count: int = 64,
        paired: bool = False,
        min_gain: float = PAIRED_MIN_GAIN,
        spend_budget: bool = False,
        seed: int | None = None,
    ) -> None:
        if explore not in EXPLORE_SOURCES:
            raise ValueError(f"DropletSearch: explore must be one of {EXPLORE_SOURCES}, got {explore!r}")
        self._options = {
            "explore_trials": _check_int("explore_trials", explore_trials, 0),
            "explore_fraction": _check_fraction("explore_fraction", explore_fraction, allow_zero=False),
            "explore": explore,
            "p_value": _check_fraction("p_value", p_value, allow_zero=False),
            "num_seeds": _check_int("num_seeds", num_seeds, 1),
            "max_fail_count": _check_int("max_fail_count", max_fail_count, 1),
            "paired": _check_bool("paired", paired),
            "min_gain": _check_min_gain(min_gain),
            "spend_budget": _check_bool("spend_budget", spend_budget),
            "seed": None if seed is None else _check_int("seed", seed, 0),
        }
        self._context: TuneContext | None = None
        self._state: _TaskState | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The constructor arguments, as validated."""
        return dict(self._options)

    def _initialize_with_tune_context(self, context: TuneContext) -> None:
        self._context = context

    def pre_tuning(
        self,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: list[Schedule],
        database: Database | None = None,
        cost_model: CostModel | None = None,
    ) -> None:
        if self._context is None:
            raise ValueError("DropletSearch: pre_tuning called before the TuneContext initialised it")
        if self._state is not None:
            raise ValueError("DropletSearch: pre_tuning called twice without post_tuning")
        if not design_spaces:
            raise ValueError("DropletSearch: pre_tuning needs at least one design space")
        seed = self._options["seed"]
        if seed is None:
            seed = int(self._context.rand_state) % _MAX_SEED
        self._state = _TaskState(
            self._options, self._context, int(max_trials), int(num_trials_per_iter),
            list(design_spaces), database, cost_model, seed,
        )

    def post_tuning(self) -> None:
        if self._state is not None:
            self._state.close()
        self._state = None

    def generate_measure_candidates(self) -> list[MeasureCandidate] | None:
        if self._state is None:
            raise ValueError("DropletSearch: generate_measure_candidates called before pre_tuning")
        return self._state.generate()

    def notify_runner_results(self, measure_candidates: list[MeasureCandidate], results: list[RunnerResult]) -> None:
        if self._state is None:
            raise ValueError("DropletSearch: notify_runner_results called before pre_tuning")
        self._state.notify(list(measure_candidates), list(results))

    def clone(self) -> SearchStrategy:
        return DropletSearch(**self._options)


DropletSearch = derived_object(_DropletSearch)
DropletSearch.__doc__ = _DropletSearch.__doc__
