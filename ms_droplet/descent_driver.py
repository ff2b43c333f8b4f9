"""Descents over real schedules: the TVM side of :mod:`.descent`.

A descent starts from the best measured schedule no descent has visited; its proposals are
replayed into schedules (aliases, failures and schedules refused by the recompute guard are
answered at once as failures, schedules measured before with their samples), the rest are
measured. With ``per_batch > 1`` several descents share each batch, each taking an equal part of it, so each moves after a few of its best-ranked
neighbours instead of a whole batch of them; a batch smaller than the screening depth does the
same for one descent. A descent screens up to ``depth`` neighbours at a radius (over one batch or
several) before its radius grows. With ``paired``, each descent's
centre is re-timed in the same batch as the control of its neighbours. With ``lookahead``, each
centre's radius 1 also holds the points of a walk along the cost model's predictions
(:meth:`DescentDriver._walk`). With ``confirm``, a descent's best faster point is measured again,
alone in the descent's next batch share, before the descent moves there; with ``confirm="retime"``
the descent moves at once, and its seed and every centre it moves to are measured again so; with
``confirm="both"`` moves are confirmed and the seed is measured again; with ``sure_gain``, a
confirmed rule moves at once on a gain that large, and measures the new centre again. With
``cut``, a neighbour the cost model scores below that fraction of its centre's score is answered
as a failure, unmeasured; with ``trust`` too, only while the model's scores of the neighbours
measured so far agree with their times (rank correlation at least ``trust``, over at least
``TRUST_AFTER`` of them).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from tvm.ir import IRModule
from tvm.s_tir.schedule import Schedule, Trace

from .candidates import Measured, Pending, Proposal
from .descent import Droplet
from .neighbourhood import neighbours, serial_candidates, two_site_neighbours
from .seeds import DIVERSE_WITHIN, seed_order
from .space import DecisionSpace, Point
from .stats import mean, rank_agreement
from .trace import (
    count_loops,
    has_parallel_loop,
    module_key,
    read_point,
    read_space,
    replay,
    structure,
    with_point,
)

logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")

Samples = tuple[float, ...] | None

#: serial moves a centre offers (best ranked first); the rest of its batch is ranked neighbours
SERIAL_MOVES = 4
#: measured neighbours with the model's scores a trust-gated cut needs before it may act
TRUST_AFTER = 32


@dataclass
class Descent:
    number: int  # 1, 2, ... in order of start: names the descent in logs and in Pending.descent
    droplet: Droplet
    trace: Trace  # base trace of the seed: the structure every point is replayed on
    structure: tuple = ()  # its design space (:func:`.trace.structure`)
    known: dict[Point, Samples] = field(default_factory=dict)  # the batch in flight's answered points
    screened: int = 0  # neighbours measured at the current radius since the last move
    last_look: bool = True  # the batch in flight is this radius's last: no move then grows the radius
    scored: dict[Point, float] = field(default_factory=dict)  # the batch in flight's: model's score / centre's


class DescentDriver:
    """Runs up to ``per_batch`` descents at a time, from ever later seeds, ``num_seeds`` in all.

    With ``singles_first`` a batch holds no move of several sites beside the one-site move of
    one of its parts (:meth:`~ms_droplet.descent.Droplet.singles_first`). With
    ``diverse_seeds`` a seed of a design space fewer descents hold comes first if it is close to
    the fastest (:mod:`.seeds`)."""

    def __init__(self, mod, postprocs, task_name: str, *, p_value: float, min_gain: float, paired: bool,
                 num_seeds: int, new_seed: Callable[[], int],
                 rank: Callable[[list[Proposal]], list[Proposal]], per_batch: int = 1,
                 two_site: Callable[[], int] = lambda: 0,
                 avoid_timed_out_moves: bool = True, singles_first: bool = False, diverse_seeds: bool = False,
                 fill: int = 1, excessive: Callable[[IRModule, int], bool] = lambda mod, key: False,
                 donors: int = 0, serial_below: float | None = None, max_radius: int | None = None,
                 lookahead: Callable[[], int] = lambda: 0,
                 predict: Callable[[list[Schedule]], Sequence[float]] | None = None, confirm: bool | str = False,
                 sure_gain: float | None = None, cut: Callable[[], float | None] = lambda: None,
                 trust: float | None = None) -> None:
        self.mod = mod
        self.postprocs = postprocs
        self.task_name = task_name
        self.p_value = p_value
        self.min_gain = min_gain
        self.paired = paired
        self.num_seeds = num_seeds
        self.new_seed = new_seed
        self.rank = rank
        self.per_batch = per_batch
        self.two_site = two_site  # two-site moves for a descent starting now (asked as each one starts)
        self.avoid_timed_out_moves = avoid_timed_out_moves
        self.singles_first = singles_first  # set by the strategy once the task has seen a timeout
        self.fill = fill  # a batch with fewer neighbours at the radius takes the next radii's too
        self.excessive = excessive  # the recompute guard (:mod:`.recompute`): answered as a failure
        self.serial_below = serial_below  # a centre this fast (seconds) with a parallel loop gets serial moves
        self.donors = donors  # the fastest schedules of the seed's design space whose decisions it may take
        self.max_radius = max_radius  # a descent converges past it (None: where its space's ranges end)
        self.lookahead = lookahead  # steps of the cost model's walk for a descent starting now (0: none)
        self.predict = predict  # the cost model's scores of schedules (higher: faster)
        self.confirm = confirm  # True: a faster point is measured again before a move; "retime": each centre after; "both": True and the seed
        self.sure_gain = sure_gain  # with confirm: a gain this large (a fraction) is moved to at once
        self.cut = cut  # a neighbour scored below this fraction of its centre's score is not measured (None: all are)
        self.trust = trust  # the cut acts only while the model ranks measured neighbours this well (None: always)
        # measured neighbours, a group per descent and batch: (score / centre's, time / centre's)
        self.agreement: list[list[tuple[float, float]]] = []
        self._trusted: bool | None = None  # the gate's last answer, to log its changes
        self.within = DIVERSE_WITHIN if diverse_seeds else None
        self.structures: list[tuple] = []  # design space of every descent started, in order
        self.active: list[Descent] = []
        self.done: list[Descent] = []  # converged, in order
        self.in_flight: dict[int, Descent] = {}  # descents with candidates in the batch in flight
        self.descended: set[int] = set()  # keys of every schedule a descent started from or proposed
        self.seeds_used = 0
        self.started = 0  # descents started, refills included: numbers them
        self._taken: set[int] = set()  # keys in the batch being assembled

    def allow_one_more(self) -> None:
        """Permit one more descent even when ``num_seeds`` are used up (a refill of the budget)."""
        self.seeds_used = min(self.seeds_used, self.num_seeds - 1)

    def centre_samples(self) -> tuple[float, ...] | None:
        """Samples of the fastest centre among the active descents (``None``: none is active)."""
        centres = [d.droplet for d in self.active]
        return min(centres, key=lambda d: d.best_time).center_samples if centres else None

    def give_way(self) -> None:
        """Stop the active descents so that the next batch starts one from the best schedule no
        descent has visited: something faster than all their centres was found elsewhere."""
        for descent in self.active:
            logger.info("droplet %s: descent %d gives way at %.4g ms to a faster schedule found by exploring",
                        self.task_name, descent.number, descent.droplet.best_time * 1e3)
        self.active = []
        self.allow_one_more()

    def _start(self, measured: dict[int, Measured]) -> bool:
        if self.seeds_used >= self.num_seeds:
            return False
        unvisited = [(mean(m.samples), key, structure(m.trace) if self.within else ())
                     for key, m in measured.items() if m.samples and key not in self.descended]
        order = seed_order(unvisited, [d.structure for d in self.active], self.structures, self.within)
        two_site = self.two_site()
        for key in order:
            m = measured[key]
            self.descended.add(key)
            try:
                space, point = read_space(m.trace, count_loops(self.mod, m.trace))
                if not space.sites:  # nothing to decide (the unscheduled workload): nothing to descend over
                    continue
                shape = structure(m.trace)
                # ranked by the cost model like the two-site moves, so offered only when they are
                donors = self._donors(key, shape, [s.position for s in space.sites], measured) if two_site else []
                serial = None if self.serial_below is None else partial(self._serial_moves, m.trace, space)
                steps = self.lookahead() if self.predict is not None else 0
                walk = partial(self._walk, m.trace, space, steps, two_site) if steps else None
                droplet = Droplet(space, point, m.samples, self.p_value, self.min_gain,
                                  two_site, self.new_seed() if two_site else 0, donors, serial, self.max_radius, walk,
                                  confirm=self.confirm, sure_gain=self.sure_gain)
            except Exception as err:  # a seed that cannot be read is skipped, not fatal
                logger.warning("droplet: cannot descend from a seed (%s); trying the next", err)
                continue
            self.seeds_used += 1
            self.started += 1
            self.structures.append(shape)
            self.active.append(Descent(self.started, droplet, m.trace, shape))
            logger.info("droplet %s: descent %d from a seed at %.4g ms over %d sites (design space %s, %d "
                        "instructions)", self.task_name, self.started, droplet.best_time * 1e3, len(space.sites),
                        hashlib.sha1(repr(shape).encode()).hexdigest()[:6], len(shape))
            return True
        return False

    def _donors(self, seed: int, shape: tuple, positions: list[int], measured: dict[int, Measured]) -> list[Point]:
        """Points of the ``donors`` fastest measured schedules of design space ``shape``, the seed
        ``seed`` apart."""
        if not self.donors:
            return []
        ranked = sorted((mean(m.samples), key) for key, m in measured.items() if m.samples and key != seed)
        out: list[Point] = []
        for _, key in ranked:
            if structure(measured[key].trace) != shape:
                continue
            out.append(read_point(measured[key].trace, positions))
            if len(out) >= self.donors:
                break
        return out

    def _serial_moves(self, trace: Trace, space: DecisionSpace, centre: Point, time: float) -> list[Point]:
        """Up to :data:`SERIAL_MOVES` points near ``centre`` whose schedules have no parallel loop,
        best first by the cost model, when ``centre`` runs in under ``serial_below`` seconds with one.

        Why: launching the thread pool costs microseconds, more than a tiny kernel's work (ONNX
        CNN, Zen 5: a 55,000 multiply-add convolution, 6-7 us parallel, 0.6-1.4 us serial), and
        whether post-processing makes a loop parallel depends on every spatial tile's outer
        levels and on where the blocks around them are computed together, so a descent of one or
        two sites at a time does not leave a parallel kernel.
        """
        if not _below(time, self.serial_below):
            return []
        sch = replay(self.mod, with_point(trace, space, centre), self.postprocs, 1)
        if sch is None or not has_parallel_loop(sch.mod):
            return []
        found: list[Proposal] = []
        keys: set[int] = set()
        for point in serial_candidates(space, centre):
            candidate, sch = self._as_itself(trace, space, point, 1)
            if sch is None or has_parallel_loop(sch.mod):
                continue
            key = module_key(sch.mod)
            if key not in keys:
                keys.add(key)
                found.append((sch, Pending(key, candidate, point)))
        ranked = self.rank(found) if len(found) > SERIAL_MOVES else found
        logger.info("droplet %s: %d schedules without a parallel loop near a centre at %.4g ms; %d offered first",
                    self.task_name, len(found), time * 1e3, min(len(found), SERIAL_MOVES))
        return [pending.point for _, pending in ranked[:SERIAL_MOVES]]

    def _walk(self, trace: Trace, space: DecisionSpace, steps: int, two_site: int, centre: Point,
              time: float) -> list[Point]:
        """Up to ``steps`` points from ``centre``: its best-predicted radius-1 neighbour (one-site
        and ``two_site`` sampled two-site moves), then each step's best-predicted neighbour while
        the cost model predicts it faster than the step before.

        Why: most descents converge after 0-2 moves (Zen 5 bench: 12 of 35 made none), every
        move costs a batch, and a batch measures only radius-1 neighbours; the cost model can
        rank points several moves away for the price of predicting them, as evolutionary search
        does, and a measured point that beats the centre is a move however far it jumps. The
        first step need not beat the centre's prediction: the model has seen the centre, its
        best-measured schedule, and scored it above every neighbour in the first trial runs (GMM-2).
        Measured on the bench: most walks stop after their first step (docs/benchmarks.md).
        """
        rng = random.Random(self.new_seed())
        path, score, seen = [centre], -float("inf"), {centre}
        while len(path) <= steps:
            near = [p for p in dict.fromkeys(neighbours(space, path[-1], 1)
                                             + two_site_neighbours(space, path[-1], two_site, rng)) if p not in seen]
            seen.update(near)
            scored = self._scored(trace, space, near)
            if not scored:
                break
            best, best_score = max(scored, key=lambda x: x[1])
            if best_score <= score:
                break
            path.append(best)
            score = best_score
        logger.info("droplet %s: the cost model's walk from a centre at %.4g ms: %d steps",
                    self.task_name, time * 1e3, len(path) - 1)
        return path[1:]

    def _scored(self, trace: Trace, space: DecisionSpace, points: list[Point]) -> list[tuple[Point, float]]:
        """``points`` that replay as themselves, each with the cost model's score."""
        found: list[tuple[Point, Schedule]] = []
        for point in points:
            sch = self._as_itself(trace, space, point, 1)[1]
            if sch is not None:
                found.append((point, sch))
        if not found:
            return []
        scores = self.predict([sch for _, sch in found])
        return [(point, float(score)) for (point, _), score in zip(found, scores, strict=True)]

    def next_batch(self, n: int, measured: dict[int, Measured], depth: int) -> list[Proposal] | None:
        """Up to ``n`` candidates of the active descents (starting new ones as others converge).

        A descent screens ``depth`` neighbours of a radius, over one batch or several, before its
        radius grows. ``None``: no descent is left to run.
        """
        batch: list[Proposal] = []
        self.in_flight = {}
        self._taken = set()
        while len(batch) < n:
            while len(self.active) < self.per_batch and self._start(measured):
                pass
            waiting = [d for d in self.active if d.number not in self.in_flight]
            if not waiting:
                break
            descent = waiting[0]
            share = (n - len(batch)) // len(waiting)  # an equal part of what the batch has left
            picked = self._propose(descent, max(share, 1), depth, measured)
            if picked is None:
                droplet = descent.droplet
                logger.info("droplet %s: descent %d converged at %.4g ms after %d accepted moves",
                            self.task_name, descent.number, droplet.best_time * 1e3, len(droplet.accepted))
                self.active.remove(descent)
                self.done.append(descent)
                continue
            self.in_flight[descent.number] = descent
            batch.extend(picked)
        return batch or None

    def _propose(self, descent: Descent, slots: int, depth: int,
                 measured: dict[int, Measured]) -> list[Proposal] | None:
        """Up to ``slots`` candidates of one descent; ``None`` once it has converged."""
        droplet = descent.droplet
        while True:
            if droplet.suspect is not None:
                again = self._again(descent, droplet.suspect)
                if again is not None:  # measured alone: the next neighbours depend on the move
                    return [again]
                droplet.recheck(None)  # replayed before, so not expected: not confirmed
            proposals = droplet.proposals(min(self.fill, slots))
            if not proposals:
                return None
            known, fresh = self._replay(descent, proposals, measured)
            fresh = self._cut(descent, fresh, known)
            # paired: one slot re-times the centre, the control of this descent's pairs
            control = self._again(descent, droplet.center) if self.paired and slots >= 2 and fresh else None
            room = slots - (control is not None)
            # a radius is screened as deeply as one lone full batch would: depth, less its control
            screen = depth - (1 if self.paired and depth >= 2 else 0)
            take = min(room, max(screen - descent.screened, 1))
            if self.singles_first and len(fresh) > 1:
                # when every move fits, which ones wait does not depend on their rank
                ranked = self._ranked(fresh, droplet) if len(fresh) > take else fresh
                kept = set(droplet.singles_first([p.point for _, p in ranked], take))
                left = len(fresh) - len(kept)
                fresh = [x for x in ranked if x[1].point in kept]
                # moves held back for their parts get the next look, if the screen has room
                descent.last_look = not left or descent.screened + len(fresh) >= screen
            elif len(fresh) > take:
                fresh = self._ranked(fresh, droplet)[:take]
                descent.last_look = descent.screened + take >= screen
            else:
                descent.last_look = True
            if fresh:
                self._taken.update(p.key for _, p in fresh)
                descent.known = known
                descent.screened += len(fresh)
                fresh = [(sch, Pending(p.key, p.trace, p.point, descent=descent.number)) for sch, p in fresh]
                if control is None:
                    return fresh
                logger.info("droplet %s: descent %d re-times its centre (%.4g ms) beside %d neighbours",
                            self.task_name, descent.number, droplet.best_time * 1e3, len(fresh))
                return [*fresh, control]
            self._observe(descent, known)

    def _cut(self, descent: Descent, fresh: list[Proposal], known: dict[Point, Samples]) -> list[Proposal]:
        """``fresh`` less the neighbours the cost model scores below ``cut`` times the centre's
        score; those go to ``known`` as failures (not faster, never measured). Pinned (serial)
        moves are kept: the model has rarely seen a kernel without a parallel loop."""
        cut = self.cut() if self.predict is not None and fresh else None
        if not cut:
            return fresh
        droplet = descent.droplet
        centre = self._as_itself(descent.trace, droplet.space, droplet.center, 1)[1]
        if centre is None:
            return fresh
        scores = self.predict([centre] + [sch for sch, _ in fresh])
        if scores[0] <= 0:  # no scale to cut against
            return fresh
        act = self._trust_model()
        kept = []
        for proposal, score in zip(fresh, scores[1:], strict=True):
            point = proposal[1].point
            if act and score < cut * scores[0] and point not in droplet.pinned:
                known[point] = None
            else:
                kept.append(proposal)
                if self.trust is not None:  # the gate's evidence; an ungated cut never reads it
                    descent.scored[point] = float(score / scores[0])
        if len(kept) < len(fresh):
            logger.info("droplet %s: descent %d skips %d of %d neighbours at radius %d, scored below %.2g of its centre",
                        self.task_name, descent.number, len(fresh) - len(kept), len(fresh), droplet.radius, cut)
        return kept

    def _trust_model(self) -> bool:
        """Whether the cut may act: always without ``trust``; with it, once ``TRUST_AFTER``
        measured neighbours were scored, while their scores and times agree that well. On two
        threads the model ranked one workload's neighbours at random (T2D-1), where a cut
        skipped faster ones."""
        if self.trust is None:
            return True
        rho, pairs = rank_agreement(self.agreement)
        trusted = pairs >= TRUST_AFTER and rho >= self.trust
        if pairs >= TRUST_AFTER and trusted != self._trusted:
            logger.info("droplet %s: the cost model's scores of %d measured neighbours agree with their times "
                        "at %.2f (rank correlation): its cut %s", self.task_name, pairs, rho,
                        "acts" if trusted else "waits")
            self._trusted = trusted
        return trusted

    def _learn(self, descent: Descent, own: dict[Point, Samples]) -> None:
        """Pairs each measured neighbour the cut scored with its time, both relative to the
        centre's: the evidence ``trust`` is checked on, a group per batch (one centre, one model)."""
        centre = descent.droplet.best_time
        group = [(descent.scored[point], mean(samples) / centre) for point, samples in own.items()
                 if point in descent.scored and samples and 0 < centre < float("inf")]
        if group:
            self.agreement.append(group)
        descent.scored.clear()

    def _ranked(self, fresh: list[Proposal], droplet: Droplet) -> list[Proposal]:
        """``fresh`` best first by the cost model, the droplet's pinned proposals before all."""
        pinned = droplet.pinned
        ranked = self.rank(fresh)
        return [x for x in ranked if x[1].point in pinned] + [x for x in ranked if x[1].point not in pinned]

    def _replay(self, descent: Descent, proposals: list[Point],
                measured: dict[int, Measured]) -> tuple[dict[Point, Samples], list[Proposal]]:
        """Proposals as schedules: answered at once (alias, failure, known, excessive work) or fresh
        to measure."""
        droplet = descent.droplet
        known: dict[Point, Samples] = {}
        fresh: list[Proposal] = []
        fresh_keys: set[int] = set()
        for point in proposals:
            trace, sch = self._as_itself(descent.trace, droplet.space, point, self.new_seed())
            if sch is None:
                known[point] = None
                continue
            key = module_key(sch.mod)
            self.descended.add(key)
            if key in measured:
                known[point] = measured[key].samples
            elif key in self._taken or key in fresh_keys:
                known[point] = None  # the same schedule is already in this batch
            elif self.excessive(sch.mod, key):
                known[point] = None  # recomputes too much to be fast: a failure, without its timeout
            else:
                fresh_keys.add(key)
                fresh.append((sch, Pending(key, trace, point)))
        return known, fresh

    def _as_itself(self, trace: Trace, space: DecisionSpace, point: Point,
                   seed: int) -> tuple[Trace, Schedule | None]:
        """``point``'s trace, and its schedule, or ``None`` if it fails to replay or replays as
        another point: a compute location that is not valid replays as a valid one (an alias)."""
        candidate = with_point(trace, space, point)
        sch = replay(self.mod, candidate, self.postprocs, seed)
        if sch is None or read_point(sch.trace, [s.position for s in space.sites]) != point:
            return candidate, None
        return candidate, sch

    def _again(self, descent: Descent, point: Point) -> Proposal | None:
        """``point``'s schedule, to be measured again: the centre beside its neighbours
        (``paired``), or a suspect (``confirm``); its samples come back as the descent's control."""
        trace, sch = self._as_itself(descent.trace, descent.droplet.space, point, self.new_seed())
        if sch is None:  # replayed as itself before, so not expected; the batch then goes without it
            return None
        return sch, Pending(module_key(sch.mod), trace, control=True, descent=descent.number)

    def _observe(self, descent: Descent, results: dict[Point, Samples], control: Samples = None,
                 beside_control: dict[Point, Samples] | None = None) -> None:
        droplet = descent.droplet
        radius, before = droplet.radius, droplet.center
        moved = droplet.observe(results, control, beside_control, grow=descent.last_look) is not None
        if moved:
            changed = sum(a != b for a, b in zip(before, droplet.center, strict=True))
            logger.info("droplet %s: descent %d moved to %.4g ms (%d sites changed)",
                        self.task_name, descent.number, droplet.best_time * 1e3, changed)
        elif droplet.suspect is not None:
            logger.info("droplet %s: descent %d found a point at %.4g ms (centre %.4g ms); measuring it again",
                        self.task_name, descent.number, mean(results[droplet.suspect]) * 1e3, droplet.best_time * 1e3)
        if moved or droplet.radius != radius:
            descent.screened = 0
        descent.last_look = True

    def _recheck(self, descent: Descent, samples: Samples) -> None:
        droplet = descent.droplet
        radius, first, retimed = droplet.radius, droplet.best_time, droplet.retiming
        moved = droplet.recheck(samples) is not None
        again = "a failure" if not samples else f"{mean(samples) * 1e3:.4g} ms"
        if retimed:  # the centre measured again: its time, no move
            logger.info("droplet %s: descent %d re-timed its centre at %s (first %.4g ms)",
                        self.task_name, descent.number, again, first * 1e3)
        elif moved:
            logger.info("droplet %s: descent %d moved to %.4g ms, measured twice",
                        self.task_name, descent.number, droplet.best_time * 1e3)
        else:
            logger.info("droplet %s: descent %d: a faster point measured again at %s: not faster, no move",
                        self.task_name, descent.number, again)
        if moved or droplet.radius != radius:
            descent.screened = 0
        descent.last_look = True

    def notify(self, results: dict[int, dict[Point, Samples]], controls: dict[int, Samples],
               timed_out: dict[int, list[Point]] | None = None) -> None:
        """Results of the batch it proposed last, by descent number (only a descent's own
        neighbours were timed beside its control). With ``avoid_timed_out_moves``, a descent never
        proposes again the moves of its ``timed_out`` points: one such candidate in a small batch
        costs the batch the whole timeout."""
        for number, descent in self.in_flight.items():
            slow = (timed_out or {}).get(number, []) if self.avoid_timed_out_moves else []
            for point in slow:
                descent.droplet.ban_move(point)
            if slow:
                logger.info("droplet %s: descent %d will not repeat the moves of %d candidates that timed out",
                            self.task_name, number, len(slow))
            # a suspect is measured again alone before any more neighbours: this batch was that
            if descent.droplet.suspect is not None:
                descent.scored.clear()
                self._recheck(descent, controls.get(number))
                continue
            own = results.get(number, {})
            self._learn(descent, own)
            self._observe(descent, {**descent.known, **own}, controls.get(number), own)
        self.in_flight = {}


def _below(time: float, limit: float | None) -> bool:
    return limit is not None and time < limit
