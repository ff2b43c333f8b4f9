"""What DropletSearch decides inside its adapter, on a synthetic landscape with a known optimum.

The schedules are real (a 32^3 matmul's design spaces, replayed with every postproc); their run
times are a known function of the sampling decisions, so every decision can be checked:
``1e-4 s * (1 + sum over tile sites of |log2 factor - log2 target| + 0.5 * unroll index)``,
with targets (2, 2, 2, 4) for 4-level tiles and (8, 4) for 2-level ones. It is separable and
every site can reach its target by moving one prime factor at a time, so a coordinate descent
must reach the optimum, 1e-4 s.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import tvm
from conftest import make_context, matmul_mod
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

import ms_droplet
from ms_droplet.trace import base_trace, module_key, read_point, replay, structure, with_point

OPTIMUM = 1e-4
TARGETS = {4: (2, 2, 2, 4), 2: (8, 4)}
# replay-explored, and the task ends once its descents are done (``explore_rest=False``): the
# tests that follow the descents to their end, on budgets the exploration would otherwise spend
ENDING_EARLY = {"explore": "replay", "explore_rest": False}


def synthetic_seconds(sch) -> float:
    trace = base_trace(sch.trace)
    if not trace.decisions:  # the workload as written (``unscheduled``): far from the optimum here
        return OPTIMUM * 100
    cost = 1.0
    for inst in trace.insts:
        if inst not in trace.decisions:
            continue
        decision = trace.decisions[inst]
        if inst.kind.name == "SamplePerfectTile":
            factors = [int(x) for x in decision]
            target = TARGETS.get(len(factors))
            if target and math.prod(factors) == math.prod(target):
                cost += sum(abs(math.log2(f) - math.log2(t)) for f, t in zip(factors, target, strict=True))
        elif inst.kind.name == "SampleCategorical":
            cost += 0.5 * int(getattr(decision, "value", decision))
    return OPTIMUM * cost


def landscape(candidates):
    """Recorded measurements of the synthetic landscape: two identical samples per candidate."""
    return [ms.runner.RunnerResult([synthetic_seconds(c.sch)] * 2, None) for c in candidates]


def run(strategy, max_trials, per_iter, database=None, cost_model=None, mod=None, keys=None, space_generator=None,
        answer=landscape):
    """The generate/notify loop on ``mod`` (default a matmul); returns the batches of times and the
    task state before post_tuning. ``keys``: a list each batch's schedule keys are appended to;
    ``answer``: the runner results of a batch's candidates."""
    ctx = make_context(mod if mod is not None else matmul_mod(), target_cpu(), strategy,
                       space_generator=space_generator)
    ctx.pre_tuning(max_trials, per_iter, ctx.generate_design_space(), database, cost_model)
    state = strategy._state
    batches = []
    while (cands := ctx.generate_measure_candidates()) is not None:
        if keys is not None:
            keys.append([p.key for p in state.pending])
        results = answer(cands)
        if database is not None:
            wl = database.commit_workload(ctx.mod)
            for c, r in zip(cands, results, strict=True):
                database.commit_tuning_record(ms.database.TuningRecord(c.sch.trace, wl, r.run_secs, ctx.target,
                                                                       c.args_info))
        ctx.notify_runner_results(cands, results)
        batches.append([float(r.run_secs[0]) for r in results])
    ctx.post_tuning()
    return batches, state


def target_cpu():
    from ms_droplet.workloads import host_target

    return host_target()


def test_the_descent_walks_to_the_optimum_and_hands_the_rest_back():
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=1, seed=1)
    batches, state = run(strategy, 2000, 32)
    explored = [t for b in batches[:1] for t in b]
    times = [t for b in batches for t in b]
    assert min(explored) > OPTIMUM * 1.5, "random replay should not find the optimum by itself"
    assert min(times) == pytest.approx(OPTIMUM)
    assert len(times) < 2000, "a converged descent with num_seeds=1 ends the task early"
    assert state.descents.seeds_used == 1


def test_restarts_up_to_num_seeds_from_the_best_unvisited_schedules():
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=3, seed=2)
    _, state = run(strategy, 4000, 32)
    assert state.descents.seeds_used == 3
    # every seed was a schedule measured before it was picked, and none twice
    assert len(state.descents.descended) >= 3


def test_max_radius_one_ends_a_descent_after_its_radius_one_and_the_trials_go_to_further_seeds():
    def tune(**options):
        strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, seed=1, **options)
        batches, state = run(strategy, 2000, 32)
        return [t for b in batches for t in b], state

    full, _ = tune(num_seeds=1)
    short, _ = tune(num_seeds=1, max_radius=1)
    # this landscape is a bowl in radius-1 moves: the short descent walks to the optimum too,
    # and stops sooner (the full one screens radius 2 and beyond at the optimum first)
    assert min(short) == pytest.approx(OPTIMUM) == min(full)
    assert len(short) < len(full) < 2000
    more, state = tune(num_seeds=4, max_radius=1)
    assert state.descents.seeds_used == 4 and len(short) < len(more) < 2000


def test_spend_budget_keeps_exploring_and_descending_until_max_trials():
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=1, spend_budget=True, seed=1)
    batches, state = run(strategy, 1200, 32)
    assert sum(len(b) for b in batches) == 1200
    assert state.refills >= 1 and state.descents.seeds_used >= 1


