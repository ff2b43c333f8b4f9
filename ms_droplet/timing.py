"""Timing contenders fairly on a noisy machine: in turn, round after round, then the median."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping


def interleaved(timers: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every timer once per round, in turn (A B C ... A B C ...); the seconds each returned.

    Interleaving spreads slow phases of the machine over all contenders instead of one.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(float(timer()))
    return samples


def evaluator_timer(evaluator: Callable, *args) -> Callable[[], float]:
    """A timer for :func:`interleaved` from a TVM ``time_evaluator``: mean seconds of one call on ``args``."""
    return lambda: evaluator(*args).mean


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each contender's samples."""
    return {name: statistics.median(values) for name, values in samples.items()}
