"""The strategy lab: a landscape recorded for real at a small size, then simulated measurement on it."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.builder import BuilderInput
from tvm.s_tir.meta_schedule.runner import RunnerInput
from tvm.s_tir.schedule import Trace
from tvm.target import Target

import ms_droplet
from ms_droplet.lab import landscape as ls
from ms_droplet.lab.noise import NoiseModel
from ms_droplet.lab.record import panel_size, record, schedule_of
from ms_droplet.lab.simulate import load_simulation, parse_strategies, simulate, write_report
from ms_droplet.lab.simulated import RECORDED_FAILURE, Oracle, SimulatedBuilder, SimulatedRunner
from ms_droplet.lab.strategies import parse_strategy
from ms_droplet.lab.surrogate import feature_context, features, train, validate
from ms_droplet.trace import module_key, replay

pytestmark = pytest.mark.slow
TRIALS = 100


@pytest.fixture(scope="module")
def landscape_dir(tmp_path_factory):
    """matmul-small (64^3) recorded on this machine: 100 trials, every phase and the panel."""
    out = tmp_path_factory.mktemp("lab") / "matmul-small"
    record("matmul-small", TRIALS, out, seed=0)
    return out


@pytest.fixture(scope="module")
def lab(landscape_dir):
    land = ls.load(landscape_dir)
    context = feature_context(land)
    return land, context, train(land, context)


def test_record_covers_every_phase_and_repeats_a_panel(landscape_dir):
    land = ls.load(landscape_dir)
    sources = land.summary()["sources"]
    assert set(sources) == {"replay", "evolutionary", "droplet", "repeat"}
    assert sources["repeat"] == panel_size(TRIALS) * 6
    assert abs(len(land.measurements) - TRIALS) <= 32  # the searches' last batch may overshoot
    # the panel's schedules are the same keys measured in six batches of their own
    batches: dict[int, set[int]] = {}
    for m in land.measurements:
        if m.source == "repeat":
            batches.setdefault(m.key, set()).add(m.batch)
    assert len(batches) == panel_size(TRIALS) and all(len(b) == 6 for b in batches.values())
    # every trace rebuilds the schedule it was measured as
    mod = land.mod
    for key in list(land.traces)[:20]:
        assert module_key(schedule_of(mod, land.traces[key]).mod) == key


def _batch(land, keys):
    mod = land.mod
    schedules = [schedule_of(mod, land.traces[k]) for k in keys]
    return [BuilderInput(s.mod, Target(land.target)) for s in schedules], schedules


def _run(builder, runner, inputs, schedules):
    built = builder.build(inputs)
    assert all(b.error_msg is None for b in built)
    futures = runner.run([RunnerInput(b.artifact_path, "cpu", ArgInfo.from_entry_func(s.mod, remove_preproc=True))
                          for b, s in zip(built, schedules, strict=True)])
    return [f.result() for f in futures]


def test_simulated_runner_answers_recorded_schedules_exactly_in_order(lab):
    land, context, surrogate = lab
    values = {k: v for k, v in land.values().items() if v is not None}
    keys = list(values)[:12][::-1]
    oracle = Oracle(land.values(), surrogate, context)
    builder, runner = SimulatedBuilder(oracle), SimulatedRunner(oracle, NoiseModel(), rounds=3)
    inputs, schedules = _batch(land, keys)
    first = _run(builder, runner, inputs, schedules)
    assert [[float(s) for s in r.run_secs] for r in first] == [[values[k]] * 3 for k in keys]
    assert (oracle.exact_answers, oracle.predicted_answers) == (12, 0)
    # zero noise: the same batch again gives identical answers
    again = _run(builder, runner, inputs, schedules)
    assert [[float(s) for s in r.run_secs] for r in again] == [[float(s) for s in r.run_secs] for r in first]


def test_simulated_runner_predicts_unrecorded_schedules_and_fails_recorded_failures(lab):
    land, context, surrogate = lab
    mod = land.mod
    tune_context = ms.TuneContext(mod=mod, target=Target(land.target), space_generator="post-order-apply",
                                  task_name="t")
    space = tune_context.generate_design_space()[0]
    postprocs = tune_context.space_generator.postprocs
    fresh = None
    for seed in range(1, 200):  # a random schedule of the design space that the landscape never measured
        sch = replay(mod, Trace(space.trace.insts, {}), postprocs, seed)
        if sch is not None and module_key(sch.mod) not in land.traces:
            fresh = sch
            break
    assert fresh is not None
    recorded = next(k for k, v in land.values().items() if v is not None)
    failed = dict(land.values())
    failed[recorded] = None  # as if the landscape had seen it fail
    oracle = Oracle(failed, surrogate, context)
    builder, runner = SimulatedBuilder(oracle), SimulatedRunner(oracle, NoiseModel(), rounds=2)
    schedules = [fresh, schedule_of(mod, land.traces[recorded])]
    inputs = [BuilderInput(s.mod, Target(land.target)) for s in schedules]
    results = _run(builder, runner, inputs, schedules)
    expected = float(surrogate.predict(features(context, [fresh.mod]))[0])
    assert [float(s) for s in results[0].run_secs] == pytest.approx([expected] * 2)
    assert results[1].error_msg == RECORDED_FAILURE
    assert (oracle.exact_answers, oracle.predicted_answers) == (1, 1)


def test_noise_model_is_fitted_back_from_a_landscape_drawn_with_it():
    truth = NoiseModel(sample_sigma=0.02, batch_sigma=0.04, candidate_sigma=0.01)
    rng = np.random.default_rng(0)
    values = np.exp(rng.uniform(-10, -6, size=40))
    land = ls.Landscape("synthetic", "", {})
    for batch in range(30):  # every schedule in every batch, as the recording's panel is
        for key, row in enumerate(truth.draw(rng, values, 5)):
            land.measurements.append(ls.Measurement(key, batch, "repeat", tuple(row)))
    fitted = NoiseModel.fit(land)
    assert fitted.sample_sigma == pytest.approx(0.02, rel=0.1)
    assert fitted.batch_sigma == pytest.approx(0.04, rel=0.35)
    assert fitted.candidate_sigma == pytest.approx(0.01, rel=0.35)
    # the drift moves the whole batch: ratios inside one batch keep only the other two factors
    drift_only = NoiseModel(batch_sigma=0.1)
    a, b = drift_only.draw(rng, values[:2], 3), drift_only.draw(rng, values[:2], 3)
    assert np.allclose(a[0] / a[1], values[0] / values[1]) and not np.allclose(a, b)


def test_simulate_end_to_end_through_tune_tir(landscape_dir, tmp_path):
    specs = parse_strategies("droplet:explore=replay,replay-trace")
    sim = simulate(landscape_dir, specs, trials=40, seeds=2, per_iter=16, out=tmp_path)
    assert len(sim.runs) == 4 and {r["strategy"] for r in sim.runs} == {"droplet:explore=replay", "replay-trace"}
    land = ls.load(landscape_dir)
    best_possible = min(v for v in land.values().values() if v is not None)
    for run in sim.runs:
        assert 40 <= run["trials"] <= 48 and run["exact"] + run["predicted"] == run["trials"]
        assert run["final_s"] == run["curve"][-1][1]
        # a recorded end schedule scores exactly its landscape value, never better than the best recorded
        if run["final_exact"]:
            assert run["final_s"] >= best_possible
        values = [v for _, v in run["curve"]]
        assert len(values) >= 3
    stats = sim.stats()
    assert stats["replay-trace"]["runs"] == 2
    p = sim.beats("droplet:explore=replay", "replay-trace")
    assert 0 <= p <= 1 and p + sim.beats("replay-trace", "droplet:explore=replay") == pytest.approx(1)
    table = write_report(sim, tmp_path)
    assert "| replay-trace |" in table
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 4
    assert json.loads((tmp_path / "simulation.json").read_text())["stats"]["replay-trace"]["runs"] == 2
    # a report from the runs file alone (no landscape, nothing run) gives the same statistics
    again = load_simulation(tmp_path).stats()
    assert {k: (v["median_us"], v["runs"]) for k, v in again.items()} == {
        k: (pytest.approx(v["median_us"]), v["runs"]) for k, v in stats.items()}


def test_simulate_resumes_from_its_runs_and_refuses_another_setting(landscape_dir, tmp_path):
    first = simulate(landscape_dir, parse_strategies("replay-trace"), trials=16, seeds=1, per_iter=16, out=tmp_path)
    both = simulate(landscape_dir, parse_strategies("replay-trace,droplet:explore=replay"), trials=16, seeds=2,
                    per_iter=16, out=tmp_path)
    assert both.runs[0] == json.loads(json.dumps(first.runs[0]))  # kept, not run again
    assert sorted((r["strategy"], r["seed"]) for r in both.runs) == sorted(
        (s, seed) for s in ("replay-trace", "droplet:explore=replay") for seed in (1000, 1001))
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 4
    with pytest.raises(ValueError, match="another setting"):
        simulate(landscape_dir, parse_strategies("replay-trace"), trials=32, seeds=1, per_iter=16, out=tmp_path)


def test_simulate_takes_a_strategy_instance_and_is_reproducible_without_noise(landscape_dir):
    runs = [simulate(landscape_dir, [ms_droplet.DropletSearch(explore="replay", num_seeds=1)], trials=32, seeds=1,
                     per_iter=16, noise_scale=0).runs[0] for _ in range(2)]
    assert runs[0]["strategy"] == "_DropletSearch"
    assert runs[0]["curve"] == runs[1]["curve"]


def test_surrogate_validation_reports_held_out_rank_agreement(lab):
    land, context, _ = lab
    report = validate(land, folds=3, context=context)
    measured = sum(v is not None for v in land.values().values())
    assert report["n"] == measured and report["n_top10"] >= 3
    # matmul-small's schedules span more than 10x in run time: features must rank them far better than chance
    assert report["spearman_all"] > 0.5
    assert report["measurement_sd"] > 0 and -1 <= report["noise_ceiling_top10"] <= 1


def test_parse_strategy_accepts_names_options_and_factories():
    assert parse_strategy("evolutionary").make() == "evolutionary"
    made = parse_strategy("droplet:explore=replay:num_seeds=2").make()
    assert made.options["explore"] == "replay" and made.options["num_seeds"] == 2
    custom = parse_strategy("ms_droplet.strategy:DropletSearch:num_seeds=4").make()
    assert custom.options["num_seeds"] == 4
    assert parse_strategy("droplet:max_work_ratio=none").make().options["max_work_ratio"] is None
    for bad, needle in [("simulated-annealing", "is not one of"), ("droplet:num_seeds=0", "num_seeds"),
                        ("droplet:explore", "OPTION=VALUE"), ("droplet:nonsense=1", "nonsense"), ("no.such.module:f", "cannot import"),
                        ("ms_droplet.strategy:DropletSearch:num_seeds=0", "num_seeds"),
                        ("evolutionary:x=1", "takes no options")]:
        with pytest.raises(ValueError, match=needle):
            parse_strategy(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_strategies("droplet,droplet")


def _corrupt(tmp_path, name, content: bytes):
    d = tmp_path / name
    d.mkdir()
    (d / ls.FILE_NAME).write_bytes(content)
    return d


@pytest.mark.parametrize("case", ["missing-dir", "missing-file", "not-gzip", "bad-json", "bad-secs", "no-trace"])
def test_a_missing_or_corrupt_landscape_is_one_line_and_exit_2(case, tmp_path):
    header = json.dumps({"version": 1, "workload": "w", "mod": "", "target": {}}) + "\n"
    bad = {
        "missing-dir": tmp_path / "nowhere",
        "missing-file": tmp_path,
        "not-gzip": _corrupt(tmp_path, "a", b"plain text"),
        "bad-json": _corrupt(tmp_path, "b", gzip.compress((header + "{not json\n").encode())),
        "bad-secs": _corrupt(tmp_path, "c", gzip.compress(
            (header + json.dumps({"key": "1", "batch": 0, "source": "s", "secs": [-1.0], "trace": []}) + "\n").encode())),
        "no-trace": _corrupt(tmp_path, "d", gzip.compress(
            (header + json.dumps({"key": "1", "batch": 0, "source": "s", "secs": [1e-3]}) + "\n").encode())),
    }[case]
    proc = subprocess.run([sys.executable, "-m", "ms_droplet.cli", "simulate", "--landscape", str(bad)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad.name) in lines[0] and "Traceback" not in proc.stderr


def test_landscape_add_takes_a_work_dir_of_the_same_workload(landscape_dir, tmp_path):
    import shutil

    land_dir = tmp_path / "copy"
    shutil.copytree(landscape_dir, land_dir, ignore=shutil.ignore_patterns("work"))
    before = ls.load(land_dir)
    proc = subprocess.run([sys.executable, "-m", "ms_droplet.cli", "landscape", "add", "--landscape", str(land_dir),
                           str(landscape_dir / "work")], check=False, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = ls.load(land_dir)
    added = [m for m in after.measurements if m.batch == ls.UNKNOWN_BATCH]
    work_records = len((landscape_dir / "work" / "database_tuning_record.json").read_text().splitlines())
    assert len(added) == work_records and len(after.measurements) == len(before.measurements) + work_records
    # the work dir holds the searches' records: the same schedules as the landscape's own, none new
    assert {m.key for m in added} <= set(before.traces)
