"""Ctrl-C during tuning: stop at the next batch boundary, with the database intact.

A ``KeyboardInterrupt`` raised while MetaSchedule's C++ loop is calling back into Python
terminates the process (seen: ``std::terminate`` then a segfault), and the builder and runner
workers, which get the same SIGINT, die and turn the batch in flight into failed results. So
within :func:`stop_on_interrupt` SIGINT only sets a flag; a measure callback placed before
MetaSchedule's own raises :class:`TuningInterrupted` at the end of the batch, before that batch
(possibly spoilt by the dying workers) reaches the database. Re-running resumes from the
database; at most one batch is measured again.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback


class TuningInterrupted(Exception):
    """Tuning was stopped by SIGINT at a batch boundary."""


class Interrupt:
    """What :func:`stop_on_interrupt` yields: ``callback`` to put first, ``raised`` once SIGINT came."""

    def __init__(self) -> None:
        self.raised = False
        self.callback = _StopCallback(self)


class _StopOnInterrupt(PyMeasureCallback):
    def __init__(self, flag: Interrupt) -> None:
        self.flag = flag

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        if self.flag.raised:
            raise TuningInterrupted("interrupted by SIGINT; the last batch was not recorded")


_StopCallback = derived_object(_StopOnInterrupt)


@contextmanager
def stop_on_interrupt() -> Iterator[Interrupt]:
    """Within, SIGINT stops tuning cleanly if ``.callback`` is FIRST in ``measure_callbacks``.

    A second SIGINT exits at once (status 130) without waiting for the batch.
    """
    flag = Interrupt()

    def handler(signum, frame) -> None:
        if flag.raised:
            print("ms-droplet: second interrupt, exiting now", file=sys.stderr, flush=True)
            os._exit(130)  # raising here would cross MetaSchedule's C++ frames
        flag.raised = True
        print("ms-droplet: interrupt: stopping after the batch in flight (Ctrl-C again to exit now)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
