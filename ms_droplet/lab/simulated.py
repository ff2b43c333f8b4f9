"""Simulated measurement: a MetaSchedule builder and runner that answer from a landscape.

The builder builds nothing: it names each candidate by the structural hash of its scheduled
module (the artifact path is ``simulated:<hash>``) and looks its noise-free value up: the
landscape's own value where that schedule was measured (*exact*), the surrogate's prediction
otherwise (*predicted*), failure where the landscape saw it fail. The runner turns values into
run samples with the noise model, one drift draw per batch, so a strategy sees what it would
see on the machine: noisy samples, batch by batch, in the order it asked for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture, RunnerResult

from ..trace import module_key
from .noise import NoiseModel
from .surrogate import Surrogate, features

PREFIX = "simulated:"
RECORDED_FAILURE = "simulated: this schedule failed when the landscape was recorded"


@dataclass
class Oracle:
    """Noise-free values of schedules: the landscape's where measured, the surrogate's elsewhere."""

    values: dict[int, float | None]  # the landscape's (None: failed)
    surrogate: Surrogate
    context: object  # TuneContext for feature extraction
    predicted: dict[int, float] = field(default_factory=dict)
    exact_answers: int = 0
    predicted_answers: int = 0

    def look_up(self, mods: list) -> list[int]:
        """Keys of ``mods``, predicting (once) the value of every schedule the landscape lacks."""
        keys = [module_key(mod) for mod in mods]
        new = {k: mod for k, mod in zip(keys, mods, strict=True) if k not in self.values and k not in self.predicted}
        if new:
            values = self.surrogate.predict(features(self.context, list(new.values())))
            self.predicted.update(zip(new, (float(v) for v in values), strict=True))
        return keys

    def value(self, key: int) -> float | None:
        """Noise-free seconds of a looked-up schedule (``None``: it failed when recorded)."""
        if key in self.values:
            return self.values[key]
        return self.predicted[key]

    def is_exact(self, key: int) -> bool:
        return key in self.values

    def answer(self, key: int) -> float | None:
        """:meth:`value`, counted as an exact or a predicted answer."""
        if self.is_exact(key):
            self.exact_answers += 1
        else:
            self.predicted_answers += 1
        return self.value(key)


class _SimulatedBuilder(PyBuilder):
    """Builds nothing; the artifact path carries the candidate's structural hash."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    def build(self, build_inputs):
        keys = self.oracle.look_up([b.mod for b in build_inputs])
        return [BuilderResult(f"{PREFIX}{key}", None) for key in keys]


class _SimulatedRunner(PyRunner):
    """Answers each candidate with ``rounds`` noisy samples of its value; one drift per batch."""

    def __init__(self, oracle: Oracle, noise: NoiseModel, rounds: int = 5, seed: int = 0) -> None:
        self.oracle = oracle
        self.noise = noise
        self.rounds = rounds
        self.rng = np.random.default_rng(seed)
        self.batches = 0

    def run(self, runner_inputs):
        keys = [int(r.artifact_path.removeprefix(PREFIX)) for r in runner_inputs]
        values = [self.oracle.answer(k) for k in keys]
        ok = [i for i, v in enumerate(values) if v is not None]
        samples = self.noise.draw(self.rng, np.array([values[i] for i in ok]), self.rounds) if ok else []
        results = [RunnerResult(None, RECORDED_FAILURE)] * len(keys)
        for i, row in zip(ok, samples, strict=True):
            results[i] = RunnerResult([float(s) for s in row], None)
        self.batches += 1
        return [_Done(r) for r in results]


class _DoneImpl(PyRunnerFuture):
    def __init__(self, result: RunnerResult) -> None:
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> RunnerResult:
        return self._result


_Done = derived_object(_DoneImpl)
SimulatedBuilder = derived_object(_SimulatedBuilder)
SimulatedRunner = derived_object(_SimulatedRunner)
