"""The tuning curve of any MetaSchedule work dir, read from its JSON database."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .trace import run_samples

RECORDS = "database_tuning_record.json"
WORKLOADS = "database_workload.json"


@dataclass
class Curve:
    """Per workload index: best mean run time (seconds) after each record, in file order."""

    best: dict[int, list[float]]
    failures: dict[int, int]


def read_curve(work_dir: str | Path) -> Curve:
    """Parse ``database_tuning_record.json``; a bad line raises ``ValueError`` naming file and line."""
    path = Path(work_dir) / RECORDS
    if not path.is_file():
        raise ValueError(f"no MetaSchedule database in {str(work_dir)!r}: {str(path)!r} does not exist")
    best: dict[int, list[float]] = {}
    failures: dict[int, int] = {}
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                workload, record = json.loads(line)
                run_secs = [float(x) for x in record[1]] if record[1] is not None else []
            except (ValueError, TypeError, IndexError) as err:
                raise ValueError(f"{path}:{lineno}: not a MetaSchedule tuning record ({err})") from None
            curve = best.setdefault(int(workload), [])
            samples = run_samples(run_secs)
            latency = math.fsum(samples) / len(samples) if samples else math.inf
            if samples is None:
                failures[int(workload)] = failures.get(int(workload), 0) + 1
            curve.append(min(latency, curve[-1]) if curve else latency)
    return Curve(best, failures)


def workload_labels(work_dir: str | Path) -> dict[int, str]:
    """A readable name per workload index: the work dir's name when it holds one workload, else the
    names of the workload's blocks (``conv2d_nchw+T_add+T_relu``); ``workload I`` where unreadable.
    """
    import tvm
    import tvm_ffi
    from tvm.s_tir.meta_schedule.database import Workload

    path = Path(work_dir) / WORKLOADS
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    if len(lines) == 1:
        return {0: Path(work_dir).resolve().name}
    labels = {}
    for index, line in enumerate(lines):
        names: list[str] = []
        try:
            mod = Workload.from_json(json.loads(line)).mod
            for func in mod.functions.values():
                tvm_ffi.structural_walk(func.body, [(tvm.s_tir.SBlock, lambda b, out=names: out.append(b.name_hint))])
        except Exception:  # a damaged or foreign entry keeps its number
            names = []
        names = [n for n in names if n != "root"]
        shown = "+".join(names[:3]) + ("+..." if len(names) > 3 else "")
        labels[index] = shown or f"workload {index}"
    return labels


def plot_curve(
    curve: Curve, out: str | Path, title: str = "", labels: dict[int, str] | None = None
) -> Path:
    """Best latency so far against records measured, one line per workload (named by ``labels``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for workload, values in sorted(curve.best.items()):
        points = [(i + 1, v * 1e6) for i, v in enumerate(values) if math.isfinite(v)]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.step(xs, ys, where="post", label=(labels or {}).get(workload, f"workload {workload}"))
    ax.set_xlabel("trials measured (database order)")
    ax.set_ylabel("best latency so far (us)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
