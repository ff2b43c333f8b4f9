"""What a task's search knows about schedules: those measured, and the candidates in flight."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate
from tvm.s_tir.schedule import Trace

from .space import Point
from .trace import base_trace, module_key, replay, run_samples

if TYPE_CHECKING:
    from tvm.ir import IRModule
    from tvm.s_tir.meta_schedule.database import Database
    from tvm.s_tir.schedule import Schedule

logger = logging.getLogger("tvm.s_tir.meta_schedule.droplet")


@dataclass
class Measured:
    """A schedule measured in this run or found in the database."""

    trace: Trace  # base trace (post-processing stripped)
    samples: tuple[float, ...] | None  # run seconds; None when it failed


@dataclass
class Pending:
    """A candidate handed out and not yet notified; index in the batch = index here."""

    key: int
    trace: Trace
    point: Point | None = None  # set for a descent's candidates
    control: bool = False  # measured again for a descent: its centre (paired=True) or a suspect (confirm)
    descent: int = 0  # number of the descent that proposed it (0: an exploration candidate)


#: a candidate schedule and what the strategy remembers of it
Proposal = tuple["Schedule", Pending]


def measure_candidate(sch: Schedule) -> MeasureCandidate:
    return MeasureCandidate(sch, ArgInfo.from_entry_func(sch.mod, remove_preproc=True))


def load_database(database: Database | None, mod: IRModule, postprocs) -> tuple[dict[int, Measured], int]:
    """This workload's records, replayed: they seed the descent and are never measured again.

    Returns the measured schedules by key and the number of records of this workload.
    """
    measured: dict[int, Measured] = {}
    if database is None:
        return measured, 0
    import tvm_ffi

    workload = database.commit_workload(mod)
    count = skipped = 0
    for record in database.get_all_tuning_records():
        if not (record.workload.same_as(workload) or tvm_ffi.structural_equal(record.workload.mod, mod)):
            continue
        count += 1
        trace = base_trace(record.trace)
        sch = replay(mod, trace, postprocs, seed=1)
        if sch is None:
            skipped += 1
            continue
        measured.setdefault(module_key(sch.mod), Measured(trace, run_samples(record.run_secs)))
    if skipped:
        logger.warning("droplet: skipped %d database record(s) whose trace no longer replays", skipped)
    return measured, count
