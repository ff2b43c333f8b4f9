"""DropletSearch driven by hand through a TuneContext, as MetaSchedule's own strategy tests do.

Candidates are built and run by the real builder and runner unless a test says it injects a
fault or replays recorded run times.
"""

from __future__ import annotations

import pytest
from conftest import make_context, matmul_mod, measure, measured_twice_unasked, recorded_run_times
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

import ms_droplet
from ms_droplet.trace import module_key


def drive(ctx, max_trials, per_iter, fn_measure, database=None, cost_model=None):
    """Run the generate/notify loop; return the batches of module keys."""
    ctx.pre_tuning(max_trials, per_iter, ctx.generate_design_space(), database, cost_model)
    batches = []
    while (cands := ctx.generate_measure_candidates()) is not None:
        assert cands, "an empty batch should never be handed out"
        results = fn_measure(cands)
        if database is not None:
            wl = database.commit_workload(ctx.mod)
            for c, r in zip(cands, results, strict=False):
                database.commit_tuning_record(
                    ms.database.TuningRecord(c.sch.trace, wl, r.run_secs, ctx.target, c.args_info)
                )
        ctx.notify_runner_results(cands, results)
        batches.append([module_key(c.sch.mod) for c in cands])
    ctx.post_tuning()
    return batches


def test_batches_add_up_to_max_trials_without_database_or_cost_model(target, builder, runner):
    ctx = make_context(matmul_mod(), target, ms_droplet.DropletSearch(explore_trials=10))
    batches = drive(ctx, 20, 8, lambda c: measure(c, target, builder, runner))
    sizes = [len(b) for b in batches]
    assert sum(sizes) == 20
    assert all(1 <= s <= 8 for s in sizes)
    assert not measured_twice_unasked(batches), "a schedule was measured twice"


@derived_object
class AlwaysFailingPostproc(ms.postproc.PyPostproc):
    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch) -> bool:
        return False

    def clone(self):
        return AlwaysFailingPostproc()


def test_injected_postproc_that_always_fails_ends_in_none(target):
    ctx = make_context(
        matmul_mod(), target, ms_droplet.DropletSearch(max_fail_count=2), postprocs=[AlwaysFailingPostproc()]
    )
    ctx.pre_tuning(16, 8, ctx.generate_design_space(), None, None)
    assert ctx.generate_measure_candidates() is None
    ctx.post_tuning()


def _record_of_another_workload(target):
    """A real trace of a conv2d: its blocks do not exist in a matmul, so it cannot replay there."""
    from ms_droplet.workloads import get_workload

    conv = get_workload("conv2d").mod
    ctx = make_context(conv, target, "replay-trace")
    ctx.pre_tuning(1, 1, ctx.generate_design_space(), None, None)
    cand = ctx.generate_measure_candidates()[0]
    return cand.sch.trace


def test_invalid_trace_in_database_is_skipped(target, builder, runner):
    mod = matmul_mod()
    db = ms.database.MemoryDatabase()
    wl = db.commit_workload(mod)
    good_ctx = make_context(mod, target, "replay-trace")
    good_ctx.pre_tuning(1, 1, good_ctx.generate_design_space(), None, None)
    good = good_ctx.generate_measure_candidates()[0]
    for trace, secs in ((good.sch.trace, [1e-5, 1e-5]), (_record_of_another_workload(target), [1e-6])):
        db.commit_tuning_record(ms.database.TuningRecord(trace, wl, secs, target, good.args_info))

    strategy = ms_droplet.DropletSearch(explore_trials=4)
    ctx = make_context(mod, target, strategy)
    batches = drive(ctx, 12, 4, lambda c: measure(c, target, builder, runner), database=db)
    assert sum(len(b) for b in batches) == 12
    assert module_key(good.sch.mod) not in {k for b in batches for k in b}


