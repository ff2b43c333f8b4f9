"""Which measured schedule the next descent starts from (plain Python, no TVM).

By default the fastest one no descent has visited. A descent moves decisions within its
seed's structure (its design space) only, and MetaSchedule's CPU space generator makes several
per workload (three on five of the bench's workloads, nine on softmax) whose best schedules are
often close after a short exploration; which one holds the faster basin is then a coin toss
(bench, C1D-0: every kernel at 57 us or faster had a trace of 24 instructions, the
22-instruction space never went below 60.3 us in 15 runs). With
``within``, a seed of a structure with fewer descents (running ones first, then all) comes
first, if it is at most ``within`` times the fastest candidate's time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import TypeVar

Key = TypeVar("Key")  # comparable: it breaks ties between equal times

#: With diverse seeds: how much slower than the fastest a seed of another structure may be.
DIVERSE_WITHIN = 1.2


def seed_order(
    candidates: Sequence[tuple[float, Key, Hashable]],
    running: Sequence[Hashable] = (),
    started: Sequence[Hashable] = (),
    within: float | None = None,
) -> list[Key]:
    """The candidates' keys in the order to try them as the next seed.

    ``candidates`` are (mean run time, key, structure) of the schedules no descent has visited;
    ``running`` and ``started`` the structures of the running descents and of every descent
    started so far (one entry per descent). Without ``within``: fastest first. With it:
    first the candidates at most ``within`` times the fastest, by (descents running in their
    structure, descents started in it, time), then the rest, fastest first.
    """
    ranked = sorted(candidates, key=lambda c: (c[0], c[1]))  # ties: by key, for the same order every run
    if within is None or not ranked:
        return [key for _, key, _ in ranked]
    limit = ranked[0][0] * within
    busy, used = Counter(running), Counter(started)
    near = sorted((c for c in ranked if c[0] <= limit), key=lambda c: (busy[c[2]], used[c[2]], c[0]))
    return [key for _, key, _ in near] + [key for time, key, _ in ranked if time > limit]