def _tune_together(options: dict, max_trials: int, per_iter: int, given: int):
    """Two tasks set up as MetaSchedule's task scheduler does (every pre_tuning, with the run's one
    database and cost model, before any batch), then given ``given // per_iter`` batches each, in turns."""
    strategies = [ms_droplet.DropletSearch(**options) for _ in range(2)]
    contexts = [make_context(matmul_mod(n), target_cpu(), s) for n, s in zip((32, 48), strategies, strict=True)]
    db, model = ms.database.MemoryDatabase(), ms.cost_model.RandomModel()
    for ctx in contexts:
        ctx.pre_tuning(max_trials, per_iter, ctx.generate_design_space(), db, model)
    states = [s._state for s in strategies]
    for _ in range(given // per_iter):
        for ctx in contexts:
            if (cands := ctx.generate_measure_candidates()) is not None:
                ctx.notify_runner_results(cands, landscape(cands))
    for ctx in contexts:
        ctx.post_tuning()
    return states


def test_tasks_tuned_together_plan_their_exploration_from_their_share():
    # 2 tasks, 256 trials for the run: each plans half of its share of 128, so it descends within
    # 96 trials; planned from all 256 it would still be exploring when those are spent
    split = _tune_together({"explore": "replay", "seed": 3}, 256, 16, 96)
    whole = _tune_together({"explore": "replay", "split_budget": False, "seed": 3}, 256, 16, 96)
    assert [s.tasks for s in split] == [2, 2] and [s.tasks for s in whole] == [1, 1]
    assert all(s.descents.seeds_used >= 1 and s.explore_left == 0 for s in split)
    assert all(s.sent == 96 and s.descents.seeds_used == 0 for s in whole)  # all 96 spent exploring
    # the run's cost model has trained on both tasks' results: past its warm-up, though neither
    # task has had 100 of its own, so two-site moves are ranked by it and join the descents
    assert split[0].group is split[1].group and split[0].group.results == sum(s.sent for s in split) >= 100
    assert all(s.sent < 100 and s._once_model_ranks("two_site_moves") == 64 for s in split)
    # a task set up after those started is a run of its own
    alone = ms_droplet.DropletSearch(explore="replay", seed=3)
    ctx = make_context(matmul_mod(), target_cpu(), alone)
    ctx.pre_tuning(256, 16, ctx.generate_design_space(), None, None)
    ctx.generate_measure_candidates()
    assert alone._state.tasks == 1
    ctx.post_tuning()


def test_a_warm_start_counts_towards_exploration():
    db = ms.database.MemoryDatabase()
    first = ms_droplet.DropletSearch(explore="replay", explore_trials=16, num_seeds=1, seed=3)
    run(first, 16, 16, database=db)  # exploration only: 16 records
    again = ms_droplet.DropletSearch(explore="replay", explore_trials=40, num_seeds=1, seed=4)
    ctx = make_context(matmul_mod(), target_cpu(), again)
    ctx.pre_tuning(100, 16, ctx.generate_design_space(), db, None)
    assert again._state.num_db_records == 16
    assert again._state.explore_left == 40 - 16
    ctx.post_tuning()


def _unroll_index(sch) -> int:
    trace = base_trace(sch.trace)
    # -1: the workload as written, which decides nothing
    return next((int(getattr(d, "value", d)) for i, d in trace.decisions.items() if i.kind.name == "SampleCategorical"),
                -1)


def _timeouts_per_descent(avoid: bool) -> dict[int, int]:
    """Timed-out candidates of each descent, where (injected fault) every schedule with unroll
    index 1 "times out" in the builder. The optimum has unroll index 0, so every centre there has
    unroll -> 1 as a radius-1 neighbour."""
    timeout = ms.runner.RunnerResult(None, "LocalBuilder: Timeout, killed after 30.0 seconds")
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=2, seed=1,
                                        avoid_timed_out_moves=avoid)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(4000, 8, ctx.generate_design_space(), None, None)
    state = strategy._state
    timeouts: dict[int, int] = {}
    while (cands := ctx.generate_measure_candidates()) is not None:
        results = [timeout if _unroll_index(c.sch) == 1 else r
                   for c, r in zip(cands, landscape(cands), strict=True)]
        for pending, result in zip(state.pending, results, strict=True):
            if pending.descent and result.error_msg:
                timeouts[pending.descent] = timeouts.get(pending.descent, 0) + 1
        ctx.notify_runner_results(cands, results)
    ctx.post_tuning()
    assert state.descents.seeds_used == 2
    return timeouts


def test_a_descent_does_not_repeat_a_move_whose_build_timed_out():
    avoided = _timeouts_per_descent(avoid=True)
    assert avoided and all(n == 1 for n in avoided.values()), avoided
    # without the ban each move of a centre at unroll 0 tries unroll 1 again
    repeated = _timeouts_per_descent(avoid=False)
    assert max(repeated.values()) > 1, repeated


class _FixedModel(PyCostModel):
    """A cost model that learns nothing: its scores are a fixed function of the schedule."""

    def load(self, path: str) -> None:
        pass

    def save(self, path: str) -> None:
        pass

    def update(self, context, candidates, results) -> None:
        pass