def test_runner_errors_injected_are_never_credited_to_another_candidate(target, builder, runner):
    strategy = ms_droplet.DropletSearch(explore_trials=8)
    ctx = make_context(matmul_mod(), target, strategy)
    ctx.pre_tuning(16, 8, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()
    results = measure(cands, target, builder, runner)
    failed = {0, 3, 5}
    for i in failed:
        results[i] = ms.runner.RunnerResult(None, "injected runner error")
    ctx.notify_runner_results(cands, results)
    measured = strategy._state.measured
    for i, (cand, res) in enumerate(zip(cands, results, strict=False)):
        entry = measured[module_key(cand.sch.mod)]
        if i in failed:
            assert entry.samples is None
        else:
            assert entry.samples == tuple(float(x) for x in res.run_secs)
    # the search goes on from the candidates that did run
    assert ctx.generate_measure_candidates()
    ctx.post_tuning()


def test_mismatched_results_are_refused(target, builder, runner):
    ctx = make_context(matmul_mod(), target, ms_droplet.DropletSearch(explore_trials=4))
    ctx.pre_tuning(8, 4, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()
    with pytest.raises(ValueError, match="4 candidates were handed out but 3 candidates and 3 results"):
        ctx.notify_runner_results(cands[:3], measure(cands[:3], target, builder, runner))
    ctx.post_tuning()


def test_same_seed_andrecorded_run_times_give_the_same_candidates(target):
    def sequence(seed):
        ctx = make_context(matmul_mod(), target, ms_droplet.DropletSearch(explore_trials=8, seed=seed))
        return drive(ctx, 40, 8, recorded_run_times)

    first, again, other = sequence(11), sequence(11), sequence(12)
    assert first == again
    assert first != other
    assert sum(len(b) for b in first) == 40


def test_spend_budget_explores_again_instead_of_ending_early(target):
    def run(spend):
        strategy = ms_droplet.DropletSearch(explore_trials=8, num_seeds=1, explore_rest=False, spend_budget=spend,
                                            seed=3)
        batches = drive(make_context(matmul_mod(), target, strategy), 160, 8, recorded_run_times)
        return sum(len(b) for b in batches), measured_twice_unasked(batches)

    ended_early, _ = run(False)
    spent, twice = run(True)
    assert ended_early < 160, "one descent should end the task early: nothing to compare"
    assert spent == 160 and not twice


def test_schedules_in_the_database_are_never_measured_again(target):
    mod = matmul_mod()
    db = ms.database.MemoryDatabase()
    first = drive(make_context(mod, target), 24, 8, recorded_run_times, database=db)
    second = drive(make_context(mod, target, seed=8), 24, 8, recorded_run_times, database=db)
    seen = {k for b in first for k in b}
    assert any(second), "the resumed run measured nothing"
    # only a move's confirmation, alone in its batch, measures a schedule of the database again
    assert not measured_twice_unasked(second, before=seen)


def test_explore_evolutionary_needs_database_and_cost_model(target):
    ctx = make_context(matmul_mod(), target, ms_droplet.DropletSearch(explore="evolutionary"))
    with pytest.raises(ValueError, match="needs a database and a cost model"):
        ctx.pre_tuning(8, 4, ctx.generate_design_space(), None, None)


def test_explore_evolutionary_with_database_and_cost_model(target):
    db = ms.database.MemoryDatabase()
    ctx = make_context(matmul_mod(), target, ms_droplet.DropletSearch(explore="evolutionary", explore_trials=8))
    batches = drive(ctx, 16, 8, recorded_run_times, database=db, cost_model=ms.cost_model.RandomModel())
    assert sum(len(b) for b in batches) == 16
    assert not measured_twice_unasked(batches)


def test_explore_every_by_evolutionary_search_keeps_to_the_budget(target):
    # the continued exploration's inner EvolutionarySearch was given more trials than the descent
    # batches between its own leave: the strategy, not it, must cut its last batch to the budget
    db = ms.database.MemoryDatabase()
    strategy = ms_droplet.DropletSearch(explore="evolutionary", explore_trials=8, explore_every=2, seed=2)
    ctx = make_context(matmul_mod(), target, strategy)
    batches = drive(ctx, 45, 8, recorded_run_times, database=db, cost_model=ms.cost_model.RandomModel())
    assert sum(len(b) for b in batches) == 45
    assert not measured_twice_unasked(batches)


@pytest.mark.parametrize(
    ("max_trials", "with_model", "source"),
    [(60, True, "replay"), (198, True, "replay"), (200, True, "evolutionary"), (400, False, "replay")],
)
def test_auto_explores_by_evolutionary_search_only_past_the_cost_model_warm_up(target, max_trials, with_model, source):
    # xgb scores at random for its first 100 results: a shorter exploration replays instead.
    strategy = ms_droplet.DropletSearch()
    ctx = make_context(matmul_mod(), target, strategy)
    db, model = (ms.database.MemoryDatabase(), ms.cost_model.RandomModel()) if with_model else (None, None)
    ctx.pre_tuning(max_trials, 8, ctx.generate_design_space(), db, model)
    assert strategy._state.explore_source == source
    ctx.post_tuning()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"explore_trials": -1}, "explore_trials must be an integer >= 0, got -1"),
        ({"explore_trials": 2.5}, "explore_trials must be an integer >= 0, got 2.5"),
        ({"explore_trials": True}, "explore_trials must be an integer >= 0, got True"),
        ({"explore_fraction": 0}, r"explore_fraction must be a number in \(0, 1\], got 0"),
        ({"explore_fraction": 1.5}, r"explore_fraction must be a number in \(0, 1\], got 1.5"),
        ({"explore_fraction": "half"}, "explore_fraction must be a number in .*'half'"),
        ({"explore": "storm"}, "explore must be one of .*'storm'"),
        ({"p_value": 0}, r"p_value must be a number in \(0, 1\], got 0"),
        ({"p_value": 2}, r"p_value must be a number in \(0, 1\], got 2"),
        ({"num_seeds": 0}, "num_seeds must be an integer >= 1, got 0"),
        ({"max_fail_count": 0}, "max_fail_count must be an integer >= 1, got 0"),
        ({"seed": -3}, "seed must be an integer >= 0 or None, got -3"),
        ({"seed": "x"}, "seed must be an integer >= 0 or None, got 'x'"),
        ({"seed": 1.0}, "seed must be an integer >= 0 or None, got 1.0"),
        ({"explore_trials": None}, "explore_trials must be an integer >= 0, got None"),
        ({"explore": None}, "explore must be one of .*None"),
        ({"p_value": float("nan")}, r"p_value must be a number in \(0, 1\], got nan"),
        ({"p_value": "0.05"}, r"p_value must be a number in \(0, 1\], got '0.05'"),
        ({"num_seeds": "3"}, "num_seeds must be an integer >= 1, got '3'"),
        ({"max_fail_count": 1.5}, "max_fail_count must be an integer >= 1, got 1.5"),
        ({"paired": 1}, "paired must be True or False, got 1"),
        ({"paired": "yes"}, "paired must be True or False, got 'yes'"),
        ({"descent_batch": 0}, "descent_batch must be an integer >= 1 or None, got 0"),
        ({"descent_batch": "8"}, "descent_batch must be an integer >= 1 or None, got '8'"),
        ({"fill_batch": 0}, "fill_batch must be an integer >= 1, got 0"),
        ({"max_radius": 0}, "max_radius must be an integer >= 1 or None, got 0"),
        ({"max_radius": 1.5}, "max_radius must be an integer >= 1 or None, got 1.5"),
        ({"lookahead": -1}, "lookahead must be an integer >= 0, got -1"),
        ({"lookahead": True}, "lookahead must be an integer >= 0, got True"),
        ({"confirm_moves": "yes"}, "confirm_moves must be True, False, 'retime' or 'both', got 'yes'"),
        ({"sure_gain": 1}, r"sure_gain must be a number in \(0, 1\) or None, got 1"),
        ({"sure_gain": 0}, r"sure_gain must be a number in \(0, 1\) or None, got 0"),
        ({"sure_gain": "0.1"}, r"sure_gain must be a number in \(0, 1\) or None, got '0.1'"),
        ({"model_cut": 1}, r"model_cut must be a number in \(0, 1\) or None, got 1"),
        ({"model_cut": True}, r"model_cut must be a number in \(0, 1\) or None, got True"),
        ({"model_cut": 0.5, "model_cut_trust": 1.5}, r"model_cut_trust must be a number in \[-1, 1\] or None, got 1.5"),
        ({"model_cut_trust": 0.4}, r"model_cut_trust=0.4 gates model_cut, which is None; set model_cut too"),
        ({"early_model": 0}, "early_model must be an integer >= 1 or None, got 0"),
        ({"early_model": 32.0}, "early_model must be an integer >= 1 or None, got 32.0"),
        ({"avoid_timed_out_moves": 0}, "avoid_timed_out_moves must be True or False, got 0"),
        ({"diverse_seeds": "yes"}, "diverse_seeds must be True or False, got 'yes'"),
        ({"singles_first": True}, "singles_first must be one of .*True"),
        ({"singles_first": "sometimes"}, "singles_first must be one of .*'sometimes'"),
        ({"max_work_ratio": 0.5}, "max_work_ratio must be a number >= 1 or None, got 0.5"),
        ({"max_work_ratio": True}, "max_work_ratio must be a number >= 1 or None, got True"),
        ({"max_work_ratio": "1000"}, "max_work_ratio must be a number >= 1 or None, got '1000'"),
        ({"max_work_ratio": float("nan")}, "max_work_ratio must be a number >= 1 or None, got nan"),
        ({"min_gain": 1}, r"min_gain must be a number in \[0, 1\), got 1"),
        ({"min_gain": -0.1}, r"min_gain must be a number in \[0, 1\), got -0.1"),
        ({"min_gain": True}, r"min_gain must be a number in \[0, 1\), got True"),
        ({"explore_every": 1}, "explore_every must be 0 or an integer >= 2, got 1"),
        ({"explore_every": -2}, "explore_every must be 0 or an integer >= 2, got -2"),
        ({"explore_rest": 1}, "explore_rest must be True or False, got 1"),
        ({"donors": -1}, "donors must be an integer >= 0, got -1"),
        ({"donors": 2.0}, "donors must be an integer >= 0, got 2.0"),
        ({"serial_move": "yes"}, "serial_move must be True, False or 'auto', got 'yes'"),
        ({"serial_move": 1}, "serial_move must be True, False or 'auto', got 1"),
        ({"unscheduled": "on"}, "unscheduled must be True, False or 'auto', got 'on'"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ms_droplet.DropletSearch(**kwargs)


def test_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="radius"):
        ms_droplet.DropletSearch(radius=3)


