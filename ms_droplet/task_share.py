"""How many tasks one MetaSchedule run tunes, as seen from inside one task's strategy (plain Python).

MetaSchedule's task scheduler gives every task's strategy the run's ``max_trials_per_task`` as
``max_trials``, and that is the global budget unless the caller sets it (``tune_tasks``,
``tune_relax``). A strategy that plans its exploration from ``max_trials`` then plans for the
whole run's budget in every task: on a model of six tasks and 300 trials droplet planned 150
exploration trials per task, got 30-100 and never descended. The number of tasks is not passed
to a strategy, but ``TaskScheduler::Tune`` calls every task's ``PreTuning`` in turn, with the
run's one database and cost model, before it asks any task for candidates. So a group is the
strategies that joined with the same key (the run's database and cost model) before any of
them started: :meth:`Groups.join` at ``pre_tuning``, :meth:`Group.close` at the first batch.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass
class Group:
    """The strategies of one run: ``size`` of them, final once ``closed``; ``results``: how many
    runner results its tasks have had back, so far. The run's cost model is updated with every
    task's (MetaSchedule's ``UpdateCostModel`` callback), so this, not one task's count, is what
    it has trained on."""

    key: Hashable
    size: int = 0
    closed: bool = False
    results: int = 0

    def close(self) -> int:
        """No more members (a member started, or finished); returns the size."""
        self.closed = True
        return self.size


class Groups:
    """The group being formed: joins extend it while it is open and has the same key."""

    def __init__(self) -> None:
        self._open: Group | None = None

    def join(self, key: Hashable) -> Group:
        group = self._open
        if group is None or group.closed or group.key != key:
            group = self._open = Group(key)
        group.size += 1
        return group


def share(max_trials: int, tasks: int) -> int:
    """A task's even share of ``max_trials`` among ``tasks`` (at least one trial)."""
    if tasks < 1:
        raise ValueError(f"share: tasks must be >= 1, got {tasks!r}")
    return max(1, max_trials // tasks)