@derived_object
class RecordingOracleModel(_FixedModel):
    """A cost model that knows the synthetic landscape (score = 1 / time) and records each query."""

    def __init__(self) -> None:
        self.queries: list[list[tuple[int, float]]] = []

    def predict(self, context, candidates) -> np.ndarray:
        scores = [1.0 / synthetic_seconds(c.sch) for c in candidates]
        self.queries.append([(module_key(c.sch.mod), s) for c, s in zip(candidates, scores, strict=True)])
        return np.asarray(scores)


def test_when_a_batch_cannot_hold_every_neighbour_the_cost_model_picks_them():
    model = RecordingOracleModel()
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=8, num_seeds=1, seed=5)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(40, 4, ctx.generate_design_space(), None, model)
    for _ in range(2):  # 8 exploration trials in batches of 4
        cands = ctx.generate_measure_candidates()
        ctx.notify_runner_results(cands, landscape(cands))
    assert not model.queries
    descent_batch = ctx.generate_measure_candidates()
    assert len(model.queries) == 1 and len(model.queries[0]) > 4
    ranked = sorted(model.queries[0], key=lambda q: -q[1])
    assert [module_key(c.sch.mod) for c in descent_batch] == [key for key, _ in ranked[:4]]
    ctx.post_tuning()


def _at_first_descent_batch(cost_model, explore_trials: int, **options):
    """(context, task state) once the first descent batch is handed out (400 trials, batches of 32)."""
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=explore_trials, num_seeds=1, seed=5,
                                        **options)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(400, 32, ctx.generate_design_space(), None, cost_model)
    state = strategy._state
    while True:
        cands = ctx.generate_measure_candidates()
        if state.batch_kind == "descent":
            return ctx, state
        ctx.notify_runner_results(cands, landscape(cands))


def _sites_moved_in_first_descent_batch(cost_model, explore_trials: int) -> set[int]:
    """How many decisions each candidate of the first descent batch changes from its centre."""
    ctx, state = _at_first_descent_batch(cost_model, explore_trials)
    centre = state.descents.active[0].droplet.center
    moved = {sum(a != b for a, b in zip(p.point, centre, strict=True)) for p in state.pending}
    ctx.post_tuning()
    return moved


def test_two_site_moves_join_a_descent_only_once_the_cost_model_has_trained():
    # 104 results: past xgb's 100-result warm-up, the model ranks two-site moves with the rest
    assert 2 in _sites_moved_in_first_descent_batch(RecordingOracleModel(), 104)
    # unranked (no model) or ranked by an untrained one, they would crowd out the one-site moves
    assert _sites_moved_in_first_descent_batch(None, 104) == {1}
    assert _sites_moved_in_first_descent_batch(RecordingOracleModel(), 16) == {1}


def test_lookahead_offers_the_cost_models_walk_once_it_has_trained_in_the_first_descent_batch():
    ctx, state = _at_first_descent_batch(RecordingOracleModel(), 104, lookahead=4)
    droplet = state.descents.active[0].droplet
    walk = droplet._asked["lookahead", droplet.center]
    ctx.post_tuning()
    assert walk and set(walk) <= {p.point for p in state.pending}, "ranked first, the walk is in the first batch"
    # without a trained cost model to predict with there is no walk
    for model, explored in ((None, 104), (RecordingOracleModel(), 16)):
        ctx, state = _at_first_descent_batch(model, explored, lookahead=4)
        assert "lookahead" not in {name for name, _ in state.descents.active[0].droplet._asked}
        ctx.post_tuning()


def test_the_lookahead_walk_follows_the_predictions_past_radius_one_and_stops_where_they_stop_improving():
    from ms_droplet.descent_driver import DescentDriver
    from ms_droplet.neighbourhood import neighbours
    from ms_droplet.trace import count_loops, read_space

    ctx = make_context(matmul_mod(), target_cpu(), ms_droplet.DropletSearch())
    trace = base_trace(ctx.generate_design_space()[0].trace)
    space, point = read_space(trace, count_loops(ctx.mod, trace))
    start = _far_point(space, point)
    oracle = RecordingOracleModel()  # knows the landscape: its predictions are the truth
    driver = DescentDriver(ctx.mod, list(ctx.space_generator.postprocs), "t", p_value=0.05, min_gain=0.0,
                           paired=False, num_seeds=1, new_seed=lambda: 1, rank=list,
                           predict=lambda schs: oracle.predict(ctx, [ms_droplet.candidates.measure_candidate(s)
                                                                     for s in schs]))

    def seconds(point):
        return synthetic_seconds(replay(ctx.mod, with_point(trace, space, point), driver.postprocs, 1))

    walk = driver._walk(trace, space, 4, 0, start, seconds(start))
    assert len(walk) == 4
    assert seconds(walk[0]) == min(seconds(p) for p in neighbours(space, start, 1))  # the best-predicted first
    times = [seconds(p) for p in walk]
    assert all(b < a for a, b in pairwise(times)), times
    assert walk[-1] not in neighbours(space, start, 1), "four steps lead past radius 1"
    # a long walk ends where no neighbour is predicted faster: here the optimum
    long = driver._walk(trace, space, 100, 0, start, seconds(start))
    assert 4 < len(long) < 100 and seconds(long[-1]) == pytest.approx(OPTIMUM)


def _far_point(space, point):
    """``point`` with every tile site's factors in its outermost level and every categorical
    site at its last choice (compute locations kept)."""
    far = {"tile": lambda site, d: (site.extent, *[1] * (len(d) - 1)),
           "categorical": lambda site, d: site.num_choices - 1}
    return tuple(far.get(site.kind, lambda site, d: d)(site, d) for site, d in zip(space.sites, point, strict=True))


