"""Progress lines and a tuning curve, from a MetaSchedule measure callback."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from .trace import run_samples


@dataclass
class ProgressPrinter:
    """Counts every measured candidate and prints one line per batch.

    ``curve`` holds ``(trial, seconds since start, best latency so far)`` after each candidate.
    With ``task_names`` (tuning a model), each line names the batch's task and its best so far.
    """

    total: int
    flops: float = 0.0
    quiet: bool = False
    stream: TextIO | None = None  # None: sys.stdout as it is when printing (not at import)
    task_names: list[str] | None = None
    count: int = 0
    failures: int = 0
    best: float = float("inf")
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    task_best: dict[int, float] = field(default_factory=dict)
    _start: float = field(default_factory=time.perf_counter)

    def record(self, builder_results, runner_results, task_id: int = 0) -> None:
        """Account for one measured batch of task ``task_id``."""
        now = time.perf_counter() - self._start
        for built, ran in zip(builder_results, runner_results, strict=False):
            self.count += 1
            samples = None if (built.error_msg or ran.error_msg) else run_samples(ran.run_secs)
            if samples is None:
                self.failures += 1
            else:
                latency = sum(samples) / len(samples)
                self.best = min(self.best, latency)
                self.task_best[task_id] = min(self.task_best.get(task_id, latency), latency)
            self.curve.append((self.count, now, self.best))
        if self.quiet:
            return
        if self.task_names is not None:
            name = self.task_names[task_id] if task_id < len(self.task_names) else f"task {task_id}"
            best = self.task_best.get(task_id)
            shown = "n/a" if best is None else f"{best * 1e6:.2f} us"
            print(
                f"  [{now:7.1f} s] trials {self.count:5d}/{self.total}  {name}: best {shown}  ({self.failures} failed)",
                file=self.stream or sys.stdout,
                flush=True,
            )
        else:
            best = "n/a" if self.best == float("inf") else f"{self.best * 1e6:.2f} us"
            rate = f", {self.flops / self.best / 1e9:.2f} GFLOPS" if self.flops and self.best < float("inf") else ""
            print(
                f"  [{now:7.1f} s] trials {self.count:5d}/{self.total}  best {best}{rate}"
                f"  ({self.failures} failed)",
                file=self.stream or sys.stdout,
                flush=True,
            )

    def callback(self):
        """A MetaSchedule measure callback that feeds :meth:`record`."""
        return _ProgressCallback(self)


@derived_object
class _ProgressCallback(PyMeasureCallback):
    def __init__(self, printer: ProgressPrinter) -> None:
        self.printer = printer

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        self.printer.record(builder_results, runner_results, task_id)
