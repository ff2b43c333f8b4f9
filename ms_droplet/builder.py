"""A local builder that does not import every tensor intrinsic for every batch.

MetaSchedule's ``default_build`` imports ``tvm.s_tir.tensor_intrin`` in each worker, and
``LocalBuilder`` starts new workers for every batch: 16-40 s per batch on a 2-core machine,
enough to make first builds hit the 30 s timeout. The registry of tensor intrinsics is only
read when a schedule is *tensorized*, which happens while the trace is replayed in the tuning
process; the build of an already scheduled module never looks it up. :func:`build` is
``default_build`` without that import: the same passes, the same target, the same module.

Its timeout is 10 s, not ``LocalBuilder``'s 30 s. Some schedules make LLVM run for minutes (on
SFM-1, softmax, 47 of 1,123 with unroll steps of 64 or 512; two tried alone ran past 120 s; one
of them with a step of 16 builds in 0.05 s), and the builder waits out the whole timeout for
each: a tuning run met up to 15 of them, minutes of wall for nothing. Every other build
measured took at most 1.7 s alone, and batches of 32 from six workloads and three models built
with a 3 s timeout without an error (docs/design.md, "Build cost").
"""

from __future__ import annotations

from tvm.ir import IRModule
from tvm.runtime import Module
from tvm.s_tir.meta_schedule.builder import LocalBuilder
from tvm.target import Target


def build(mod: IRModule, target: Target, _params=None) -> Module:
    """Build a scheduled module exactly as MetaSchedule's ``default_build``, minus the import."""
    # imported here: this runs in the build worker
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


#: Per-candidate build timeout of :func:`fast_builder` (s).
DEFAULT_BUILD_TIMEOUT = 10.0


def fast_builder(max_workers: int | None = None, timeout_sec: float = DEFAULT_BUILD_TIMEOUT) -> LocalBuilder:
    """A MetaSchedule ``LocalBuilder`` whose workers build with :func:`build`.

    Parameters
    ----------
    max_workers:
        Build processes (``None``: one per logical CPU, as ``LocalBuilder``).
    timeout_sec:
        Per-candidate build timeout (it also covers starting a worker); a build
        that runs out of it fails and its candidate is never chosen.
    """
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1):
        raise ValueError(f"fast_builder: max_workers must be a positive integer or None, got {max_workers!r}")
    if isinstance(timeout_sec, bool) or not isinstance(timeout_sec, (int, float)) or timeout_sec <= 0:
        raise ValueError(f"fast_builder: timeout_sec must be a positive number, got {timeout_sec!r}")
    return LocalBuilder(max_workers=max_workers, timeout_sec=float(timeout_sec), f_build=build)
