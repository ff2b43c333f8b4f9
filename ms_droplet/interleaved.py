"""A runner that times a whole batch together, round by round, so that drift hits every candidate alike.

MetaSchedule's ``LocalRunner`` takes all samples of one candidate back to back, then the next
candidate's: on a machine whose speed drifts, two candidates of a batch are compared across
different stretches of time. :class:`InterleavedRunner` first runs each candidate once alone
(a probe, under the per-candidate timeout, so a crash, hang or nonsense time fails that
candidate only), then takes ``rounds`` rounds, each over every surviving candidate in a fresh
seeded shuffled order, one sample per candidate per round: sample ``r`` of every candidate was
taken in round ``r``, which is what a paired comparison needs.

Modules stay loaded in one worker process for the whole batch. When the worker dies, it is
restarted, the survivors are loaded again and the round in flight is retimed one candidate at
a time to find the culprit, which alone fails.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.runner import PyRunner, RunnerInput
from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture
from tvm.support.popen_pool import PopenWorker

from . import checks
from .machine import use_all_cores
from .trace import run_samples

#: Samples per candidate, one per round. Chosen by measurement: see docs/benchmarks.md.
DEFAULT_ROUNDS = 5
#: Each sample repeats the kernel for at least this long: 5 x 30 ms is the same timing work
#: per candidate as the package's LocalRunner settings (3 x 50 ms).
DEFAULT_MIN_REPEAT_MS = 30
# A kernel is never repeated more than this many times per sample, however fast it is.
_MAX_NUMBER = 1_000_000

# ---------------------------------------------------------------- worker side
# Module-level state of the worker process: the batch's loaded candidates.
_HELD: dict[int, tuple] = {}


def default_time(evaluator, args, artifact_path: str) -> float:
    """One sample: the mean seconds of one ``time_evaluator`` call."""
    return float(evaluator(*args).mean)


def _load(key: int, artifact_path: str, device_type: str, args_info, number: int, min_repeat_ms: int,
          cache_flush: bool, f_time: Callable) -> float:
    """Load a candidate, allocate its arguments, time it once; keep it for the rounds."""
    import tvm
    from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common

    module = tvm.runtime.load_module(artifact_path)
    device = tvm.runtime.device(device_type, 0)
    fill = tvm.get_global_func("tvm.contrib.random.random_fill_for_measure", allow_missing=True)
    (args,) = alloc_argument_common(fill, device, args_info, 1)
    preproc = "cache_flush_cpu_non_first_arg" if cache_flush else ""

    def evaluator(n: int):
        return module.time_evaluator(module.entry_name, device, number=n, repeat=1, min_repeat_ms=0,
                                     f_preproc=preproc)

    probe = f_time(evaluator(1), args, artifact_path)
    if not math.isfinite(probe) or probe <= 0:
        return probe
    # The repeat count that makes one sample last min_repeat_ms, fixed for the whole batch so
    # that every round times the same work.
    reps = max(number, min(_MAX_NUMBER, math.ceil(min_repeat_ms * 1e-3 / probe)))
    _HELD[key] = (evaluator(reps), args, artifact_path, f_time)
    return probe


def _round(keys: Sequence[int]) -> list[float]:
    """One sample of each held candidate, in the order given."""
    out = []
    for key in keys:
        evaluator, args, path, f_time = _HELD[key]
        out.append(f_time(evaluator, args, path))
    return out


def _held() -> list[int]:
    return sorted(_HELD)


def _clear() -> None:
    _HELD.clear()


# ---------------------------------------------------------------- main side
@derived_object
class InterleavedRunner(PyRunner):
    """Measure a batch in interleaved rounds on this machine (see the module docstring).

    Parameters
    ----------
    rounds:
        Samples per candidate, one per round.
    number:
        Least repetitions of the kernel in one sample (raised until a sample lasts ``min_repeat_ms``).
    min_repeat_ms:
        Least duration of one sample.
    enable_cpu_cache_flush:
        Flush the CPU cache before each repetition (as ``EvaluatorConfig``).
    timeout_sec:
        Per candidate: for its probe, and per candidate per round.
    seed:
        Seed of the round orders.
    f_time:
        ``f_time(evaluator, args, artifact_path) -> seconds``, run in the worker for every sample
        (default :func:`default_time`); a hook for custom timing or injected faults.
    """

    def __init__(
        self,
        rounds: int = DEFAULT_ROUNDS,
        number: int = 1,
        min_repeat_ms: int = DEFAULT_MIN_REPEAT_MS,
        enable_cpu_cache_flush: bool = False,
        timeout_sec: float = 30.0,
        seed: int = 0,
        f_time: Callable | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (("rounds", rounds, 1), ("number", number, 1), ("min_repeat_ms", min_repeat_ms, 0),
                                 ("seed", seed, 0)):
            checks.integer("interleaved_runner", name, value, low)
        checks.number("interleaved_runner", "timeout_sec", timeout_sec, low=0, low_open=True)
        self.rounds, self.number, self.min_repeat_ms = rounds, number, min_repeat_ms
        self.cache_flush, self.timeout_sec = bool(enable_cpu_cache_flush), float(timeout_sec)
        self.f_time = f_time or default_time
        self.rng = np.random.default_rng(seed)
        self.worker = PopenWorker(initializer=use_all_cores)  # kernels on every core, as the target says
        #: Per batch, the order of every round (indices into the batch): the record of interleaving.
        self.history: list[list[list[int]]] = []
        self.restarts = 0

    # ---- worker calls
    def _call(self, fn, args=(), timeout: float | None = None):
        self.worker.send(fn, args, timeout=timeout)
        try:
            return self.worker.recv()
        except (ChildProcessError, TimeoutError):  # either way the worker process is gone
            self.restarts += 1
            raise

    def _load(self, i: int, inp: RunnerInput) -> str | None:
        """Load and probe candidate ``i``; an error message, or ``None`` when it is usable."""
        args_info = tuple(a.as_json() for a in inp.args_info)
        try:
            probe = self._call(_load, (i, str(inp.artifact_path), str(inp.device_type), args_info, self.number,
                                       self.min_repeat_ms, self.cache_flush, self.f_time), self.timeout_sec)
        except TimeoutError:
            return f"InterleavedRunner: timeout, killed after {self.timeout_sec} s"
        except ChildProcessError:
            return "InterleavedRunner: the measuring process crashed on this candidate"
        except Exception as err:  # the module failed to load or run: that candidate's error
            return f"InterleavedRunner: an exception occurred\n{err}"
        if run_samples([probe]) is None:
            return f"InterleavedRunner: unusable run time {probe!r}"
        return None

    def _reload(self, inputs: Sequence[RunnerInput], live: list[int], errors: dict[int, str]) -> None:
        """After a restart, load again every live candidate the worker no longer holds."""
        while True:
            restarts = self.restarts
            try:
                held = set(self._call(_held, (), self.timeout_sec))
            except (TimeoutError, ChildProcessError):
                held = set()
            missing = [i for i in live if i not in held]
            if not missing:
                return
            for i in missing:
                error = self._load(i, inputs[i])
                if error is not None:
                    errors[i] = error
                    live.remove(i)
                if self.restarts != restarts:  # the worker died loading it: the others are gone too
                    break

    def _time_round(self, inputs, order: list[int], live: list[int], errors: dict[int, str]) -> dict[int, float]:
        """One sample per candidate of ``order``; a failed round is retimed one by one to find its culprit."""
        try:
            return dict(zip(order, self._call(_round, (order,), self.timeout_sec * len(order)), strict=True))
        except Exception:  # a timeout, a crash or an error: find the culprit one candidate at a time
            pass
        samples = {}
        for i in order:
            self._reload(inputs, live, errors)
            if i not in live:
                continue
            try:
                (samples[i],) = self._call(_round, ([i],), self.timeout_sec)
            except TimeoutError:
                errors[i] = f"InterleavedRunner: timeout in a round, killed after {self.timeout_sec} s"
            except ChildProcessError:
                errors[i] = "InterleavedRunner: the measuring process crashed on this candidate in a round"
            except Exception as err:
                errors[i] = f"InterleavedRunner: an exception occurred in a round\n{err}"
            if i in errors:
                live.remove(i)
        return samples

    # ---- the PyRunner interface
    def run(self, runner_inputs: list[RunnerInput]) -> list[LocalRunnerFuture]:
        inputs = list(runner_inputs)
        errors: dict[int, str] = {}
        live: list[int] = []
        for i, inp in enumerate(inputs):
            error = self._load(i, inp)
            if error is None:
                live.append(i)
            else:
                errors[i] = error
        samples: dict[int, list[float]] = {i: [] for i in live}
        orders = []
        for _ in range(self.rounds):
            self._reload(inputs, live, errors)
            order = [live[j] for j in self.rng.permutation(len(live))]
            orders.append(order)
            for i, value in self._time_round(inputs, order, live, errors).items():
                if i in samples:
                    samples[i].append(value)
        with contextlib.suppress(TimeoutError, ChildProcessError):
            self._call(_clear, (), self.timeout_sec)
        self.history.append(orders)
        futures = []
        for i in range(len(inputs)):
            secs = samples.get(i)
            if i in errors or not secs or len(secs) != self.rounds or run_samples(secs) is None:
                message = errors.get(i) or f"InterleavedRunner: unusable run times {secs}"
                futures.append(LocalRunnerFuture(res=None, error_message=message))
            else:
                futures.append(LocalRunnerFuture(res=secs, error_message=None))
        return futures


def interleaved_runner(
    rounds: int = DEFAULT_ROUNDS,
    min_repeat_ms: int = DEFAULT_MIN_REPEAT_MS,
    *,
    number: int = 1,
    enable_cpu_cache_flush: bool = False,
    timeout_sec: float = 30.0,
    seed: int = 0,
    f_time: Callable | None = None,
) -> InterleavedRunner:
    """A MetaSchedule runner that times each batch in ``rounds`` interleaved, shuffled rounds.

    Use it wherever MetaSchedule takes a runner (``tune_tir``, ``tune_tasks``, ``tune_relax``,
    any strategy). With Droplet, pass ``DropletSearch(paired=True)`` so that moves are decided
    on per-round pairs against the centre re-timed in the same batch.
    """
    return InterleavedRunner(rounds=rounds, number=number, min_repeat_ms=min_repeat_ms,
                             enable_cpu_cache_flush=enable_cpu_cache_flush, timeout_sec=timeout_sec,
                             seed=seed, f_time=f_time)
