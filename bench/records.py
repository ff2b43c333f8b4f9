"""A tuning run's records as the bench's offline scripts read them."""

from __future__ import annotations

import json


def measured_rows(work_dir: str, mod, postprocs) -> list:
    """``(mean run time, MeasureCandidate)`` per record of ``work_dir``'s JSON database, in the
    order measured (the file's line order); a failed run's time is ``inf``, a record whose trace no
    longer replays is left out."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.candidates import measure_candidate
    from ms_droplet.stats import mean
    from ms_droplet.trace import base_trace, replay, run_samples

    workload = ms.database.JSONDatabase(work_dir=work_dir).commit_workload(mod)
    rows = []
    with open(f"{work_dir}/database_tuning_record.json") as f:
        for line in f:
            record = ms.database.TuningRecord.from_json(json.loads(line)[1], workload)
            sch = replay(mod, base_trace(record.trace), postprocs, 1)
            if sch is None:
                continue
            secs = run_samples(record.run_secs)
            rows.append((mean(secs) if secs else float("inf"), measure_candidate(sch)))
    return rows
