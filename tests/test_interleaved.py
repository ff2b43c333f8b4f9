"""The interleaved runner (real builder, real kernels) and the paired acceptance rule."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_context, matmul_mod, matmul_relu_model, remeasured_on_purpose
from tvm.s_tir import meta_schedule as ms

import ms_droplet
from ms_droplet.descent import Droplet
from ms_droplet.interleaved import default_time, interleaved_runner
from ms_droplet.space import CATEGORICAL, DecisionSpace, Site
from ms_droplet.stats import is_faster, is_faster_paired
from ms_droplet.strategy import PAIRED_MIN_GAIN
from ms_droplet.trace import base_trace, module_key, replay

# --- the paired rule on recorded samples ---------------------------------------------------------


def test_paired_rule_sees_a_steady_gain_through_drift_that_welch_misses():
    # Five rounds of a machine whose speed drifts by +-30%; the neighbour is 5% faster in each.
    drift = [1.0, 1.3, 0.8, 1.2, 0.9]
    control = [1e-3 * d for d in drift]
    neighbour = [0.95e-3 * d for d in drift]
    assert is_faster_paired(neighbour, control, 0.05)
    assert not is_faster(neighbour, control, 0.05)
    # ... and a gain smaller than the floor is not a move.
    assert not is_faster_paired(neighbour, control, 0.05, min_gain=0.06)


def test_paired_rule_rejects_a_copy_and_a_slower_one():
    rng = np.random.default_rng(0)
    control = list(1e-3 * np.exp(rng.normal(0, 0.02, 5)))
    assert not is_faster_paired(control, control, 0.05)
    assert not is_faster_paired([c * 1.1 for c in control], control, 0.05)


@pytest.mark.parametrize(("a", "b"), [([1.0], [1.0]), ([1.0, 2.0], [1.0, 2.0, 3.0])])
def test_paired_rule_needs_equal_rounds(a, b):
    with pytest.raises(ValueError, match="paired comparison needs"):
        is_faster_paired(a, b)


def test_droplet_decides_on_pairs_when_a_control_is_given_and_takes_its_samples():
    space = DecisionSpace((Site(CATEGORICAL, 0, num_choices=3),))
    stale = (1e-3, 1e-3, 1e-3)  # the centre, measured in a fast stretch of an earlier batch
    drift = (1.5, 1.6, 1.4)  # this batch ran in a slow stretch
    control = tuple(1e-3 * d for d in drift)
    droplet = Droplet(space, (1,), stale)
    # Against the stale samples the neighbour looks slower; against its round partners it is 10% faster.
    assert droplet.observe({(0,): tuple(0.9e-3 * d for d in drift)}, control) == (0,)
    again = Droplet(space, (1,), stale)
    assert again.observe({(0,): tuple(1.0e-3 * d for d in drift)}, control) is None
    assert again.center_samples == control  # fresh samples replace the stale ones
    # A point measured in another batch is not a pair of this control, even with as many samples:
    # 10% faster than the control round by round, but slower than the centre's own samples (Welch).
    other = Droplet(space, (1,), stale)
    earlier = tuple(0.9e-3 * d for d in drift)
    assert other.observe({(0,): earlier}, control, beside_control=()) is None
    assert Droplet(space, (1,), stale).observe({(0,): earlier}, control, beside_control={(0,)}) == (0,)


# --- the runner, with real kernels -----------------------------------------------------------------


def _built(target, builder, sizes):
    """A runner input per matmul size (one random schedule each), built by the real builder."""
    inputs = []
    for n in sizes:
        mod = matmul_mod(n)
        ctx = make_context(mod, target, "replay-trace", seed=n)
        ctx.pre_tuning(1, 1, ctx.generate_design_space(), None, None)
        (cand,) = ctx.generate_measure_candidates()
        (built,) = builder.build([ms.builder.BuilderInput(cand.sch.mod, target)])
        assert built.error_msg is None, built.error_msg
        inputs.append(ms.runner.RunnerInput(built.artifact_path, "cpu", cand.args_info))
    return inputs


def _seconds(result) -> list[float]:
    return [float(getattr(x, "value", x)) for x in result.run_secs]


@pytest.mark.slow
def test_runner_contract_one_result_per_input_in_order(target, builder):
    inputs = _built(target, builder, [16, 96, 32])
    missing = ms.runner.RunnerInput("/nonexistent/candidate.so", "cpu", inputs[0].args_info)
    runner = interleaved_runner(rounds=4, min_repeat_ms=5)
    results = [f.result() for f in runner.run([*inputs, missing])]
    assert len(results) == 4
    assert results[3].run_secs is None and "exception" in results[3].error_msg
    times = [_seconds(r) for r in results[:3]]
    assert all(r.error_msg is None and len(t) == 4 for r, t in zip(results, times, strict=False))
    # 96^3 is 27x the work of 32^3 and 216x 16^3: results are where their inputs were.
    assert np.median(times[1]) > np.median(times[2]) > np.median(times[0])


@pytest.mark.slow
def test_every_round_times_every_candidate_once_in_a_fresh_shuffled_order(target, builder, tmp_path):
    inputs = _built(target, builder, [16, 24, 32, 40, 48, 56])
    log = tmp_path / "samples.jsonl"
    runner = interleaved_runner(rounds=5, min_repeat_ms=2, seed=3, f_time=_recording(log))
    results = [f.result() for f in runner.run(inputs)]
    assert all(r.error_msg is None for r in results)
    (orders,) = runner.history
    assert len(orders) == 5 and all(sorted(o) == list(range(6)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1, "rounds were not shuffled"
    # What the worker really did, in time order: the probes, then round after round as planned.
    paths = [str(i.artifact_path) for i in inputs]
    done = [paths.index(json.loads(line)["path"]) for line in log.read_text().splitlines()]
    assert done == list(range(6)) + [i for order in orders for i in order]


def _recording(log: Path):
    """A real timer that also notes which candidate it timed (to check the order)."""

    def f_time(evaluator, args, artifact_path):
        seconds = default_time(evaluator, args, artifact_path)
        with open(log, "a") as f:
            f.write(json.dumps({"path": artifact_path, "t": time.time()}) + "\n")
        return seconds

    return f_time


def _faulty(faults: dict[str, str], counter_dir: Path):
    """Fault injection: by artifact, crash or hang from the given call on, or return nonsense times."""

    def f_time(evaluator, args, artifact_path):
        kind, _, at = faults.get(artifact_path, "none:0").partition(":")
        counter = counter_dir / (Path(artifact_path).parent.name + ".count")
        calls = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(calls))
        if calls >= int(at) > 0:
            if kind == "crash":
                os._exit(3)
            if kind == "hang":
                time.sleep(60)
        if kind == "nan":
            return math.nan
        if kind == "negative":
            return -1.0
        return default_time(evaluator, args, artifact_path)

    return f_time


@pytest.mark.slow
def test_faults_stay_with_their_candidate_and_the_batch_goes_on(target, builder, tmp_path):
    inputs = _built(target, builder, [16, 24, 32, 40, 48, 56])
    paths = [str(i.artifact_path) for i in inputs]
    faults = {
        paths[0]: "crash:1",  # crashes the worker on its probe
        paths[2]: "crash:3",  # crashes the worker in the second round
        paths[3]: "hang:2",  # hangs in the first round
        paths[4]: "nan:0",  # garbage run time
    }
    runner = interleaved_runner(rounds=3, min_repeat_ms=2, timeout_sec=3, f_time=_faulty(faults, tmp_path))
    results = [f.result() for f in runner.run(inputs)]
    assert "crashed" in results[0].error_msg
    assert "crashed" in results[2].error_msg
    assert "timeout" in results[3].error_msg
    assert "unusable run time" in results[4].error_msg
    for i in (1, 5):
        assert results[i].error_msg is None and len(_seconds(results[i])) == 3, results[i].error_msg
    assert runner.restarts >= 2
    # The worker is healthy afterwards: the next batch measures normally.
    again = [f.result() for f in runner.run(inputs[1:2])]
    assert again[0].error_msg is None


@pytest.mark.slow
def test_a_copy_of_the_centre_is_rarely_accepted_against_it(target, builder):
    # A/A: one schedule, eight copies per batch in pairs (control, copy); the rule the paired descent
    # uses (test and floor) must accept a copy about as often as its p-value, not more. (The old rule,
    # Welch against the centre's samples from another batch, accepted 35 in 100 on the bench.)
    (inp,) = _built(target, builder, [32])
    runner = interleaved_runner(rounds=5, min_repeat_ms=5, seed=1)
    accepted = comparisons = 0
    for _ in range(10):
        results = [_seconds(f.result()) for f in runner.run([inp] * 8)]
        for control, copy in zip(results[::2], results[1::2], strict=True):
            comparisons += 1
            accepted += is_faster_paired(copy, control, 0.05, PAIRED_MIN_GAIN)
    assert comparisons == 40
    assert accepted <= 6, f"{accepted} of {comparisons} copies accepted"


# --- tuning through MetaSchedule with it -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["evolutionary", "replay-trace"])
def test_tune_tir_with_any_strategy(strategy, tmp_path, target, builder):
    database = ms.tune_tir(
        mod=matmul_mod(32), target=target, work_dir=str(tmp_path), max_trials_global=8, num_trials_per_iter=4,
        strategy=strategy, builder=builder, runner=interleaved_runner(rounds=3, min_repeat_ms=2),
        cost_model="random", seed=1,
    )
    records = database.get_all_tuning_records()
    assert len(records) == 8
    assert all(len(r.run_secs) == 3 for r in records)


@pytest.mark.slow
def test_paired_droplet_re_times_only_its_centre(tmp_path, target, builder):
    mod = matmul_mod(64)
    database = ms.tune_tir(
        mod=mod, target=target, work_dir=str(tmp_path), max_trials_global=40, num_trials_per_iter=8,
        strategy=ms_droplet.DropletSearch(explore="replay", explore_trials=8, paired=True, seed=2),
        builder=builder, runner=interleaved_runner(rounds=3, min_repeat_ms=2), cost_model="random", seed=2,
    )
    records = database.get_all_tuning_records()
    assert 40 <= len(records) < 48
    ctx = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply", task_name="k")
    postprocs = list(ctx.space_generator.postprocs)
    keys = [module_key(replay(mod, base_trace(r.trace), postprocs, seed=1).mod) for r in records]
    # Every descent batch of neighbours re-times its centre once (logged), a faster point is
    # measured again alone before a move (logged); no other schedule is measured twice.
    retimed, confirmed = remeasured_on_purpose(tmp_path)
    assert retimed >= 1
    assert len(keys) - len(set(keys)) == retimed + confirmed


@pytest.mark.slow
def test_tune_relax_with_the_interleaved_runner(tmp_path, target, builder):
    from ms_droplet.relax_pipeline import prepare

    database = ms.relax_integration.tune_relax(
        mod=prepare(matmul_relu_model()), params={}, target=target, work_dir=str(tmp_path), max_trials_global=6,
        num_trials_per_iter=3, strategy=ms_droplet.DropletSearch(explore="replay", paired=True), builder=builder,
        runner=interleaved_runner(rounds=2, min_repeat_ms=2), cost_model="random", seed=0,
    )
    assert len(database.get_all_tuning_records()) >= 6


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"rounds": 0}, "rounds"), ({"min_repeat_ms": -1}, "min_repeat_ms"), ({"timeout_sec": 0}, "timeout_sec"),
     ({"seed": "x"}, "seed"), ({"number": 1.5}, "number")],
)
def test_bad_runner_options_name_the_value(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        interleaved_runner(**kwargs)

