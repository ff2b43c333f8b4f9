"""When is a measured neighbour really faster than the centre of the droplet?"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats


def mean(samples: Sequence[float]) -> float:
    """Arithmetic mean of run times (``inf`` for no samples)."""
    return math.fsum(samples) / len(samples) if samples else math.inf


def is_faster(candidate: Sequence[float], incumbent: Sequence[float], p_value: float = 0.05) -> bool:
    """Whether ``candidate`` run times beat ``incumbent`` run times.

    The candidate must have the lower mean. When both sides have at least two samples it must
    also pass a one-sided Welch t-test (``scipy.stats.ttest_ind``, unequal variances,
    alternative "candidate is less") at level ``p_value``. With a single sample on either side
    no test is possible and the lower mean decides alone, as in the original Droplet Search;
    MetaSchedule's default runner takes one sample (``repeat=1``), so ask for ``repeat >= 2``
    to get the test. Two sides without any spread are decided by their means; one side without
    spread is a constant the other side is tested against.
    """
    if not candidate or not incumbent:
        return False
    if mean(candidate) >= mean(incumbent):
        return False
    if len(candidate) < 2 or len(incumbent) < 2:
        return True
    flat_candidate, flat_incumbent = _flat(candidate), _flat(incumbent)
    if flat_candidate and flat_incumbent:
        return True
    # Welch's test with one side constant is the one-sample t-test of the other side against
    # that constant (same statistic, same degrees of freedom); scipy warns of precision loss on
    # the constant side, so that case is asked directly.
    if flat_incumbent:
        result = stats.ttest_1samp(candidate, mean(incumbent), alternative="less")
    elif flat_candidate:
        result = stats.ttest_1samp(incumbent, mean(candidate), alternative="greater")
    else:
        result = stats.ttest_ind(candidate, incumbent, equal_var=False, alternative="less")
    return bool(result.pvalue <= p_value)


def rank_agreement(groups: Sequence[Sequence[tuple[float, float]]]) -> tuple[float, int]:
    """How well predicted scores (higher: faster) order measured times (lower: faster), within
    each group of ``(score, time)`` pairs: Spearman's rank correlation of each group, averaged
    weighted by its size, and the number of pairs it rests on. 1: the scores order every group's
    times exactly; near 0: at random. Groups of fewer than three pairs or with a constant side
    have no order to agree with and count for nothing (NaN if no group is left).

    Within groups, because pooled pairs scored against different references correlate through
    the references alone: a centre scored low makes its neighbours' score ratios high."""
    total = weight = 0
    for group in groups:
        scores, times = [s for s, _ in group], [t for _, t in group]
        if len(group) < 3 or len(set(scores)) < 2 or len(set(times)) < 2:
            continue
        total += len(group) * float(stats.spearmanr(scores, [-t for t in times]).statistic)
        weight += len(group)
    return (total / weight if weight else math.nan), weight


def _spread(samples: Sequence[float]) -> float:
    return max(samples) - min(samples)


def _flat(samples: Sequence[float]) -> bool:
    """No spread, up to rounding (equal timer readings; scipy's moments lose all precision)."""
    return _spread(samples) <= 1e-12 * max(abs(s) for s in samples)


def is_faster_paired(
    candidate: Sequence[float], control: Sequence[float], p_value: float = 0.05, min_gain: float = 0.0
) -> bool:
    """Whether ``candidate`` beats ``control`` when sample ``r`` of both was taken in the same round.

    Decided on the per-round log-ratios ``log(candidate[r] / control[r])``, which cancel the
    drift both shared: their mean must be below ``log(1 - min_gain)`` (the candidate faster by
    more than ``min_gain``, a noise floor) and a one-sided one-sample t-test against that value
    must give ``p <= p_value``. Ratios without any spread are decided by their mean.
    """
    if len(candidate) != len(control) or len(candidate) < 2:
        raise ValueError(
            f"a paired comparison needs two or more samples on each side, as many on both; "
            f"got {len(candidate)} and {len(control)}"
        )
    if not 0 <= min_gain < 1:
        raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
    ratios = [math.log(c / k) for c, k in zip(candidate, control, strict=True)]
    floor = math.log1p(-min_gain)
    if mean(ratios) >= floor:
        return False
    if _spread(ratios) < 1e-12:  # identical ratios (up to rounding): no spread for a test to measure
        return True
    result = stats.ttest_1samp(ratios, floor, alternative="less")
    return bool(result.pvalue <= p_value)
