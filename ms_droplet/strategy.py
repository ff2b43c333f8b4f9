"""DropletSearch: the MetaSchedule search strategy (a thin adapter around :mod:`.descent`)."""

from __future__ import annotations

import logging
from functools import partial
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate, PySearchStrategy, SearchStrategy

from . import checks
from .candidates import Measured, Pending, Proposal, load_database, measure_candidate
from .descent_driver import DescentDriver
from .explore import (
    MAX_EMPTY_ROUNDS,
    SOURCES,
    EvolutionaryExplorer,
    Exploration,
    ReplayExplorer,
    early_model,
    model_ranks,
    resolve_source,
)
from .recompute import MAX_WORK_RATIO, RecomputeGuard
from .space import Point
from .stats import is_faster, mean
from .task_share import Group, Groups, share
from .trace import module_key, replay, run_samples, unscheduled_trace

if TYPE_CHECKING:
    from tvm.s_tir.meta_schedule import TuneContext
    from tvm.s_tir.meta_schedule.cost_model import CostModel
    from tvm.s_tir.meta_schedule.database import Database
    from tvm.s_tir.meta_schedule.runner import RunnerResult
    from tvm.s_tir.schedule import Schedule

# A child of MetaSchedule's logger: droplet events land in its console and task_scheduler.log.
logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")

EXPLORE_SOURCES = SOURCES
#: When a descent batch measures a one-site move before the moves of several sites holding it.
SINGLES_FIRST = ("never", "after_timeout", "always")
_MAX_SEED = 2**31 - 1
# A/A on this package's bench (one schedule timed twice per interleaved batch, 5 rounds): the paired
# test alone accepted 7-8 copies in 100; with a 0.5% floor, 2.4; with 1%, none (docs/benchmarks.md).
PAIRED_MIN_GAIN = 0.005
# The strategies of the run being set up (every task's pre_tuning comes before any task's first batch).
_RUNS = Groups()
_OWNER = "DropletSearch"
#: ``serial_move="auto"``: a centre faster than this (seconds) looks for kernels without a parallel
#: loop. Launching the thread pool costs microseconds (ONNX CNN, Zen 5: one convolution 6-7 us with
#: a parallel loop, 0.6-1.4 us without), so a parallel loop pays only on kernels a few times that
#: long; no kernel of the bench's six workloads ran under 26 us.
SERIAL_BELOW = 20e-6
_BELOW = {False: None, "auto": SERIAL_BELOW, True: float("inf")}
#: ``unscheduled="auto"``: a workload estimated at most this many floating-point operations
#: (``estimate_tir_flops``; none for a transpose) is measured as written in its first batch. Every
#: task of the ONNX CNN and the transformer is under it (at most 115,000); the CNN's convolutions,
#: whose plain loops ran 52-77 us against 7-9 us tuned, are over it (950,000 and more).
UNSCHEDULED_FLOPS = 250_000


def _run_key(database: Database | None, cost_model: CostModel | None) -> tuple[int | None, int | None]:
    """What the tasks of one run share: its database and cost model (by handle: each call from
    C++ wraps them in a new Python object)."""
    return tuple(None if x is None else x.__chandle__() for x in (database, cost_model))


