"""Checks of a MetaSchedule JSON database before it is opened.

``JSONDatabase`` reads its two files line by line and appends to them as it tunes; a run killed
while writing, a full disk or a hand edit can leave a line it cannot read. :func:`check_work_dir`
finds such a line first and names it, so nothing is opened (or appended to) until it is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"


def check_work_dir(work_dir: str | Path) -> int:
    """Validate the database files of ``work_dir``; return the number of tuning records.

    Raises ``ValueError`` naming the file and the line of the first unreadable entry. Files
    that do not exist yet are fine (a fresh work dir); the files are only read.
    """
    work_dir = Path(work_dir)
    workloads = _check_lines(work_dir / WORKLOAD_FILE, _workload_problem)
    return _check_lines(work_dir / RECORD_FILE, lambda value: _record_problem(value, workloads))


def _check_lines(path: Path, problem) -> int:
    if not path.exists():
        return 0
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text at byte {err.start}; the file was left as it is") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot be read: {err.strerror}") from None
    count = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            reason = f"not valid JSON ({err.msg} at column {err.colno})"
        else:
            reason = problem(value)
        if reason:
            raise ValueError(
                f"{path}:{lineno}: {reason}; the file was left as it is: remove or repair that line "
                "(a truncated last line comes from a run killed while writing) and run again"
            )
        count += 1
    return count


def _workload_problem(value) -> str | None:
    ok = isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
    return None if ok else "not a workload entry [hash, module]"


def _record_problem(value, workloads: int) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], list)):
        return "not a tuning record [workload index, [trace, run_secs, target, args]]"
    if not 0 <= value[0] < workloads:
        return f"workload index {value[0]} is not in {WORKLOAD_FILE} ({workloads} workloads)"
    if len(value[1]) != 4:
        return "a tuning record needs [trace, run_secs, target, args]"
    run_secs = value[1][1]
    if run_secs is not None and not (
        isinstance(run_secs, list) and all(isinstance(x, (int, float)) for x in run_secs)
    ):
        return f"run_secs {run_secs!r} is not a list of numbers"
    return None
