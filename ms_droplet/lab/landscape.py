"""A landscape: schedules of one workload, each with the run times measured for it, batch by batch.

On disk a landscape is a directory holding ``landscape.jsonl.gz``: a header line (workload, its
module, the target, the machine), then one line per measurement of one schedule in one batch::

    {"key": "123...", "batch": 7, "source": "evolutionary", "secs": [1.2e-4, ...], "trace": [...]}

``key`` is the structural hash of the scheduled module (the same hash the strategy and the
simulated builder use), ``secs`` is ``null`` for a failed build or run, and ``trace`` (the
schedule's full trace in MetaSchedule's JSON form) is written with a key's first line only.
Lines are appended batch by batch, so a recording that stops early leaves a usable landscape.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "landscape.jsonl.gz"
FORMAT_VERSION = 1
#: batch of a measurement whose batch is unknown (added from a MetaSchedule work dir)
UNKNOWN_BATCH = -1


class LandscapeError(ValueError):
    """A landscape that is missing, unreadable or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Measurement:
    """One schedule timed in one batch: its samples in seconds, or ``None`` when it failed."""

    key: int
    batch: int
    source: str
    secs: tuple[float, ...] | None


@dataclass
class Landscape:
    """Every measurement of one workload's schedules, and the traces that rebuild them."""

    workload: str
    mod_json: str  # tvm.ir.save_json of the workload's IRModule
    target: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    traces: dict[int, Any] = field(default_factory=dict)  # key -> trace JSON
    measurements: list[Measurement] = field(default_factory=list)

    @property
    def mod(self):
        import tvm

        return tvm.ir.load_json(self.mod_json)

    def values(self) -> dict[int, float | None]:
        """The noise-free value of every schedule: the median over batches of its per-batch medians
        (``None`` for a schedule whose every measurement failed)."""
        per_key: dict[int, list[float]] = defaultdict(list)
        failed: set[int] = set()
        for m in self.measurements:
            if m.secs:
                per_key[m.key].append(statistics.median(m.secs))
            else:
                failed.add(m.key)
        out: dict[int, float | None] = {key: None for key in failed}
        out.update({key: statistics.median(meds) for key, meds in per_key.items()})
        return out

    def summary(self) -> dict[str, Any]:
        values = self.values()
        ok = sorted(v for v in values.values() if v is not None)
        batches_of: dict[int, set[int]] = defaultdict(set)
        for m in self.measurements:
            if m.secs and m.batch != UNKNOWN_BATCH:
                batches_of[m.key].add(m.batch)
        return {
            "workload": self.workload,
            "schedules": len(values),
            "failed": sum(v is None for v in values.values()),
            "measurements": len(self.measurements),
            "repeated_schedules": sum(len(b) >= 2 for b in batches_of.values()),
            "best_us": ok[0] * 1e6 if ok else None,
            "median_us": statistics.median(ok) * 1e6 if ok else None,
            "sources": dict(sorted(_count(m.source for m in self.measurements).items())),
        }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for item in items:
        out[item] += 1
    return out


def plain(obj):
    """A TVM object (arrays, maps, boxed numbers, strings) as plain Python for ``json``."""
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    if hasattr(obj, "items"):
        return {str(k): plain(v) for k, v in obj.items()}
    if hasattr(obj, "value"):
        return obj.value
    return [plain(x) for x in obj]


def path_of(directory: str | Path) -> Path:
    return Path(directory) / FILE_NAME


def create(directory: str | Path, workload: str, mod, target, machine: dict[str, Any]) -> Path:
    """Start an empty landscape in ``directory`` (which must not hold one yet)."""
    import tvm

    path = path_of(directory)
    if path.exists():
        raise LandscapeError(f"{path} already exists; record into a new directory or add to it")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"version": FORMAT_VERSION, "workload": workload, "mod": tvm.ir.save_json(mod),
              "target": plain(target.export()), "machine": machine}
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(header) + "\n")
    return path


def append(directory: str | Path, rows: list[tuple[Measurement, Any]], known: set[int]) -> None:
    """Append measurements (each with its trace JSON); traces of keys in ``known`` are not repeated.

    ``known`` is updated. Each call adds one gzip member, which ``gzip`` reads as one stream.
    """
    lines = []
    for m, trace in rows:
        line: dict[str, Any] = {"key": str(m.key), "batch": m.batch, "source": m.source,
                                "secs": None if m.secs is None else list(m.secs)}
        if m.key not in known:
            line["trace"] = trace
            known.add(m.key)
        lines.append(json.dumps(line))
    if lines:
        with gzip.open(path_of(directory), "at") as f:
            f.write("\n".join(lines) + "\n")


def load(directory: str | Path) -> Landscape:
    """Read the landscape in ``directory``; :class:`LandscapeError` names the file on any fault."""
    path = path_of(directory)
    if not Path(directory).is_dir():
        raise LandscapeError(f"landscape directory {directory} does not exist")
    if not path.is_file():
        raise LandscapeError(f"{path} does not exist: record one with `ms-droplet landscape record`")
    try:
        with gzip.open(path, "rt") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise LandscapeError(f"{path} is not a readable gzip file ({err})") from None
    if not lines:
        raise LandscapeError(f"{path} is empty")
    try:
        header = json.loads(lines[0])
        if header.get("version") != FORMAT_VERSION:
            raise LandscapeError(f"{path}: format version {header.get('version')!r}, expected {FORMAT_VERSION}")
        land = Landscape(header["workload"], header["mod"], header["target"], header.get("machine", {}))
        for number, text in enumerate(lines[1:], start=2):
            row = json.loads(text)
            key = int(row["key"])
            secs = row["secs"]
            if secs is not None and (not secs or any(not math.isfinite(s) or s <= 0 for s in secs)):
                raise LandscapeError(f"{path} line {number}: run times {secs!r} are not positive numbers")
            if "trace" in row:
                land.traces[key] = row["trace"]
            elif key not in land.traces:
                raise LandscapeError(f"{path} line {number}: schedule {key} has no trace")
            land.measurements.append(Measurement(key, int(row["batch"]), str(row["source"]),
                                                 None if secs is None else tuple(float(s) for s in secs)))
    except LandscapeError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise LandscapeError(f"{path} is corrupt ({type(err).__name__}: {err})") from None
    return land


def next_batch(land: Landscape) -> int:
    return 1 + max((m.batch for m in land.measurements), default=UNKNOWN_BATCH)
