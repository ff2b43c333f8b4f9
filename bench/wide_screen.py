"""Could a wider, model-screened neighbourhood have left a run's final basin?

Trains MetaSchedule's xgb cost model on one run's records, then ranks every move of one, two
and three decisions (radius 1 each) from that run's best schedule, and reports where a
reference run's best decisions (replayed on this run's best trace) rank. With ``--measure K``
it also builds and times the model's top K moves of two and of three decisions beside the
centre (three copies), the bench's way (fast builder, LocalRunner, 3 samples), and the
reference's own schedule and its decisions on this run's trace. Run it alone.

    python bench/wide_screen.py --results bench/results/zen4 --workload C1D-0 \
        --run droplet-at-N-N300-s4 --reference evolutionary-at-N-N300-s2 --measure 32
"""

from __future__ import annotations

import argparse
import itertools
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--run", required=True, help="work dir name under RESULTS/work/WORKLOAD")
    parser.add_argument("--reference", required=True, help="another run's work dir name")
    parser.add_argument("--measure", type=int, default=0, help="time the model's top K moves of 2 and of 3 sites")
    args = parser.parse_args(argv)

    import numpy as np
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.runner import RunnerInput, RunnerResult

    from ms_droplet.builder import fast_builder
    from ms_droplet.candidates import load_database, measure_candidate
    from ms_droplet.neighbourhood import site_moves
    from ms_droplet.runners import local_runner
    from ms_droplet.stats import mean
    from ms_droplet.trace import count_loops, module_key, read_point, read_space, replay, with_point
    from ms_droplet.workloads import get_workload, host_target

    base = f"{args.results}/work/{args.workload}/"
    mod, target = get_workload(args.workload).mod, host_target()
    ctx = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply", task_name="w", num_threads=1)
    ctx.generate_design_space()
    post = list(ctx.space_generator.postprocs)
    measured, _ = load_database(ms.database.JSONDatabase(work_dir=base + args.run), mod, post)
    reference, _ = load_database(ms.database.JSONDatabase(work_dir=base + args.reference), mod, post)

    model = ms.cost_model.XGBModel(num_tuning_cores=1)
    cands, results = [], []
    for m in measured.values():
        if (sch := replay(mod, m.trace, post, 1)) is not None:
            cands.append(measure_candidate(sch))
            results.append(RunnerResult(list(m.samples) if m.samples else [1e10], None))
    model.update(ctx, cands, results)

    def best_of(records):
        return min((m for m in records.values() if m.samples), key=lambda m: mean(m.samples))

    centre, ref = best_of(measured), best_of(reference)
    space, point = read_space(centre.trace, count_loops(mod, centre.trace))
    ref_point = read_space(ref.trace, count_loops(mod, ref.trace))[1]
    ref_point = ref_point if space.admits(ref_point) else None
    print(f"{args.run}: best {mean(centre.samples) * 1e6:.1f} us at {point}")
    print(f"{args.reference}: best {mean(ref.samples) * 1e6:.1f} us at {ref_point or 'decisions outside this space'}")
    positions = [s.position for s in space.sites]
    moves = [[m for m in site_moves(s, point[i], 1) if m != point[i]] for i, s in enumerate(space.sites)]

    def moved(k):
        out = []
        for sites in itertools.combinations(range(len(moves)), k):
            for values in itertools.product(*(moves[i] for i in sites)):
                p = list(point)
                for i, v in zip(sites, values, strict=True):
                    p[i] = v
                out.append(tuple(p))
        return out

    def ranked(points):
        schs, kept = [], []
        for p in points:
            sch = replay(mod, with_point(centre.trace, space, p), post, 1)
            if sch is not None and read_point(sch.trace, positions) == p:
                schs.append(sch)
                kept.append(p)
        scores = np.asarray(model.predict(ctx, [measure_candidate(s) for s in schs]), dtype=float)
        order = list(np.argsort(-scores, kind="stable"))
        return [kept[i] for i in order], [schs[i] for i in order]

    top = []
    for k in (1, 2, 3):
        start = time.perf_counter()
        points, schs = ranked(moved(k))
        where = points.index(ref_point) if ref_point in points else None
        known = [(r, mean(measured[module_key(s.mod)].samples) * 1e6) for r, s in enumerate(schs)
                 if module_key(s.mod) in measured and measured[module_key(s.mod)].samples]
        print(f"moves of {k} site(s): {len(points)} ranked in {time.perf_counter() - start:.1f} s; "
              f"the reference ranks {where}; {len(known)} measured by the run, best "
              f"{min((v for _, v in known), default=float('nan')):.1f} us, their ranks {[r for r, _ in known[:10]]}")
        if k > 1 and args.measure:
            fresh = [s for s in schs if module_key(s.mod) not in measured][:args.measure]
            top += [(f"{k}-site #{r}", s) for r, s in enumerate(fresh)]
    if not args.measure:
        return 0
    ref_here = replay(mod, with_point(centre.trace, space, ref_point), post, 1) if ref_point else None
    extra = [("reference", replay(mod, ref.trace, post, 1))] + ([("reference decisions here", ref_here)] if ref_here else [])
    centre_sch = replay(mod, centre.trace, post, 1)
    half = len(top) // 2
    batch = [("centre", centre_sch), *top[:half], ("centre", centre_sch), *top[half:], *extra, ("centre", centre_sch)]
    built = fast_builder().build([ms.builder.BuilderInput(s.mod, target) for _, s in batch])
    runner = local_runner(3, validate=False)
    ok = [(name, s, b) for (name, s), b in zip(batch, built, strict=True) if b.error_msg is None]
    futures = runner.run([RunnerInput(b.artifact_path, "cpu", ArgInfo.from_entry_func(s.mod, remove_preproc=True))
                          for _, s, b in ok])
    timed = []
    for (name, _, _), f in zip(ok, futures, strict=True):
        r = f.result()
        timed.append((name, None if r.error_msg else mean([float(x) for x in r.run_secs]) * 1e6))
    print("centre:", [f"{v:.1f}" for n, v in timed if n == "centre" and v])
    print("reference:", [(n, f"{v:.1f}") for n, v in timed if n.startswith("reference") and v])
    moves_timed = sorted(v for n, v in timed if "site" in n and v)
    print(f"the {len(moves_timed)} moves timed: fastest {moves_timed[:3]}, median {moves_timed[len(moves_timed) // 2]:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