def _check_every(value: Any) -> int:
    """0 (off) or an integer >= 2: exploring every batch (1) would never descend."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0 or value == 1:
        raise ValueError(f"{_OWNER}: explore_every must be 0 or an integer >= 2, got {value!r}")
    return int(value)


def _check_trust(value: Any, cut: Any) -> float | None:
    """A rank correlation in [-1, 1] or None; it gates ``model_cut``, so it needs one."""
    trust = checks.number(_OWNER, "model_cut_trust", value, low=-1, high=1, optional=True)
    if trust is not None and cut is None:
        raise ValueError(f"{_OWNER}: model_cut_trust={value!r} gates model_cut, which is None; set model_cut too")
    return trust


class _TaskState:
    """One ``pre_tuning`` .. ``post_tuning`` span: the plan that decides what each batch holds.

    Exploration first (:mod:`.explore`), then descents (:mod:`.descent_driver`); with
    ``explore_every``, every so many batches after the exploration explore again (one
    exploration, continued), and a descent gives way to a faster schedule found so; with
    ``explore_rest`` (or ``explore_every``), that exploration spends what the descents leave; with
    ``spend_budget``, another round of both whenever the descents are done and budget is left.
    It owns what every phase shares: the schedules measured, the batch in flight, the budget.
    """

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
        group: Group,
    ) -> None:
        self.opts = opts
        self.context = context
        self.mod = context.mod
        self.postprocs = list(context.space_generator.postprocs or [])
        self.max_trials = max_trials
        self.batch = num_trials_per_iter
        self.design_spaces = design_spaces
        self.database = database
        self.cost_model = cost_model
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.pending: list[Pending] = []
        self.side: Exploration | None = None  # explore_every: the exploration between descent batches
        self.aside = 0  # leading candidates of the batch in flight that its phase did not propose
        self.batch_kind = ""  # the batch in flight's: "explore", "side" (the exploration beside) or "descent"
        self.turns = 0  # batches sent since the first exploration ended
        self.measured, self.num_db_records = load_database(database, self.mod, self.postprocs)
        self.refills = 0
        self.fruitless_refills = 0
        self.sent_at_refill = -1
        self.guard = RecomputeGuard(self.mod, opts["max_work_ratio"])
        self.descents = DescentDriver(
            self.mod, self.postprocs, context.task_name, p_value=opts["p_value"], min_gain=opts["min_gain"],
            paired=opts["paired"], num_seeds=opts["num_seeds"], new_seed=self._new_seed, rank=self._rank,
            per_batch=opts["descents_per_batch"], diverse_seeds=opts["diverse_seeds"],
            two_site=partial(self._once_model_ranks, "two_site_moves"),
            avoid_timed_out_moves=opts["avoid_timed_out_moves"], singles_first=opts["singles_first"] == "always",
            fill=opts["fill_batch"], excessive=self.guard.excessive, donors=opts["donors"],
            serial_below=_BELOW[opts["serial_move"]], max_radius=opts["max_radius"],
            lookahead=partial(self._once_model_ranks, "lookahead"), predict=None if cost_model is None else self._predict,
            confirm=opts["confirm_moves"], sure_gain=opts["sure_gain"],
            cut=partial(self._once_model_ranks, "model_cut"), trust=opts["model_cut_trust"],
        )
        # the workload as written, measured once in the first batch (None: not, or done)
        small = opts["unscheduled"] is True or (opts["unscheduled"] == "auto" and self.guard.base <= UNSCHEDULED_FLOPS)
        self.unscheduled: Proposal | None = self._unscheduled() if small else None

        self.group = group
        resolve_source(opts["explore"], database, cost_model, 0)  # bad input fails at pre_tuning, not later
        # early_model: the first exploration's own cost model until the run's has warmed up
        self.early = None if opts["early_model"] is None else early_model(opts["early_model"], context.num_threads)
        self._exploration_planned: Exploration | None = None
        self.tasks = 1

    @property
    def exploration(self) -> Exploration:
        """The first exploration, planned at the first batch: only then is the run's number of
        tasks known (:mod:`.task_share`)."""
        if self._exploration_planned is None:
            self._exploration_planned = self._plan()
        return self._exploration_planned

    @exploration.setter
    def exploration(self, value: Exploration) -> None:
        self._exploration_planned = value

    def _plan(self) -> Exploration:
        tasks = self.group.close()  # the run's tasks are all set up by its first batch
        self.tasks = tasks if self.opts["split_budget"] else 1
        budget = share(self.max_trials, self.tasks)
        planned = min(self.opts["explore_trials"], int(self.opts["explore_fraction"] * budget))
        have = sum(1 for m in self.measured.values() if m.samples)
        trials = max(planned - have, 0 if have else 1)
        # the run's cost model: what it has seen (every task's results) and will have by the end
        source = resolve_source(self.opts["explore"], self.database, self.cost_model, self.group.results + trials)
        logger.info(
            "droplet %s: budget %d (%d per task of %d), explore %d by %s, %d records already in the database",
            self.context.task_name, self.max_trials, budget, self.tasks, trials, source, self.num_db_records,
        )
        return self._exploration(source, trials)

    @property
    def explore_source(self) -> str:
        return self.exploration.source

    @property
    def explore_left(self) -> int:
        return self.exploration.left

    def _exploration(self, source: str, trials: int) -> Exploration:
        if source == "evolutionary" and trials > 0:
            early, self.early = self.early, None  # the first evolutionary exploration's only
            explorer = EvolutionaryExplorer(self.context, trials, self.batch, self.design_spaces, self.database,
                                            self.cost_model, early=early, ranks=self._model_ranks)
        else:
            explorer = ReplayExplorer(self.mod, [sch.trace for sch in self.design_spaces], self.postprocs,
                                      self._new_seed, lambda k: int(self.rng.integers(k)), self.opts["max_fail_count"])
        return Exploration(source, explorer, trials)

    def _new_seed(self) -> int:
        return int(self.rng.integers(1, _MAX_SEED))

    def _wanted(self, key: int, taken: set[int], mod) -> bool:
        return key not in self.measured and key not in taken and not self.guard.excessive(mod, key)

    def _model_ranks(self) -> bool:
        """Whether the run's cost model ranks by what it learnt (every task's results count)."""
        return model_ranks(self.cost_model, self.group.results)

    def _once_model_ranks(self, option: str) -> Any:
        """``option`` (two-site moves, the walk's steps, the model's cut) once the cost model has
        trained, else 0: before (or without one) two-site moves would only crowd the descent's
        own one-site moves out of its batches, and a walk or a cut would follow noise. It is the
        run's: on a model it has trained on every task's results."""
        return self.opts[option] if self._model_ranks() else 0

    def _predict(self, schedules: list[Schedule]) -> np.ndarray:
        """The cost model's scores (higher: predicted faster)."""
        cands = [measure_candidate(sch) for sch in schedules]
        return np.asarray(self.cost_model.predict(self.context, cands), dtype=float)

    def _rank(self, fresh: list[Proposal]) -> list[Proposal]:
        """Best predicted first by the cost model; without one, a seeded shuffle."""
        if self.cost_model is None:
            order = self.rng.permutation(len(fresh))
        else:
            order = np.argsort(-self._predict([sch for sch, _ in fresh]), kind="stable")
        return [fresh[i] for i in order]

    # ---------------------------------------------------------------- the plan
    def generate(self) -> list[MeasureCandidate] | None:
        while self.sent < self.max_trials:
            n = min(self.batch, self.max_trials - self.sent)
            if self.exploration.active:
                # the plain workload is one of the exploration's trials, or beside its last one
                keep = 1 if self.unscheduled is not None and n >= 2 else 0
                self.exploration.set_aside(keep if self.exploration.left >= 2 else 0)
                picked = self.exploration.propose(n - keep, self._wanted)
                if picked is not None or keep:
                    return self._send(picked or [], "explore", n)
                continue
            every = self.opts["explore_every"]
            if every and (self.turns + 1) % every == 0 and (picked := self._explore_aside(n)) is not None:
                return picked
            # a smaller descent batch moves sooner; a radius is still screened n deep before it grows
            picked = self.descents.next_batch(min(n, self.opts["descent_batch"] or n), self.measured, depth=n)
            if picked is not None:
                return self._send(picked, "descent", n)
            # explore_every, explore_rest: with the descents done, the exploration spends the rest of the budget
            if (every or self.opts["explore_rest"]) and (picked := self._explore_aside(n)) is not None:
                return picked
            if not self._refill():
                return None
        return None

    def _explore_aside(self, n: int) -> list[MeasureCandidate] | None:
        """``explore_every``, ``explore_rest``: a batch of the exploration that goes on between or
        after the descents (``None`` once it is exhausted). It is made at its first batch, for the
        rest of the budget, so that it ranks with the cost model as trained by then."""
        if self.side is None:
            source = resolve_source(self.opts["explore"], self.database, self.cost_model, self.group.results)
            self.side = self._exploration(source, self.max_trials - self.sent)
            if self.opts["explore_every"]:
                logger.info("droplet %s: every %d batches from now on explore by %s", self.context.task_name,
                            self.opts["explore_every"], source)
            else:
                logger.info("droplet %s: descents done with %d trials left; exploring them by %s, descending "
                            "again from a faster find", self.context.task_name, self.max_trials - self.sent, source)
        picked = self.side.propose(n, self._wanted) if self.side.active else None
        return None if picked is None else self._send(picked, "side", n)

    def _unscheduled(self) -> Proposal | None:
        """The workload with no schedule but post-processing, unless it is measured already.

        Why: every design space of MetaSchedule's CPU rules asks for a parallel loop, and on a
        task of a few microseconds launching the thread pool costs more than the work. A task
        with one schedule (a transpose) or too few trials for a descent (the task scheduler
        moves on) is then left slower than the untuned build (transformer, Zen 5: each of three
        transposes 6 us tuned, about 1 us as written)."""
        trace = unscheduled_trace(self.mod)
        sch = replay(self.mod, trace, self.postprocs, 1)
        if sch is None or not self._wanted(key := module_key(sch.mod), set(), sch.mod):
            return None
        return sch, Pending(key, trace)

    def _send(self, picked: list[Proposal], kind: str, n: int) -> list[MeasureCandidate]:
        """Hand out a batch of ``kind``; the plain workload, while it waits, goes first if there is room."""
        self.aside = 0
        if self.unscheduled is not None and len(picked) < n:
            plain, self.unscheduled = self.unscheduled, None
            if plain[1].key not in {p.key for _, p in picked}:  # (a space without rules holds it too)
                picked, self.aside = [plain, *picked], 1
                logger.info("droplet %s: measuring the workload as written beside the %s batch",
                            self.context.task_name, kind)
        self.pending = [p for _, p in picked]
        self.batch_kind = kind
        if kind != "explore":
            self.turns += 1
        self.sent += len(picked)
        return [measure_candidate(sch) for sch, _ in picked]

    def _refill(self) -> bool:
        """``spend_budget``: when the descents are done, explore one more batch and descend once more."""
        if not self.opts["spend_budget"] or self.sent >= self.max_trials:
            return False
        self.fruitless_refills = self.fruitless_refills + 1 if self.sent == self.sent_at_refill else 0
        if self.fruitless_refills >= MAX_EMPTY_ROUNDS:
            return False
        self.sent_at_refill = self.sent
        # by now the cost model may have trained: rank with it if it has
        source = resolve_source(self.opts["explore"], self.database, self.cost_model, self.group.results)
        self.refills += 1
        self.descents.allow_one_more()  # one descent per refill, from the best unvisited schedule
        self.exploration = self._exploration(source, min(self.batch, self.max_trials - self.sent))
        logger.info("droplet %s: descents done with %d trials left; exploring %d more by %s",
                    self.context.task_name, self.max_trials - self.sent, self.explore_left, source)
        return True

    # ---------------------------------------------------------------- notify
    def notify(self, candidates: list[MeasureCandidate], results: list[RunnerResult]) -> None:
        if len(results) != len(self.pending) or len(candidates) != len(self.pending):
            raise ValueError(
                f"DropletSearch: {len(self.pending)} candidates were handed out but "
                f"{len(candidates)} candidates and {len(results)} results came back"
            )
        # a side batch's find is weighed against the descents' centre, or without one the best so far
        incumbent = (self.descents.centre_samples() or self._best_samples()) if self.batch_kind == "side" else None
        descent_results: dict[int, dict[Point, tuple[float, ...] | None]] = {}
        controls: dict[int, tuple[float, ...] | None] = {}
        timed_out: dict[int, list[Point]] = {}
        failed: list[str] = []
        saw_timeout = False
        self.group.results += len(results)
        for pending, result in zip(self.pending, results, strict=True):
            samples = None if result.error_msg else run_samples(result.run_secs)
            if pending.control:
                controls[pending.descent] = samples
            if samples is not None or not pending.control:  # a failed re-run keeps the centre's samples
                self.measured[pending.key] = Measured(pending.trace, samples)
            if pending.point is not None:
                descent_results.setdefault(pending.descent, {})[pending.point] = samples
            if samples is None:
                secs = [float(getattr(x, "value", x)) for x in (result.run_secs or [])]
                failed.append(result.error_msg or f"unusable run times {secs}")
                if "timeout" in str(result.error_msg).lower():
                    saw_timeout = True
                    if pending.point is not None:
                        timed_out.setdefault(pending.descent, []).append(pending.point)
        if saw_timeout and self.opts["singles_first"] == "after_timeout" and not self.descents.singles_first:
            self.descents.singles_first = True
            logger.info("droplet %s: a candidate timed out; from now on a descent batch measures a one-site move "
                        "before the moves of several sites that hold it", self.context.task_name)
        if failed:
            logger.warning(
                "droplet %s: %d of %d candidates failed and are never chosen; first: %s",
                self.context.task_name, len(failed), len(results), str(failed[0]).strip().splitlines()[0][:200],
            )
        own = results[self.aside:]  # the phase's own results
        if self.batch_kind == "side":
            self.side.notify(own)
            self._give_way_to(incumbent)
        elif self.batch_kind == "explore":
            self.exploration.notify(own)
        else:
            self.descents.notify(descent_results, controls, timed_out)
        self.pending = []

    def _best_samples(self) -> tuple[float, ...] | None:
        runs = [m.samples for m in self.measured.values() if m.samples]
        return min(runs, key=mean) if runs else None

    def _give_way_to(self, incumbent: tuple[float, ...] | None) -> None:
        """After a side exploration batch: if it found a schedule faster (``is_faster``) than the
        ``incumbent`` (the active descents' best centre or, with none active, the best before the
        batch), the descents give way and the next one starts from it."""
        found = [self.measured[p.key].samples for p in self.pending if self.measured[p.key].samples]
        if not found:
            return
        best = min(found, key=mean)
        if incumbent is None or is_faster(best, incumbent, self.opts["p_value"]):
            self.descents.give_way()

    def close(self) -> None:
        self.group.close()
        if self._exploration_planned is not None:
            self._exploration_planned.close()
        if self.side is not None:
            self.side.close()
        if self.guard.skipped:
            logger.info("droplet %s: not measured, estimated above %g times the workload's work: %d schedule(s)",
                        self.context.task_name, self.guard.max_ratio, self.guard.skipped)