def test_lookahead_reaches_the_optimum_in_fewer_trials():
    def trials_to_optimum(**options):
        strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=104, num_seeds=1, seed=3, **options)
        batches, _ = run(strategy, 2000, 32, cost_model=RecordingOracleModel())
        times = [t for b in batches for t in b]
        return next(i for i, t in enumerate(times) if t == pytest.approx(OPTIMUM)) + 1

    plain, walked = trials_to_optimum(), trials_to_optimum(lookahead=4)
    assert walked < plain, (walked, plain)


def _descent_times(explore_trials: int, model=None, **options):
    """(time, its centre's time, results seen before its batch, scored neighbours measured before
    it) of every descent candidate of a run with ``model`` (default the oracle), and the task state."""
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=explore_trials, num_seeds=1, seed=3,
                                        **options)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(2000, 32, ctx.generate_design_space(), None, model or RecordingOracleModel())
    state, out = strategy._state, []
    while (cands := ctx.generate_measure_candidates()) is not None:
        if state.batch_kind == "descent" and state.descents.in_flight:
            centre = next(iter(state.descents.in_flight.values())).droplet.best_time
            seen, scored = state.sent - len(cands), sum(map(len, state.descents.agreement))
            out += [(synthetic_seconds(c.sch), centre, seen, scored) for c in cands]
        ctx.notify_runner_results(cands, landscape(cands))
    ctx.post_tuning()
    return out, state


def test_model_cut_measures_no_neighbour_scored_far_below_its_centre_once_the_model_has_trained():
    def descent_times(explore_trials, **options):
        return _descent_times(explore_trials, **options)[0]

    plain, cut = descent_times(104), descent_times(104, model_cut=0.5)
    # the oracle's score is 1 / time: a cut at 0.5 skips every neighbour over twice its centre's time
    assert max(t / c for t, c, *_ in cut) <= 2.0 + 1e-9
    assert max(t / c for t, c, *_ in plain) > 2.0, "without the cut the descent measures such neighbours"
    assert min(t for t, *_ in cut) == pytest.approx(OPTIMUM) and len(cut) < len(plain)

    def early(times):
        return [x for x in times if x[2] < 100]

    # before the model has seen 100 results it cuts nothing: the same batches as without the option
    assert early(descent_times(16, model_cut=0.5)) == early(descent_times(16)) != []


@derived_object
class ScrambledModel(_FixedModel):
    """A fault injected: a cost model whose scores have nothing to do with the run times (a fixed
    pseudo-random number per schedule)."""

    def predict(self, context, candidates) -> np.ndarray:
        return np.asarray([1.0 + module_key(c.sch.mod) % 1000 for c in candidates], dtype=float)


def test_model_cut_trust_lets_the_cut_act_only_where_the_model_ranks_measured_neighbours_well():
    # the oracle ranks perfectly: the cut waits for 32 scored neighbours, then skips as without trust
    gated, _ = _descent_times(104, model_cut=0.5, model_cut_trust=0.4)
    plain = _descent_times(104)[0]
    waiting = [x[:3] for x in gated if x[3] < 32]
    assert waiting == [x[:3] for x in plain[:len(waiting)]] != [], "before the evidence: batches as without a cut"
    assert max(t / c for t, c, _, scored in gated if scored >= 32) <= 2.0 + 1e-9, "then the cut acts"
    assert max(t / c for t, c, *_ in plain[len(waiting):]) > 2.0
    assert min(t for t, *_ in gated) == pytest.approx(OPTIMUM)
    # scores at random: ungated, the cut skips neighbours (other batches); gated, it never acts
    plain = _descent_times(104, ScrambledModel())[0]
    assert _descent_times(104, ScrambledModel(), model_cut=0.5)[0] != plain
    gated, state = _descent_times(104, ScrambledModel(), model_cut=0.5, model_cut_trust=0.4)
    assert [x[:3] for x in gated] == [x[:3] for x in plain] and sum(map(len, state.descents.agreement)) >= 32


def _confirmed_run(confirm: bool | str, second_draw: float, sure_gain: float | None = None):
    """(batches of schedule keys, batches of times, task state) of a run in which every schedule
    measured again takes ``second_draw`` times its landscape time (a fault injected: a lucky
    first draw when above 1). Every move is confirmed unless ``sure_gain`` is given."""
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=1, seed=1,
                                        confirm_moves=confirm, sure_gain=sure_gain)
    seen: set[int] = set()

    def answer(cands):
        secs = [synthetic_seconds(c.sch) * (second_draw if module_key(c.sch.mod) in seen else 1.0) for c in cands]
        seen.update(module_key(c.sch.mod) for c in cands)
        return [ms.runner.RunnerResult([t] * 2, None) for t in secs]

    keys = []
    times, state = run(strategy, 2000, 32, keys=keys, answer=answer)
    return keys, times, state


def _moves(state) -> int:
    return sum(len(d.droplet.accepted) for d in state.descents.done + state.descents.active)


def _measured_again(keys) -> int:
    """Batches that measured one schedule measured before."""
    return sum(len(batch) == 1 and batch[0] in {k for b in keys[:i] for k in b} for i, batch in enumerate(keys))


