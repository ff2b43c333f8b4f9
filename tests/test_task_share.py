"""The run's number of tasks as the strategies see it (:mod:`ms_droplet.task_share`), without TVM."""

from __future__ import annotations

import pytest

from ms_droplet.task_share import Groups, share


def test_strategies_joining_with_one_key_before_any_starts_form_one_group():
    groups = Groups()
    first, second, third = (groups.join(("db", "model")) for _ in range(3))
    assert first is second is third
    assert first.close() == 3


def test_a_group_ends_at_its_first_batch_or_at_another_key():
    groups = Groups()
    a = groups.join("run1")
    a.close()  # a member started: a later join is another run, even with the same key
    b = groups.join("run1")
    assert b is not a and b.size == 1 and a.size == 1
    c = groups.join("run2")
    assert c is not b and c.size == 1


def test_share_is_an_even_split_of_at_least_one_trial():
    assert share(300, 6) == 50
    assert share(300, 1) == 300
    assert share(5, 11) == 1
    with pytest.raises(ValueError, match="tasks must be >= 1, got 0"):
        share(300, 0)
