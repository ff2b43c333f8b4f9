"""Figures of the bench: tuning curves per workload and a summary of kernel-time ratios."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(runs: list[dict], out: Path, n: int) -> list[Path]:
    """Best latency so far against trials and against wall time, one figure per workload."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for workload in sorted({r["workload"] for r in runs if r["n"] == n}):
        fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(11, 4))
        for run in (r for r in runs if r["workload"] == workload and r["n"] == n):
            points = [(t, s, b * 1e6) for t, s, b in run["curve"] if math.isfinite(b)]
            if not points:
                continue
            trials, secs, best = zip(*points, strict=True)
            label = run["contender"] + (f" seed {run['seed']}" if run.get("seed") else "")
            by_trial.step(trials, best, where="post", label=label)
            by_time.step(secs, best, where="post", label=label)
        for ax, label in ((by_trial, "trials measured"), (by_time, "wall time (s)")):
            ax.set_xlabel(label)
            ax.set_ylabel("best latency so far (us)")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
        by_trial.legend(fontsize=8)
        fig.suptitle(f"{workload}: tuning curves (N={n})")
        fig.tight_layout()
        path = out / f"curve-{workload}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_ratios(summary: dict, out: Path) -> Path | None:
    """Kernel latency of every contender relative to evolutionary@N, per workload."""
    rows = [
        (workload, name, row["ratio_to_evolutionary@N"])
        for workload, entry in summary["workloads"].items()
        for name, row in entry["contenders"].items()
        if "ratio_to_evolutionary@N" in row
    ]
    if not rows:
        return None
    out.mkdir(parents=True, exist_ok=True)
    workloads = sorted({w for w, _, _ in rows})
    names = sorted({c for _, c, _ in rows})
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(workloads)), 4))
    for i, name in enumerate(names):
        xs = [workloads.index(w) + i * width for w, c, _ in rows if c == name]
        ys = [r for _, c, r in rows if c == name]
        ax.bar(xs, ys, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(workloads))], workloads)
    ax.set_ylabel("kernel latency / evolutionary@N (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "ratios.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