def test_confirm_moves_measures_each_faster_point_again_before_the_descent_moves_there():
    keys, times, state = _confirmed_run(confirm=True, second_draw=1.0)
    assert min(t for b in times for t in b) == pytest.approx(OPTIMUM), "the descent still reaches the optimum"
    assert _moves(state) == _measured_again(keys) >= 2, "each move came after a batch that measured its point again"
    # a point whose second measurement is slower (its first was luck) is never moved to
    keys, _, lucky = _confirmed_run(confirm=True, second_draw=1.5)
    assert _moves(lucky) == 0 and lucky.descents.started == 1
    assert _measured_again(keys) >= 1, "faster points were found, and measured again"
    _, plain_times, plain = _confirmed_run(confirm=False, second_draw=1.5)
    assert _moves(plain) >= 2 and min(t for b in plain_times for t in b) == pytest.approx(OPTIMUM)


@pytest.mark.parametrize("confirm", ["retime", "both"])
def test_retime_and_both_measure_each_seed_again_and_still_move_past_lucky_first_draws(confirm):
    """retime: the seed and every centre measured again, moves made at once; both: the seed and
    every move's point measured again before the move."""
    keys, times, state = _confirmed_run(confirm=confirm, second_draw=1.0)
    assert min(t for b in times for t in b) == pytest.approx(OPTIMUM), "the descent reaches the optimum"
    moves = _moves(state)
    assert moves >= 2 and _measured_again(keys) == moves + state.descents.started, "each seed and each move"
    # second measurements 1.5x the first (lucky first draws): True compared them with the seed's
    # lucky time and made no move (above); timed by its second draw, the seed is passed
    _, lucky_times, lucky = _confirmed_run(confirm=confirm, second_draw=1.5)
    assert _moves(lucky) >= 2 and min(t for b in lucky_times for t in b) == pytest.approx(OPTIMUM)
    centre = lucky.descents.active[0] if lucky.descents.active else lucky.descents.done[0]
    assert centre.droplet.best_time == pytest.approx(1.5 * OPTIMUM), "its time is the second measurement's"


def test_a_sure_gain_moves_past_lucky_first_draws_at_once_and_times_the_new_centre_again():
    """Second measurements 1.5x the first: with ``True`` no move is confirmed (above); a gain above
    ``sure_gain`` (the default's 0.1) is moved to without one, and each such centre is measured again after."""
    keys, times, state = _confirmed_run(True, 1.5, sure_gain=0.1)
    moves = _moves(state)
    assert moves >= 2 and min(t for b in times for t in b) == pytest.approx(OPTIMUM)
    assert _measured_again(keys) >= moves, "each centre moved to at once is measured again"
    # a threshold no step of the landscape reaches: every faster point is confirmed, as with True
    keys, _, strict = _confirmed_run(True, 1.5, sure_gain=0.99)
    assert _moves(strict) == 0 and _measured_again(keys) >= 1


def _first_descent_donors(cost_model):
    """(donor points of the first descent, the points of the 3 fastest other explored schedules of
    its seed's design space, its centre)."""
    ctx, state = _at_first_descent_batch(cost_model, 104, donors=3)
    descent = state.descents.active[0]
    positions = [site.position for site in descent.droplet.space.sites]
    same = sorted((m.samples[0], key) for key, m in state.measured.items()
                  if structure(m.trace) == descent.structure)[1:4]  # the seed is the fastest
    expected = [read_point(state.measured[key].trace, positions) for _, key in same]
    droplet = descent.droplet
    ctx.post_tuning()
    return droplet.donors, expected, droplet.center


def test_donors_are_the_fastest_other_schedules_of_the_seeds_space_once_the_model_ranks():
    donors, expected, centre = _first_descent_donors(RecordingOracleModel())
    assert len(donors) == 3 and donors == [p for p in expected if p != centre]
    # not ranked by a model, the donor moves would crowd the one-site moves out, as two-site ones would
    assert _first_descent_donors(None)[0] == []


def test_several_descents_share_each_batch_and_reach_the_optimum():
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=3, descents_per_batch=3, seed=1)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(4000, 32, ctx.generate_design_space(), None, None)
    state = strategy._state
    owners, times = [], []
    while (cands := ctx.generate_measure_candidates()) is not None:
        owners.append([p.descent for p in state.pending])
        results = landscape(cands)
        ctx.notify_runner_results(cands, results)
        times += [float(r.run_secs[0]) for r in results]
    ctx.post_tuning()
    descent_batches = [o for o in owners if any(o)]
    assert max(len(set(o)) for o in descent_batches) == 3, "three descents in one batch"
    # an equal part each: the first of three descents in a batch takes at most a third of its 32
    assert all(o.count(o[0]) <= 10 for o in descent_batches if len(set(o)) == 3)
    assert min(times) == pytest.approx(OPTIMUM)
    assert state.descents.seeds_used == 3 and len(times) < 4000


