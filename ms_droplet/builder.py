"""A local builder that keeps its workers and does not import every tensor intrinsic.

MetaSchedule's ``LocalBuilder`` starts new worker processes for every batch, and its
``default_build`` imports ``tvm.s_tir.tensor_intrin`` in each: 16-40 s per batch on a 2-core
machine, enough to make first builds hit the 30 s timeout. The registry of tensor intrinsics is
only read when a schedule is *tensorized*, which happens while the trace is replayed in the
tuning process; the build of an already scheduled module never looks it up. :func:`build` is
``default_build`` without that import: the same passes, the same target, the same module.

Even without the import, starting the workers costs about 2.4 s per batch (a batch of one
candidate took 2.4-2.7 s, a batch of eight 2.7 s, on a 2-core Zen 5): a search that sends many
small batches, as a descent late in its radius does, pays it again and again.
:class:`KeptPoolBuilder` starts its workers once and keeps them across batches; each worker
is replaced after ``max_uses`` builds (``LocalBuilder`` restarts its pool per batch because of
a memory leak in long-lived workers), after a timeout, or when it dies.

The timeout is 10 s, not ``LocalBuilder``'s 30 s. Some schedules make LLVM run for minutes (on
SFM-1, softmax, 47 of 1,123 with unroll steps of 64 or 512; two tried alone ran past 120 s; one
of them with a step of 16 builds in 0.05 s), and the builder waits out the whole timeout for
each: a tuning run met up to 15 of them, minutes of wall for nothing. Every other build
measured took at most 1.7 s alone, and batches of 32 from six workloads and three models built
with a 3 s timeout without an error (docs/design.md, "Build cost").
"""

from __future__ import annotations

import os

from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.runtime import Module, load_param_dict, save_param_dict
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.builder.local_builder import default_export
from tvm.support.popen_pool import PopenPoolExecutor, StatusKind
from tvm.target import Target

from . import checks


def build(mod: IRModule, target: Target, _params=None) -> Module:
    """Build a scheduled module exactly as MetaSchedule's ``default_build``, minus the import."""
    # imported here: this runs in the build worker
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def _build_and_export(mod: IRModule, target: Target, params: bytearray | None) -> str:
    """Worker side: build, then MetaSchedule's ``default_export`` (a tar in a fresh temp dir)."""
    return default_export(build(mod, target, load_param_dict(params) if params is not None else None))


#: Per-candidate build timeout of :func:`fast_builder` (s).
DEFAULT_BUILD_TIMEOUT = 10.0
#: Builds per worker before it is replaced (a guard against workers that grow).
DEFAULT_MAX_USES = 256


@derived_object
class KeptPoolBuilder(PyBuilder):
    """A MetaSchedule builder whose worker processes outlive a batch.

    Same results as ``LocalBuilder(f_build=build)``: one ``BuilderResult`` per input, in order,
    an artifact path or an error message (a timed-out build says "Timeout, killed after N
    seconds", as ``LocalBuilder``'s does). Call :meth:`close` to stop the workers early;
    otherwise they stop with the builder or the process.
    """

    def __init__(self, max_workers: int | None = None, timeout_sec: float = DEFAULT_BUILD_TIMEOUT,
                 max_uses: int = DEFAULT_MAX_USES) -> None:
        super().__init__()
        checks.integer("builder", "max_workers", max_workers, 1, optional=True)
        checks.number("builder", "timeout_sec", timeout_sec, low=0, low_open=True)
        checks.integer("builder", "max_uses", max_uses, 1)
        self.max_workers = max_workers or os.cpu_count() or 1
        self.timeout_sec = float(timeout_sec)
        self.max_uses = max_uses
        self._pool: PopenPoolExecutor | None = None

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        if self._pool is None:
            self._pool = PopenPoolExecutor(max_workers=self.max_workers, timeout=self.timeout_sec,
                                           maximum_process_uses=self.max_uses)
        jobs = [(i.mod, i.target, save_param_dict(i.params) if i.params is not None else None) for i in build_inputs]
        try:
            return [self._result(r) for r in self._pool.map_with_error_catching(lambda job: _build_and_export(*job), jobs)]
        except BaseException:
            self.close()  # interrupted mid-batch: start clean next time
            raise

    def _result(self, mapped) -> BuilderResult:
        if mapped.status == StatusKind.COMPLETE:
            return BuilderResult(mapped.value, None)
        if mapped.status == StatusKind.TIMEOUT:
            return BuilderResult(None, f"KeptPoolBuilder: Timeout, killed after {self.timeout_sec} seconds")
        return BuilderResult(None, f"KeptPoolBuilder: An exception occurred\n{mapped.value}")

    def close(self) -> None:
        """Stop the workers; the next :meth:`build` starts new ones."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def fast_builder(max_workers: int | None = None, timeout_sec: float = DEFAULT_BUILD_TIMEOUT) -> KeptPoolBuilder:
    """A MetaSchedule builder whose kept workers build with :func:`build`.

    Parameters
    ----------
    max_workers:
        Build processes (``None``: one per logical CPU, as ``LocalBuilder``).
    timeout_sec:
        Per-candidate build timeout; a build that runs out of it fails (its worker is
        replaced) and its candidate is never chosen.
    """
    return KeptPoolBuilder(max_workers=max_workers, timeout_sec=timeout_sec)