def test_clone_keeps_options_and_drops_state():
    strategy = ms_droplet.DropletSearch(explore_trials=7, num_seeds=2, seed=5)
    # through the FFI (as the task scheduler calls it) a SearchStrategy comes back ...
    assert isinstance(strategy.clone(), ms.search_strategy.SearchStrategy)
    # ... made by the Python method, which keeps the options and no state
    clone = strategy._inst.clone()
    assert isinstance(clone, ms_droplet.DropletSearch)
    assert clone.options == strategy.options
    assert clone._state is None


def test_paired_descent_batch_ends_with_the_centre_and_a_failed_re_run_keeps_its_samples(target, builder, runner):
    strategy = ms_droplet.DropletSearch(explore="replay", explore_trials=4, paired=True, seed=5)
    ctx = make_context(matmul_mod(), target, strategy)
    ctx.pre_tuning(16, 4, ctx.generate_design_space(), None, None)
    explored = ctx.generate_measure_candidates()
    ctx.notify_runner_results(explored, measure(explored, target, builder, runner))
    state = strategy._state
    batch = ctx.generate_measure_candidates()
    assert len(batch) == 4
    # The last slot is the descent's centre, measured before: the one schedule sent again.
    assert [p.control for p in state.pending] == [False, False, False, True]
    centre = module_key(batch[-1].sch.mod)
    before = state.measured[centre].samples
    assert before is not None
    assert all(module_key(c.sch.mod) not in state.measured for c in batch[:-1])
    # Fault injected: the centre's re-run fails. It stays measured with its earlier samples.
    results = measure(batch, target, builder, runner)
    results[-1] = ms.runner.RunnerResult(None, "injected runner error")
    ctx.notify_runner_results(batch, results)
    assert state.measured[centre].samples == before
    assert ctx.generate_measure_candidates()
    ctx.post_tuning()