def _first_two_descents(diverse: bool):
    """(fastest explored time, fastest explored per design space, (structure, seed time) of the
    two descents that start right after a 16-trial exploration)."""
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=2, descents_per_batch=2,
                                        diverse_seeds=diverse, seed=2)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(300, 32, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()
    ctx.notify_runner_results(cands, landscape(cands))
    state = strategy._state
    best: dict[tuple[str, ...], float] = {}
    for m in state.measured.values():
        shape = structure(m.trace)
        best[shape] = min(best.get(shape, math.inf), m.samples[0])
    ctx.generate_measure_candidates()
    seeds = [(d.structure, d.droplet.center_samples[0]) for d in state.descents.active]
    ctx.post_tuning()
    return min(best.values()), best, seeds


def test_diverse_seeds_descend_a_second_design_space_beside_the_first():
    fastest, best, seeds = _first_two_descents(diverse=False)
    assert len(seeds) == 2 and seeds[0][1] == fastest
    assert seeds[1][0] == seeds[0][0], "by default both descents start in the fastest schedule's design space"
    others = {s: t for s, t in best.items() if s != seeds[0][0] and t <= 1.2 * fastest}
    assert others, "another design space is within 1.2 times the fastest: diverse seeds have a choice"

    fastest, best, seeds = _first_two_descents(diverse=True)
    assert seeds[0][1] == fastest
    # the second descent starts from the fastest schedule of the closest other design space
    assert seeds[1][0] != seeds[0][0]
    assert seeds[1][1] == min(others.values())


def test_a_descent_screens_a_whole_batch_worth_of_a_radius_before_it_grows():
    # a flat landscape: no neighbour is ever faster, so only the screening depth decides the radius
    flat = [ms.runner.RunnerResult([1e-4] * 2, None)]
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=8, num_seeds=4, descents_per_batch=4, seed=6)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(4000, 16, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()  # the exploration
    ctx.notify_runner_results(cands, flat * len(cands))
    first = None
    radii = []
    for _ in range(4):
        cands = ctx.generate_measure_candidates()
        pending = strategy._state.pending
        first = first or next(d for d in strategy._state.descents.active if d.number == pending[0].descent)
        radii.append((first.droplet.radius, sum(p.descent == first.number for p in pending)))
        ctx.notify_runner_results(cands, flat * len(cands))
    ctx.post_tuning()
    share = radii[0][1]
    assert share == 4, "16 candidates shared by 4 descents"
    # 16 neighbours (a lone descent's batch) are screened at radius 1 in four batches of 4, then it grows
    assert [r for r, _ in radii] == [1, 1, 1, 1] and first.droplet.radius == 2


def test_a_smaller_descent_batch_moves_after_a_few_neighbours_and_still_reaches_the_optimum():
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=16, num_seeds=1, descent_batch=4, seed=1)
    batches, _ = run(strategy, 2000, 32)
    assert len(batches[0]) == 16, "the exploration (16 trials, one batch) keeps its own batch size"
    descent_sizes = [len(b) for b in batches[1:]]
    assert max(descent_sizes) == 4 and len(descent_sizes) > 10
    assert min(t for b in batches for t in b) == pytest.approx(OPTIMUM)


def test_a_smaller_descent_batch_still_screens_a_full_batch_of_a_radius_before_it_grows():
    flat = [ms.runner.RunnerResult([1e-4] * 2, None)]  # no neighbour is ever faster
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=8, num_seeds=1, descent_batch=4, seed=6)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(4000, 16, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()  # the exploration
    ctx.notify_runner_results(cands, flat * len(cands))
    radii = []
    for _ in range(5):
        cands = ctx.generate_measure_candidates()
        descent = strategy._state.descents.active[0]
        radii.append((descent.droplet.radius, len(cands)))
        ctx.notify_runner_results(cands, flat * len(cands))
    ctx.post_tuning()
    # 16 neighbours (one per_iter batch) screened at radius 1 in batches of 4, then radius 2
    assert radii[:4] == [(1, 4)] * 4 and radii[4][0] == 2


def _descent_timeouts_with_two_site_moves(singles_first: str) -> tuple[int, float]:
    """Timed-out descent candidates and the best time reached, where (injected fault) every
    schedule with unroll index 1 "times out" in the builder; the oracle model ranks two-site moves
    in (104 exploration results), and some of them hold unroll -> 1."""
    timeout = ms.runner.RunnerResult(None, "LocalBuilder: Timeout, killed after 30.0 seconds")
    strategy = ms_droplet.DropletSearch(**ENDING_EARLY, explore_trials=104, num_seeds=2, seed=5,
                                        singles_first=singles_first)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(2000, 32, ctx.generate_design_space(), None, RecordingOracleModel())
    state = strategy._state
    timeouts, best = 0, math.inf
    while (cands := ctx.generate_measure_candidates()) is not None:
        results = [timeout if _unroll_index(c.sch) == 1 else r for c, r in zip(cands, landscape(cands), strict=True)]
        timeouts += sum(1 for p, r in zip(state.pending, results, strict=True) if p.descent and r.error_msg)
        best = min([best] + [float(r.run_secs[0]) for r in results if not r.error_msg])
        ctx.notify_runner_results(cands, results)
    ctx.post_tuning()
    assert state.descents.singles_first == (singles_first != "never")
    return timeouts, best


def test_after_a_timeout_a_part_is_measured_alone_before_the_two_site_moves_that_hold_it():
    plain, plain_best = _descent_timeouts_with_two_site_moves("never")
    careful, careful_best = _descent_timeouts_with_two_site_moves("after_timeout")
    assert careful < plain, (careful, plain)
    assert careful_best == pytest.approx(OPTIMUM) and plain_best == pytest.approx(OPTIMUM)


def test_explore_every_alternates_batches_then_spends_the_budget_exploring():
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=16, num_seeds=1, explore_every=2, seed=1)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(600, 32, ctx.generate_design_space(), None, None)
    state = strategy._state
    kinds, times = [], []
    while (cands := ctx.generate_measure_candidates()) is not None:
        kinds.append(state.batch_kind)
        results = landscape(cands)
        times += [float(r.run_secs[0]) for r in results]
        ctx.notify_runner_results(cands, results)
    ctx.post_tuning()
    assert len(times) == 600, "with the descents done, the exploration spends the budget"
    assert kinds[0] == "explore"
    # while a descent runs, every second batch after the first exploration explores aside
    assert kinds[1:7] == ["descent", "side"] * 3
    assert kinds[-1] == "side" and kinds.count("descent") >= 5
    assert min(times) == pytest.approx(OPTIMUM), "the descent still walks to the optimum"


