"""Measurement noise as the landscape saw it: per-sample noise, per-batch drift, per-candidate scatter.

The log of sample ``r`` of schedule ``c`` timed in batch ``b`` is modelled as::

    log t = log T_c + d_b + u_cb + e_cbr,   d_b ~ N(0, batch_sigma), u_cb ~ N(0, candidate_sigma),
                                              e_cbr ~ N(0, sample_sigma)

``T_c`` is the schedule's noise-free value, ``d_b`` moves a whole batch (the machine's drift),
``u_cb`` moves one candidate in one batch (cache and frequency luck), ``e_cbr`` moves one
sample. ``sample_sigma`` is fitted on the spread of each measurement's samples; the other two on
schedules measured in several batches (the panel and the re-timed centres of a recording).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .landscape import UNKNOWN_BATCH, Landscape


@dataclass(frozen=True)
class NoiseModel:
    """Standard deviations of the three log-normal factors (0 for all: noise-free answers)."""

    sample_sigma: float = 0.0
    batch_sigma: float = 0.0
    candidate_sigma: float = 0.0

    @classmethod
    def fit(cls, land: Landscape) -> NoiseModel:
        """Fit on the landscape's repeated measurements (zero where it has none)."""
        within: list[float] = []  # squared deviations of log samples from their measurement's mean
        dof = 0
        means: dict[int, dict[int, float]] = defaultdict(dict)  # key -> batch -> mean log
        counts: list[int] = []
        for m in land.measurements:
            if not m.secs:
                continue
            logs = np.log(m.secs)
            if len(logs) >= 2:
                within.extend((logs - logs.mean()) ** 2)
                dof += len(logs) - 1
                counts.append(len(logs))
            if m.batch != UNKNOWN_BATCH:
                means[m.key][m.batch] = float(logs.mean())
        sample_sigma = math.sqrt(sum(within) / dof) if dof else 0.0
        # residual of each (schedule, batch) from the schedule's mean over its batches
        resid: dict[int, list[tuple[int, float]]] = defaultdict(list)  # batch -> [(key, residual)]
        for key, per_batch in means.items():
            if len(per_batch) < 2:
                continue
            centre = sum(per_batch.values()) / len(per_batch)
            shrink = math.sqrt(len(per_batch) / (len(per_batch) - 1))  # undo the mean's own share
            for batch, value in per_batch.items():
                resid[batch].append((key, (value - centre) * shrink))
        drift = [np.mean([r for _, r in rows]) for rows in resid.values() if len(rows) >= 2]
        batch_sigma = float(np.std(drift, ddof=1)) if len(drift) >= 2 else 0.0
        scatter = [r - np.mean([x for _, x in rows]) for rows in resid.values() if len(rows) >= 2 for _, r in rows]
        samples_per = float(np.median(counts)) if counts else 1.0
        total = float(np.var(scatter, ddof=1)) if len(scatter) >= 2 else 0.0
        candidate_sigma = math.sqrt(max(total - sample_sigma**2 / samples_per, 0.0))
        return cls(sample_sigma, batch_sigma, candidate_sigma)

    def scaled(self, factor: float) -> NoiseModel:
        return NoiseModel(self.sample_sigma * factor, self.batch_sigma * factor, self.candidate_sigma * factor)

    def draw(self, rng: np.random.Generator, values: np.ndarray, rounds: int) -> np.ndarray:
        """Samples (``len(values)`` x ``rounds``) for one batch of schedules of the given values."""
        values = np.asarray(values, dtype=float)
        log_noise = np.zeros((len(values), rounds))  # multiplied in, so zero noise returns the values exactly
        if self.batch_sigma:
            log_noise += rng.normal(0.0, self.batch_sigma)
        if self.candidate_sigma:
            log_noise += rng.normal(0.0, self.candidate_sigma, size=(len(values), 1))
        if self.sample_sigma:
            log_noise += rng.normal(0.0, self.sample_sigma, size=(len(values), rounds))
        return values[:, None] * np.exp(log_noise)

    def describe(self) -> str:
        return (f"per-sample {100 * self.sample_sigma:.2f}%, per-batch drift {100 * self.batch_sigma:.2f}%, "
                f"per-candidate scatter {100 * self.candidate_sigma:.2f}% (log-normal sigmas)")