class _DropletSearch(PySearchStrategy):
    """Droplet Search: a short exploration, then coordinate descent over the best schedules.

    Explore
        Up to ``explore_trials`` candidates (and never more than ``explore_fraction`` of the
        task's budget; in a run of several tasks, of its share: ``split_budget``) drawn by
        MetaSchedule's own machinery: its evolutionary search with the cost model
        (``explore="evolutionary"``, as Ansor's first 300 trials in the published work), or
        plain replay of the design spaces with random decisions (``explore="replay"``).
        ``"auto"`` takes evolutionary search when ``pre_tuning`` receives a database and a cost
        model that will have seen 100 results by the end of the exploration (xgb's warm-up:
        before that it scores at random; on a model, every task's results count), replay
        otherwise. Records already in the database count towards the exploration, so a
        resumed run goes straight on.
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
        descents in all (by default one). Then, by default (``explore_rest``), the exploration
        goes on for the rest of the budget, ranked by the cost model as trained by then, and a
        schedule it finds faster than the best so far starts another descent. With
        ``explore_rest=False`` the strategy returns ``None`` instead and the task ends early,
        handing the remaining budget back to the task scheduler (good kernels sooner); with
        ``spend_budget=True`` one more exploration batch and one more descent follow
        instead, until ``max_trials``.

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
    num_seeds : int >= 1, default 1
        Most descents from the exploration's best schedules (first seed plus restarts) before
        the exploration goes on (``explore_rest``) or the task ends early. Why one: each restart
        starts from a worse seed than the one before (with 3, of 18 runs on the bench's six
        workloads, Zen 3, 16 restarted and in 3 a restart ended faster than the first descent);
        the trials do more in the continued exploration (``explore_rest``). 3 before 2026-12-05.
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
        (or until three such rounds in a row find nothing new). With ``explore_rest`` (the
        default) the continued exploration spends the rest first: this acts only once it runs
        out of new schedules.
    explore_every : int, 0 or >= 2, default 0
        After the exploration, every ``explore_every``-th batch explores again (the same source,
        ranked by the cost model as trained by then; one exploration continued over the rest of
        the budget) instead of descending. When such a batch finds a schedule faster than the
        active descent's centre (the acceptance test at ``p_value``), the descent gives way
        and a new one starts from it (outside ``num_seeds``). Once the descents are done, the
        exploration spends the rest of the budget. Why: a descent walks the basin of its seed;
        evolutionary search keeps finding better basins after 150 trials (bench, C1D-0).
        ``0``: off. Measured at 2 on five workloads (five seeds): kernels 0.992 of the
        default's, SFM-1's wall per trial 1.03 of evolutionary search's (docs/benchmarks.md).
    explore_rest : bool, default True
        Once the ``num_seeds`` descents are done, explore for the rest of the budget instead of
        ending early (the same source, ranked by the cost model as trained by then; one
        exploration continued), and descend again, outside ``num_seeds``, from any schedule it
        finds faster than the best so far (the acceptance test at ``p_value``). With
        ``num_seeds=1`` it replaces the restarts from the exploration's next-best schedules by
        evolutionary search with a cost model that has seen 150 and more results, which in
        evolutionary@N's runs made some of the largest gains of trials 150-300 (of the former
        default's 18 runs, ``num_seeds=3`` without this, on the bench's six workloads, Zen 3,
        16 restarted and in 3 a restart ended faster than the first descent). Measured with
        ``num_seeds=1`` (spelt ``num_seeds=1, explore_every=1000``, the same below 1,000
        batches) on the six workloads (Zen 3, two threads, three seeds, two re-timings):
        kernels 0.944 and 0.968 of evolutionary search's, the former default's 0.988 and 1.025
        in the same compares (DEP-1 0.91 and 0.86 of the former default's, T2D-1 0.81 and 0.85,
        C1D-0 1.05 both times), wall per trial 0.73-0.91 of evolutionary search's. The task
        never ends early; on the built-in CNN model at 300 trials (three seeds, Zen 3) the
        tuned model ran 1.007x the former default's, in 0.99 of its wall. The default since
        2026-12-05, with ``num_seeds=1`` (docs/benchmarks.md); ``False`` keeps the early end
        and its hand-back of the budget.
    descents_per_batch : int >= 1, default 1
        Descents run at once, from the best schedules no descent has visited, sharing each batch
        in equal parts: each moves after its few best-ranked neighbours rather than a whole
        batch of them. A radius is still screened as deeply as a lone descent's batch would
        (over several batches) before it grows. ``num_seeds`` counts them all.
    diverse_seeds : bool, default False
        A descent starts from the fastest unvisited schedule of a design space that fewer
        descents hold (running ones first, then all) if it is at most 1.2 times the fastest
        unvisited schedule's time, else from the fastest. Why: a descent moves within its seed's
        design space, and after the exploration the best of two spaces are often close while
        only one holds the faster basin (bench, C1D-0). With ``descents_per_batch=2`` the two
        spaces are descended side by side; measured so on three workloads (five seeds):
        kernels 1.000 of the default's; alone on C1D-0, 1.056. With ``num_seeds=2`` on the
        current default, six workloads, three seeds: 1.006 (C1D-0 0.967; docs/benchmarks.md).
    descent_batch : int >= 1 or None, default None
        Most candidates in a descent batch (``None``: the task's ``num_trials_per_iter``). A
        smaller batch measures only the cost model's best-ranked few neighbours and moves as soon
        as one of them is faster (first improvement), so a descent makes more moves per trial;
        a radius is still screened ``num_trials_per_iter`` deep, over several batches, before
        it grows. Exploration batches keep ``num_trials_per_iter``. Measured at 8 (three
        workloads, three seeds): 1.5 times the accepted moves, kernels 1.01 times the
        default's (docs/benchmarks.md); off by default.
    max_radius : int >= 1 or None, default None
        A descent converges once no radius up to this one holds a faster point (``None``: it
        grows the radius until every site's neighbours run out). Why: on the bench's six
        workloads (Zen 5, 18 runs of 300 trials) every converged descent spent 38-71 trials
        after its last move (or its start) finding nothing, 12 descents in 9 runs made no move
        at all, and 30 of the 35 accepted moves came from the first 32 trials after the
        descent's start or last move, at radius 1. With ``1`` those trials go to descents
        from further seeds (raise ``num_seeds`` to spend them). Measured at 1 with
        ``num_seeds=10`` (five workloads, three seeds): more descents and moves, kernels 1.035x
        the default's (DEP-1 1.17x), so off (docs/benchmarks.md).
    lookahead : int >= 0, default 0
        From each centre, once the cost model has seen 100 results, walk up to this many steps
        on its predictions alone, each to the best-predicted radius-1 neighbour (one- and
        two-site moves) of the step before, while the prediction improves; radius 1 also offers
        the walk's points, ranked with the rest. A measured point that beats the centre is a
        move however far it is. Why: most descents converge after 0-2 moves, each move costs a
        batch, and predicting costs milliseconds. Measured at 4 (six workloads, three seeds):
        kernels 1.000x the default's; most walks stopped after one step and no accepted move
        changed more than two sites, so off (docs/benchmarks.md).
    confirm_moves : {True, False, "retime", "both"}, default True
        A descent's best point faster than its centre is measured again (a new build and load,
        alone in the descent's next batch) and the descent moves there only if the new samples
        beat the centre too, with them as the centre's time. Why: a candidate's samples are
        taken back to back in one process, one draw of memory placement, which the acceptance
        test cannot see; on DEP-1, whose kernels vary most between processes, the old default's
        tuning-time best re-timed 1.04-1.18x slower in three compares, evolutionary search's
        0.95-1.09x (docs/benchmarks.md). The database keeps the first measurement too.
        Measured on the six workloads (three seeds, two re-timings): kernels 0.961x and 0.975x
        those of ``False`` (13 of 18 same-seed pairs faster; DEP-1 and SFM-1 0.90-0.98x,
        GMM-2 1.02-1.03x), so the default since 2026-12-04. ``"retime"``: the descent moves at
        once, and its seed and every point it moves to are measured again so, those samples then
        the centre's time: a centre is chosen because its measurement was the fastest, so that
        measurement is lucky (the winner's curse), and a neighbour is judged against it.
        Measured on the six workloads (three seeds, two re-timings): kernels 0.918x and 0.912x
        evolutionary search's (``True``: 0.957x and 0.936x), all of it from T2D-1 (0.67-0.69x);
        C1D-0, DEP-1 and SFM-1 3-6% slower than with ``True`` (over five seeds C1D-0 1.057x and
        SFM-1 1.050x, slower in every seed; T2D-1 0.814x); so not the default. ``"both"``:
        moves confirmed as with ``True``, and each descent's seed measured again so first (its
        time the new samples): a centre reached by a confirmed move is already timed by its
        second measurement, the seed is the one lucky draw ``True`` keeps. Measured on the six
        workloads (three seeds, two re-timings): kernels 1.015x and 1.034x ``True``'s (8 and 7
        of 18 same-seed pairs faster), the seeds' second times 0.96-1.06x their first; so not
        the default.
    sure_gain : float in (0, 1) or None, default 0.1
        With ``confirm_moves`` ``True`` or ``"both"``: a faster point whose first measurement
        is at least this fraction faster than its centre is moved to at once, and measured
        again as the new centre (as with ``"retime"``); smaller gains are confirmed first.
        (With ``False`` or ``"retime"`` every move is made at once: no effect.) Why: re-timed
        in fresh processes, points first measured 10% or more faster than their centre were
        faster in 25 of 36 decisions (0.90x), and ``True`` refused two such points on T2D-1,
        where retime's moves won 0.81x; small gains are where retime lost (C1D-0, SFM-1).
        Measured on the six workloads (three seeds, two re-timings): kernels 0.955x and 0.949x
        those of ``None`` (11 and 12 of 18 same-seed pairs faster; T2D-1 0.77x and 0.74x, every
        other workload 0.97-1.01x), 0.893x and 0.887x evolutionary search's; with five seeds
        on four of them (a third compare) T2D-1 0.80x ``None``'s and the six 0.900x evolutionary
        search's (all on Zen 5). So the default since 2026-12-04 (docs/benchmarks.md). On an
        Intel Xeon (Rocket Lake, three seeds) the same rules gave 0.980x evolutionary search's,
        no better than the rules of 26 November (0.983x). ``None``: every move is confirmed.
    fill_batch : int >= 1, default 1
        A descent batch that would hold fewer than this many neighbours of the current radius
        (late in a descent, radii hold a few) also takes the next radii's, nearest first, up to
        this many (and the batch's room); the best faster point of any of them is accepted.
        Why: every batch costs seconds of builder and runner start-up whatever its size (on
        Zen 5 a batch of one candidate took 3-4 s, 0.8-1 s per candidate in full batches), and
        droplet runs spent 10-85 s in batches of under 8. ``1``: one radius per batch. Measured
        at 8 (SFM-1, DEP-1, three seeds): SFM-1's wall per trial 0.84x evolutionary search's
        (droplet@N's 1.09x), but its kernels 1.07x (droplet@N's 0.93x); off by default.
    two_site_moves : int >= 0, default 64
        Moves of two decisions at once (radius 1 each), up to this many sampled at random, added
        to each radius-1 neighbourhood: the cost model ranks them with the one-site moves, and
        the batch takes the best-ranked. Only in descents that start once the cost model has
        seen 100 results (xgb's warm-up; on a model, all tasks' results: they share it):
        unranked, they crowd the one-site moves out of a batch (on the synthetic landscape a
        descent then stops short of the optimum).
        ``0`` keeps to one-site moves. 64 is the default because on the bench's six
        workloads (three seeds) it beat 0 on every target of issue 13 but one
        (evolutionary@10N on GMM-2; docs/benchmarks.md).
    model_cut : float in (0, 1) or None, default None
        A descent does not measure a neighbour the cost model scores below this fraction of its
        centre's score (xgb scores relative throughput: 0.5 skips what it predicts at least twice
        as slow), once the model has seen 100 results; such a neighbour counts as not faster, and
        the radius grows without spending trials on it. Serial moves are always measured.
        Why: on two threads (Xeon, GMM-2, C2D-1, DEP-1) 27-53% of droplet's descent trials ran
        1.5 times slower than the best so far or worse, evolutionary search's 8-28%; at large
        radii a site's few far moves are all measured whatever the model thinks of them.
        Measured at 0.5 on the six workloads (two threads, three seeds): kernels 1.013x
        evolutionary search's, the default's 1.003x (GMM-2 0.95x against 1.04x, T2D-1 1.13x
        against 0.89x); off by default (docs/benchmarks.md).
        ``None``: every neighbour is measured.
    model_cut_trust : float in [-1, 1] or None, default None
        With ``model_cut``: the cut acts only once 32 measured neighbours of the task's descents
        have been scored, and only while their scores and times agree with at least this rank
        correlation (Spearman within each descent's batch, averaged weighted by size; both
        relative to the centre's). ``None``: the cut always acts.
        Why: the cut won where the model ranked neighbours well (GMM-2, DEP-1) and lost T2D-1,
        where its scores of a run's descent trials correlated with their times at -0.01 to 0.24
        (GMM-2, C2D-1, DEP-1: 0.29-0.71; offline over 12 runs, ``bench/model_screen.py``).
        Measured at 0.4 with ``model_cut=0.5`` on the six workloads (two threads, three seeds):
        1.001x evolutionary search, the ungated cut 1.004x, the default 0.992x in the same
        compare (T2D-1 0.94x, the ungated cut's 1.04x); off (docs/benchmarks.md).
    early_model : int >= 1 or None, default None
        The first exploration by evolutionary search ranks its candidates by a cost model of its
        own (MetaSchedule's xgb, trained on this task's exploration results) once that has seen
        this many results, until the run's cost model has seen 100 (xgb's warm-up, before which
        it scores at random; on a model, every task's results count). Why: the first 100 trials
        of an evolutionary exploration are otherwise picked at random from its population; xgb
        trained on a run's first 32 records ranked its records 32-100 with a rank correlation of
        0.28-0.73 (medians per workload), and the best-scored quarter of them held the fastest
        of them on all six workloads, where a random quarter's fastest was 1.09-1.52 times
        slower (offline over 10-16 runs a workload on the Xeon, ``bench/early_model.py``).
        Measured at 32 on the six workloads (Zen 3, one seed): better schedules sooner, but the
        exploration then stalls around them (a trained model steers evolutionary search to
        mutations of the best, a descent's neighbourhood) and the descents made 3 moves in six
        runs, the default's 7: kernels 0.926x evolutionary search's, the default's 0.887x in the
        same compare (DEP-1 1.36x the default's, T2D-1 0.88x); off (docs/benchmarks.md).
        ``None``: the run's cost model ranks throughout, at random until its warm-up ends.
    donors : int >= 0, default 0
        Radius 1 also offers every move of one decision to the value one of the ``donors``
        fastest other schedules of the seed's design space has there (a crossover of one site,
        however far), ranked by the cost model with the rest; like the two-site moves, only in
        descents that start once it has seen 100 results. Why: evolutionary search's best
        schedules share most decisions, and a decision that pays in one may pay in another.
        ``0``: none. Screened at 4 in the strategy lab (three landscapes, 8-16 seeds): 0.986-1.008
        of the default's kernels, no clear gain, so off (docs/lab.md).
    serial_move : {"auto", True, False}, default "auto"
        A centre that runs a parallel loop also offers up to four serial moves, measured before
        any ranked neighbour: points whose spatial tiles' outer levels (one, two or three) are
        folded inward, with each compute location, whose post-processed schedule has no
        parallel loop, best first by the cost model. Why: launching the thread pool costs
        microseconds, more than a tiny kernel's work, and post-processing fuses the outer
        spatial loops up to where a block is computed beside them into the parallel loop, so no
        move of one or two decisions leaves it (ONNX CNN on Zen 5: one convolution 6-7 us with a
        parallel loop, 0.6-1.4 us without). ``"auto"``: for centres under 20 us
        (``SERIAL_BELOW``); ``True``: every centre. Measured on that model (five seeds): 1.017x
        evolutionary search's latency against the default's 1.341x before it, every seed's
        convolution serial; on the built-in CNN 0.824x (0.842x without); no kernel of the bench's
        six workloads ran under 26 us, so there it never acts (docs/benchmarks.md).
    unscheduled : {"auto", True, False}, default "auto"
        A task whose workload MetaSchedule estimates at most 250,000 floating-point operations
        (``UNSCHEDULED_FLOPS``; ``True``: any task) measures it with no schedule but
        post-processing, as one of its first batch's trials. Why: every design space of
        MetaSchedule's CPU rules asks for a parallel loop, which costs microseconds to launch;
        a pooling task has no tile to fold, a transpose's space holds one schedule, and a small
        task of a model may get no batch after its first, so no descent (transformer on Zen 5:
        three transposes 6 us tuned, about 1 us as written). Measured on Zen 5, five seeds
        each, against evolutionary search's latency: transformer 0.268x (13.9 us, half the
        untuned build's; every other tuned build slower than untuned), ONNX CNN 0.262x, CNN
        0.772x (docs/benchmarks.md). The bench's six kernels are far above the bound.
    avoid_timed_out_moves : bool, default True
        A descent does not propose again a move (the decisions it sets, to the values it sets
        them) whose candidate timed out in the builder or the runner, from any later centre:
        such a build comes from what the move sets (a deep unroll, a compute location inside
        a long loop), and one timeout stalls a small descent batch for the whole timeout.
    singles_first : {"never", "after_timeout", "always"}, default "after_timeout"
        When a descent batch holds a one-site move, the moves of several sites that contain it
        (the two-site moves) wait for a later batch: if the part times out, they are never
        measured (``avoid_timed_out_moves``), since they would mostly time out too (on SFM-1, 5
        of 7 such moves in one batch did, and the batch waited out each timeout).
        ``"after_timeout"`` does so once the task has seen a candidate time out.
    max_work_ratio : float >= 1 or None, default 1000
        A candidate (explored or a descent's neighbour) whose work, as MetaSchedule estimates
        it (``estimate_tir_flops``), is above this multiple of the workload's is never measured:
        a compute location inside a long loop that recomputes a reduction on every iteration
        (about 65,000 times on SFM-1, softmax). Of 15 such SFM-1 schedules tuned on the bench,
        12 ran into the runner's timeout (30 s of wall for one useless trial), 3 ran 584 times
        slower than the fastest or worse; kernels within 1.1x of the fastest estimated at most
        161 times (:mod:`ms_droplet.recompute`). ``None`` measures everything.
    split_budget : bool, default True
        In a run of several tasks (``tune_tasks``, ``tune_relax``, Relax's tuning passes), the
        task's budget that the exploration is planned from is ``max_trials`` divided by the
        number of tasks the run set up (:mod:`ms_droplet.task_share`). MetaSchedule gives
        every task the run's ``max_trials_per_task``, by default the global budget, so without
        this each task plans its exploration for the whole run's budget, is given a few batches,
        and never descends (a model of six tasks at 300 trials: 150 planned, 30-100 given). Only
        the plan changes: a task may still take up to ``max_trials``, and one whose descents are
        done hands the rest back to the task scheduler (with ``explore_rest=False``). With
        ``max_trials_per_task`` set below the global budget the share is that cap divided by
        the number of tasks: set ``explore_trials`` instead. A single task (``tune_tir``) is
        unaffected. Measured on the built-in CNN at 300 trials (five seeds): 1.049x evolutionary
        search's model latency in 0.51 of its wall; off, 1.033x in 1.09 (docs/benchmarks.md).
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
        num_seeds: int = 1,
        max_fail_count: int = 64,
        paired: bool = False,
        min_gain: float = PAIRED_MIN_GAIN,
        spend_budget: bool = False,
        explore_every: int = 0,
        explore_rest: bool = True,
        descents_per_batch: int = 1,
        diverse_seeds: bool = False,
        descent_batch: int | None = None,
        max_radius: int | None = None,
        lookahead: int = 0,
        confirm_moves: bool | str = True,
        sure_gain: float | None = 0.1,
        fill_batch: int = 1,
        two_site_moves: int = 64,
        model_cut: float | None = None,
        model_cut_trust: float | None = None,
        early_model: int | None = None,
        donors: int = 0,
        serial_move: bool | str = "auto",
        unscheduled: bool | str = "auto",
        avoid_timed_out_moves: bool = True,
        singles_first: str = "after_timeout",
        max_work_ratio: float | None = MAX_WORK_RATIO,
        split_budget: bool = True,
        seed: int | None = None,
    ) -> None:
        self._options = {
            "explore_trials": checks.integer(_OWNER, "explore_trials", explore_trials, 0),
            "explore_fraction": checks.number(_OWNER, "explore_fraction", explore_fraction, low=0, high=1, low_open=True),
            "explore": checks.choice(_OWNER, "explore", explore, EXPLORE_SOURCES),
            "p_value": checks.number(_OWNER, "p_value", p_value, low=0, high=1, low_open=True),
            "num_seeds": checks.integer(_OWNER, "num_seeds", num_seeds, 1),
            "max_fail_count": checks.integer(_OWNER, "max_fail_count", max_fail_count, 1),
            "paired": checks.flag(_OWNER, "paired", paired),
            "min_gain": checks.number(_OWNER, "min_gain", min_gain, low=0, high=1, high_open=True),
            "spend_budget": checks.flag(_OWNER, "spend_budget", spend_budget),
            "explore_every": _check_every(explore_every),
            "explore_rest": checks.flag(_OWNER, "explore_rest", explore_rest),
            "descents_per_batch": checks.integer(_OWNER, "descents_per_batch", descents_per_batch, 1),
            "diverse_seeds": checks.flag(_OWNER, "diverse_seeds", diverse_seeds),
            "descent_batch": checks.integer(_OWNER, "descent_batch", descent_batch, 1, optional=True),
            "max_radius": checks.integer(_OWNER, "max_radius", max_radius, 1, optional=True),
            "lookahead": checks.integer(_OWNER, "lookahead", lookahead, 0),
            "confirm_moves": checks.flag_or_auto(_OWNER, "confirm_moves", confirm_moves, "retime", "both"),
            "sure_gain": checks.number(_OWNER, "sure_gain", sure_gain, low=0, high=1, low_open=True,
                                       high_open=True, optional=True),
            "fill_batch": checks.integer(_OWNER, "fill_batch", fill_batch, 1),
            "two_site_moves": checks.integer(_OWNER, "two_site_moves", two_site_moves, 0),
            "model_cut": checks.number(_OWNER, "model_cut", model_cut, low=0, high=1, low_open=True,
                                       high_open=True, optional=True),
            "model_cut_trust": _check_trust(model_cut_trust, model_cut),
            "early_model": checks.integer(_OWNER, "early_model", early_model, 1, optional=True),
            "donors": checks.integer(_OWNER, "donors", donors, 0),
            "serial_move": checks.flag_or_auto(_OWNER, "serial_move", serial_move),
            "unscheduled": checks.flag_or_auto(_OWNER, "unscheduled", unscheduled),
            "avoid_timed_out_moves": checks.flag(_OWNER, "avoid_timed_out_moves", avoid_timed_out_moves),
            "singles_first": checks.choice(_OWNER, "singles_first", singles_first, SINGLES_FIRST),
            "max_work_ratio": checks.number(_OWNER, "max_work_ratio", max_work_ratio, low=1, optional=True),
            "split_budget": checks.flag(_OWNER, "split_budget", split_budget),
            "seed": checks.integer(_OWNER, "seed", seed, 0, optional=True),
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
            list(design_spaces), database, cost_model, seed, _RUNS.join(_run_key(database, cost_model)),
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