def _tune_with_a_side_find(budget: int, **options) -> tuple[list[str], dict[int, float], int]:
    """(each batch's kind, each descent's first centre time, trials sent) of a replay-explored
    run with ``num_seeds=1`` where (injected fault) the first side batch's first schedule runs
    ten times faster than the optimum."""
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=16, num_seeds=1, seed=1, **options)
    ctx = make_context(matmul_mod(), target_cpu(), strategy)
    ctx.pre_tuning(budget, 32, ctx.generate_design_space(), None, None)
    state = strategy._state
    kinds, starts, injected = [], {}, False
    while (cands := ctx.generate_measure_candidates()) is not None:
        kinds.append(state.batch_kind)
        for d in state.descents.active:
            starts.setdefault(d.number, d.droplet.best_time)
        results = landscape(cands)
        if state.batch_kind == "side" and not injected:
            results[0] = ms.runner.RunnerResult([OPTIMUM / 10] * 2, None)
            injected = True
        ctx.notify_runner_results(cands, results)
    ctx.post_tuning()
    assert injected
    return kinds, starts, state.sent


def test_a_descent_gives_way_when_the_side_exploration_beats_its_centre():
    _, first_centre, _ = _tune_with_a_side_find(400, explore_every=2)
    assert first_centre[1] > OPTIMUM, "the first descent starts from an explored schedule"
    assert first_centre[2] == pytest.approx(OPTIMUM / 10), "num_seeds=1, yet a descent starts from the find"


def test_explore_rest_explores_only_once_the_descents_are_done_and_descends_from_a_faster_find():
    kinds, starts, sent = _tune_with_a_side_find(600)  # the default: explore_rest=True, num_seeds=1
    first_side = kinds.index("side")
    assert kinds[0] == "explore" and set(kinds[1:first_side]) == {"descent"}, "no exploring while descent 1 runs"
    assert sent == 600, "the task does not end early: the rest of the budget is explored"
    assert starts[2] == pytest.approx(OPTIMUM / 10), "num_seeds=1, yet a descent starts from the find"
    assert kinds[-1] == "side"
    # spend_budget's refills come only after the continued exploration: here it spends everything
    assert _tune_with_a_side_find(600, spend_budget=True) == (kinds, starts, sent)


def test_explore_every_must_be_zero_or_at_least_two():
    for bad in (1, -1, 2.0, True):
        with pytest.raises(ValueError, match="explore_every"):
            ms_droplet.DropletSearch(explore_every=bad)


def _first_descent_serial_moves(**options):
    """(the first descent batch's points, its pinned serial moves, whether each of them and the
    centre runs a parallel loop, the centre) with ``options``."""
    from ms_droplet.trace import has_parallel_loop, replay, with_point

    ctx, state = _at_first_descent_batch(None, 16, **options)
    descent = state.descents.active[0]
    droplet = descent.droplet
    parallel = {}
    for point in [droplet.center, *droplet.pinned]:
        sch = replay(ctx.mod, with_point(descent.trace, droplet.space, point), state.postprocs, 1)
        parallel[point] = has_parallel_loop(sch.mod)
    batch = [p.point for p in state.pending if p.point is not None]
    pinned = droplet.pinned | {p for p in batch if p in droplet._serial()}  # those measured are visited
    ctx.post_tuning()
    return batch, pinned, parallel, droplet.center


def test_serial_moves_are_measured_from_a_centre_with_a_parallel_loop_fast_enough():
    batch, pinned, parallel, centre = _first_descent_serial_moves(serial_move=True)
    assert parallel[centre], "the seed runs a parallel loop (the landscape's optimum tiles have outer factors 2)"
    assert 1 <= len(pinned) <= 4 and pinned <= set(batch)  # (a batch that cannot hold all takes them first)
    assert not any(parallel[p] for p in pinned)
    # "auto": only a centre under 20 us looks for them (this landscape's schedules take 100 us or more)
    auto_batch, auto_pinned, _, _ = _first_descent_serial_moves(serial_move="auto")
    assert auto_pinned == set() and auto_batch == [p for p in batch if p not in pinned]
    off_batch, off_pinned, _, _ = _first_descent_serial_moves(serial_move=False)
    assert off_pinned == set() and off_batch == auto_batch  # "auto" above 20 us: as off


def transpose_mod(n: int = 16):
    """A workload whose design space holds one schedule, with no decision (like the transformer's
    transposes)."""
    from tvm import te

    a = te.placeholder((n, n), name="A")
    b = te.compute((n, n), lambda i, j: a[j, i], name="B")
    return tvm.IRModule({"main": te.create_prim_func([a, b])})


