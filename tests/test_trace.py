"""ms_droplet.trace on real design-space traces of a 32^3 matmul and a small conv2d."""

from __future__ import annotations

import math

import pytest
import tvm
from conftest import make_context, matmul_mod
from tvm import te
from tvm.s_tir.meta_schedule.testing import te_workload
from tvm.s_tir.schedule import Schedule, Trace

from ms_droplet.space import CATEGORICAL, COMPUTE_LOCATION, TILE
from ms_droplet.trace import base_trace, count_loops, read_point, read_space, replay, structure, with_point


def _sampled(mod, target, seed=3):
    """A schedule of the first design space with every decision sampled, and its base trace."""
    ctx = make_context(mod, target)
    spaces = ctx.generate_design_space()
    postprocs = list(ctx.space_generator.postprocs)
    sch = replay(mod, Trace(spaces[0].trace.insts, {}), postprocs, seed)
    assert sch is not None
    return sch, base_trace(sch.trace), postprocs


def test_read_space_finds_every_sampling_site_with_its_legal_range(target):
    mod = matmul_mod(32)
    _, trace, _ = _sampled(mod, target)
    space, point = read_space(trace, count_loops(mod, trace))
    kinds = [s.kind for s in space.sites]
    # matmul on llvm: 3 perfect tiles (i, j, k) and the unroll categorical
    assert kinds.count(TILE) == 3 and kinds.count(CATEGORICAL) == 1
    for site, value in zip(space.sites, point, strict=True):
        inst = trace.insts[site.position]
        if site.kind == TILE:
            assert inst.kind.name == "SamplePerfectTile"
            assert site.extent == 32 == math.prod(value)
            assert value[-1] <= site.max_innermost
        elif site.kind == CATEGORICAL:
            assert inst.kind.name == "SampleCategorical" and 0 <= value < site.num_choices
    assert read_point(trace, [s.position for s in space.sites]) == point


def test_with_point_changes_exactly_the_decisions_asked_and_replays_them(target):
    mod = matmul_mod(32)
    _, trace, postprocs = _sampled(mod, target)
    space, point = read_space(trace, count_loops(mod, trace))
    tile = next(i for i, s in enumerate(space.sites) if s.kind == TILE)
    levels = len(point[tile])
    wanted = (32,) + (1,) * (levels - 1) if point[tile] != (32,) + (1,) * (levels - 1) else (1,) * (levels - 1) + (32,)
    if wanted[-1] > space.sites[tile].max_innermost:
        wanted = (2, 16) + (1,) * (levels - 2)
    new_point = tuple(wanted if i == tile else v for i, v in enumerate(point))
    changed = with_point(trace, space, new_point)
    positions = [s.position for s in space.sites]
    assert read_point(changed, positions) == new_point
    assert read_point(trace, positions) == point, "the original trace must stay as it was"
    sch = replay(mod, changed, postprocs, seed=1)
    assert sch is not None and read_point(base_trace(sch.trace), positions) == new_point


def _loops_in(sch) -> int:
    """Distinct loops above any block, found through the schedule's own API (not a walk of the IR)."""

    def blocks(parent):
        for block in sch.get_child_blocks(parent):
            yield block
            yield from blocks(block)

    return len({sch.get(loop) for block in blocks(sch.get_sblock("root")) for loop in sch.get_loops(block)})


def test_count_loops_counts_the_loops_the_trace_makes_before_post_processing(target):
    mod = matmul_mod(32)
    assert count_loops(mod, Trace([], {})) == 3  # i, j, k
    _, trace, _ = _sampled(mod, target)
    plain = Schedule(mod)
    trace.apply_to_schedule(plain, remove_postproc=True)
    assert count_loops(mod, trace) == _loops_in(plain) >= 10  # 4 + 4 + 2 tile levels at least


@pytest.mark.parametrize("seed", [1, 2])
def test_a_conv2d_trace_has_a_compute_location_site_bounded_by_its_loops(target, seed):
    mod = tvm.IRModule({"main": te.create_prim_func(te_workload.conv2d_nhwc(1, 8, 8, 8, 8, 3, 1, 1))})
    _, trace, _ = _sampled(mod, target, seed)
    loops = count_loops(mod, trace)
    space, point = read_space(trace, loops)
    locations = [(s, v) for s, v in zip(space.sites, point, strict=True) if s.kind == COMPUTE_LOCATION]
    assert locations, "the padding block's compute location is a sampling site"
    assert all(s.num_choices == loops and -2 <= v < loops for s, v in locations)


def test_structure_names_the_design_space_whatever_the_decisions(target):
    mod = matmul_mod(32)
    ctx = make_context(mod, target)
    spaces = ctx.generate_design_space()
    postprocs = list(ctx.space_generator.postprocs)
    shapes = [structure(sch.trace) for sch in spaces]
    assert len(set(shapes)) == len(spaces) >= 3, "each design space has its own structure"
    for seed in (1, 2):  # other decisions, with the post-processing the replay adds: the same structure
        sch = replay(mod, Trace(spaces[1].trace.insts, {}), postprocs, seed)
        assert sch is not None and any(i.kind.name == "EnterPostproc" for i in sch.trace.insts)
        assert structure(sch.trace) == shapes[1]


def test_the_unscheduled_workload_is_a_record_the_database_returns(target, tmp_path):
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from ms_droplet.trace import module_key, unscheduled_trace

    mod = matmul_mod(16)
    postprocs = ms.postproc.Postproc.create("llvm")
    plain = replay(mod, unscheduled_trace(mod), postprocs, 1)
    assert module_key(plain.mod) == module_key(replay(mod, Trace([], {}), postprocs, 1).mod)  # nothing scheduled
    for trace, returned in ((Trace([], {}), 0), (unscheduled_trace(mod), 1)):
        sch = replay(mod, trace, postprocs, 1)
        (tmp_path / str(returned)).mkdir()
        db = ms.database.JSONDatabase(work_dir=str(tmp_path / str(returned)))
        workload = db.commit_workload(mod)
        db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, [1e-6], target,
                                                         ArgInfo.from_prim_func(mod["main"])))
        # an empty trace is measured and never applied: MetaSchedule's TuningRecord.IsValid refuses it
        assert len(db.get_top_k(workload, 1)) == returned
