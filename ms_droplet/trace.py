"""The thin layer between MetaSchedule traces and the plain-Python decision space.

Sites are named by their position in a trace without its post-processing part, because replay
creates new instruction objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tvm
import tvm_ffi
from tvm.ir import IRModule
from tvm.s_tir.schedule import Schedule, Trace

from .space import CATEGORICAL, COMPUTE_LOCATION, TILE, DecisionSpace, Point, Site

_KIND_OF_INST = {
    "SamplePerfectTile": TILE,
    "SampleCategorical": CATEGORICAL,
    "SampleComputeLocation": COMPUTE_LOCATION,
}

#: MetaSchedule stores failed runs with this run time.
FAILED_RUN_SECS = 1e10


def base_trace(trace: Trace) -> Trace:
    """``trace`` without its post-processing part (everything from ``EnterPostproc`` on)."""
    insts = []
    for inst in trace.insts:
        if inst.kind.name == "EnterPostproc":
            break
        insts.append(inst)
    decisions = {inst: trace.decisions[inst] for inst in insts if inst in trace.decisions}
    return Trace(insts, decisions)


def structure(trace: Trace) -> tuple:
    """What tells a trace's design space apart, whatever its decisions: each instruction before
    post-processing as its kind, its attributes, and its inputs, a random variable named by the
    instruction that made it, a string as itself (an annotation's key), any other constant by
    its type only (mutation changes a parallel extent, not the design space)."""
    made: dict = {}  # random variable -> (instruction, output) that made it
    shape = []
    for i, inst in enumerate(trace.insts):
        if inst.kind.name == "EnterPostproc":
            break
        shape.append((inst.kind.name, str(inst.attrs), *(_input_shape(x, made) for x in inst.inputs)))
        made.update({out: (i, j) for j, out in enumerate(inst.outputs)})
    return tuple(shape)


def _input_shape(value, made: dict):
    if isinstance(value, str):
        return value
    try:
        return made[value]
    except (KeyError, TypeError):  # a constant (or None, or an unhashable list)
        return type(value).__name__


def _decision_value(decision) -> int | tuple[int, ...]:
    if isinstance(decision, int):
        return decision
    if hasattr(decision, "value"):
        return int(decision.value)
    return tuple(int(x) for x in decision)


def read_point(trace: Trace, positions: Sequence[int]) -> Point:
    """The decisions of ``trace`` at the given instruction positions."""
    insts = trace.insts
    return tuple(_decision_value(trace.decisions[insts[i]]) for i in positions)


def read_space(trace: Trace, num_loops: int) -> tuple[DecisionSpace, Point]:
    """The decision space of a base trace and the point it sits at.

    ``num_loops`` bounds compute-location indices: no loop index of the scheduled function
    can reach it.
    """
    sites = []
    for position, inst in enumerate(trace.insts):
        kind = _KIND_OF_INST.get(inst.kind.name)
        if kind is None or inst not in trace.decisions:
            continue
        decision = _decision_value(trace.decisions[inst])
        if kind == TILE:
            max_innermost = int(inst.attrs[1])
            sites.append(Site(TILE, position, extent=math.prod(decision), max_innermost=max_innermost))
        elif kind == CATEGORICAL:
            sites.append(Site(CATEGORICAL, position, num_choices=len(inst.attrs[0])))
        else:
            sites.append(Site(COMPUTE_LOCATION, position, num_choices=num_loops))
    space = DecisionSpace(tuple(sites))
    return space, read_point(trace, [s.position for s in space.sites])


def with_point(trace: Trace, space: DecisionSpace, point: Point) -> Trace:
    """A copy of base ``trace`` whose sampling decisions are ``point``."""
    decisions = dict(trace.decisions.items())
    insts = trace.insts
    for site, value in zip(space.sites, point, strict=False):
        decisions[insts[site.position]] = list(value) if isinstance(value, tuple) else value
    return Trace(insts, decisions)


def replay(mod: IRModule, trace: Trace, postprocs: Sequence, seed: int) -> Schedule | None:
    """Apply ``trace`` (post-processing stripped) and every postproc; ``None`` on any failure.

    Sampling instructions without a decision are sampled from ``seed``.
    """
    try:
        sch = Schedule(mod, seed=seed, debug_mask=0, error_render_level="none")
        trace.apply_to_schedule(sch, remove_postproc=True)
        sch.enter_postproc()
        for postproc in postprocs:
            if not postproc.apply(sch):
                return None
    except Exception:  # TVM raises many types here; each one means "not a candidate"
        return None
    return sch


def count_loops(mod: IRModule, trace: Trace) -> int:
    """Number of loops after applying base ``trace`` (before post-processing fuses any)."""
    sch = Schedule(mod, debug_mask=0, error_render_level="none")
    trace.apply_to_schedule(sch, remove_postproc=True)
    return len(_loops(sch.mod))


def _loops(mod: IRModule) -> list:
    """Every ``For`` loop of the module's functions."""
    loops: list = []
    for _, func in mod.functions.items():
        if hasattr(func, "body"):
            tvm_ffi.structural_walk(func.body, [(tvm.tirx.For, loops.append)])
    return loops


def unscheduled_trace(mod: IRModule) -> Trace:
    """A trace that leaves ``mod`` as written: one look-up of its root block.

    Why not an empty trace: MetaSchedule's databases never return a record whose trace has no
    instruction before post-processing (``TuningRecord.IsValid``), so the plain workload's
    record would be measured and then never applied.
    """
    sch = Schedule(mod, debug_mask=0, error_render_level="none")
    name = next(gv.name_hint for gv, func in mod.functions.items() if isinstance(func, tvm.tirx.PrimFunc))
    sch.get_sblock("root", func_name=name)
    return sch.trace


def has_parallel_loop(mod: IRModule) -> bool:
    """Whether a scheduled module runs any loop in parallel (a launch of the thread pool)."""
    return any(loop.kind == tvm.tirx.ForKind.PARALLEL for loop in _loops(mod))


def module_key(mod: IRModule) -> int:
    """Structural hash of a scheduled module: two candidates with one key are one schedule."""
    return int(tvm_ffi.structural_hash(mod))


def run_samples(run_secs) -> tuple[float, ...] | None:
    """Run times in seconds, or ``None`` when they are missing, non-positive or a failure marker."""
    if run_secs is None:
        return None
    samples = tuple(float(getattr(x, "value", x)) for x in run_secs)
    if not samples or any(not math.isfinite(s) or s <= 0 or s >= FAILED_RUN_SECS for s in samples):
        return None
    return samples