def _first_batches(mod, database=None, explore_trials=16, **options):
    """(the keys of each batch of a tuning of ``mod`` on the synthetic landscape, the key of the
    workload as written) with ``options``; 64 trials, batches of 32."""
    from ms_droplet.trace import replay, unscheduled_trace

    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=explore_trials, num_seeds=1, seed=5,
                                        **options)
    batches = []
    _, state = run(strategy, 64, 32, database=database, mod=mod, keys=batches)
    plain = module_key(replay(mod, unscheduled_trace(mod), state.postprocs, 1).mod)
    return batches, plain


def test_a_small_task_measures_its_workload_as_written_once_in_its_first_batch():
    from ms_droplet.workloads import flop_count

    small, big = matmul_mod(32), matmul_mod(64)
    assert flop_count(small) < ms_droplet.strategy.UNSCHEDULED_FLOPS < flop_count(big)
    batches, plain = _first_batches(small)  # "auto", the default
    assert batches[0][0] == plain and len(batches[0]) == 16, "one of the exploration's 16 trials"
    assert all(plain not in b for b in batches[1:])
    # an exploration of one trial keeps it: the workload as written is measured beside it
    tiny, _ = _first_batches(small, explore_trials=1)
    assert len(tiny[0]) == 2 and tiny[0][0] == plain
    big_batches, big_plain = _first_batches(big)
    assert all(big_plain not in b for b in big_batches)
    assert _first_batches(big, unscheduled=True)[0][0][0] == big_plain
    assert all(plain not in b for b in _first_batches(small, unscheduled=False)[0])
    # a design space of one schedule: that schedule and the workload as written, then done
    one, one_plain = _first_batches(transpose_mod())
    assert len(one) == 1 and len(one[0]) == 2 and one[0][0] == one_plain
    # resumed from a database that holds it: not measured again
    db = ms.database.MemoryDatabase()
    _first_batches(small, database=db)
    again, _ = _first_batches(small, database=db)
    assert again and all(plain not in b for b in again)


def test_the_workload_as_written_is_not_measured_twice_when_the_design_space_is_it():
    # a space generator without rules: its one schedule is the workload as written
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=16, num_seeds=1, seed=5, unscheduled=True)
    keys = []
    run(strategy, 64, 32, mod=transpose_mod(), keys=keys,
        space_generator=ms.space_generator.PostOrderApply(sch_rules=[], postprocs=[], mutator_probs={}))
    assert sum(len(k) for k in keys) == 1  # one schedule, measured once


class _WarmingOracle(_FixedModel):
    """A cost model standing in for xgb's: scores at random until it has been given ``after``
    results, then knows the landscape (score = 1 / time); counts the results it was given and
    the candidates it scored."""

    def __init__(self, after: int) -> None:
        self.after, self.seen, self.asked = after, 0, 0
        self.rng = np.random.default_rng(0)

    def update(self, context, candidates, results) -> None:
        assert len(candidates) == len(results)
        self.seen += len(results)

    def predict(self, context, candidates) -> np.ndarray:
        self.asked += len(candidates)
        if self.seen < self.after:
            return self.rng.uniform(size=len(candidates))
        return np.asarray([1.0 / synthetic_seconds(c.sch) for c in candidates])


WarmingOracle = derived_object(_WarmingOracle)


def _explored(monkeypatch, early_model: int | None, shared: int = 1000):
    """24 trials of evolutionary exploration in batches of 8; the run's cost model ranks once it
    has seen ``shared`` results (then it knows the landscape; a fault injected, as is the early
    model); returns the batches' times, the early model made (if any) and the run's model."""
    made = []

    def make(after: int, num_threads: int):
        made.append(WarmingOracle(after))
        return made[-1]

    monkeypatch.setattr(ms_droplet.strategy, "early_model", make)
    monkeypatch.setattr(ms_droplet.explore, "COST_MODEL_WARMUP", shared)
    model = WarmingOracle(shared)

    def answer(candidates):  # as the task scheduler does, the run's model learns every batch
        results = landscape(candidates)
        model._inst.update(None, candidates, results)
        return results

    strategy = ms_droplet.DropletSearch(explore="evolutionary", explore_trials=24, early_model=early_model, seed=3,
                                        unscheduled=False)
    batches, _ = run(strategy, 24, 8, database=ms.database.MemoryDatabase(), cost_model=model, answer=answer)
    return batches, made, model


def test_early_model_ranks_the_exploration_until_the_runs_cost_model_does(monkeypatch):
    # the run's model never ranks (its warm-up, 1000 results here, is out of reach): every batch is random
    plain, made, model = _explored(monkeypatch, None)
    assert not made and model.asked > 0
    # an early model from 8 results, the run's from 16 (on a model, every task's results count)
    early, made, model = _explored(monkeypatch, 8, shared=16)
    before = [n for n in np.cumsum([len(b) for b in early]) if n < 16]  # results before the run's model ranks
    assert made[0].seen == before[-1] >= 8, "trained on every batch measured before the run's model ranked"
    assert made[0].asked > 0 and model.asked > 0
    median = [float(np.median(np.concatenate(b[1:]))) for b in (plain, early)]
    assert median[1] < 0.7 * median[0], f"ranked batches no faster: {median}"
