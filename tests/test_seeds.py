"""The order in which measured schedules are tried as descent seeds: plain Python, no TVM."""

from ms_droplet.seeds import seed_order

# (mean run time, key, structure): two design spaces, "a" holding the fastest schedule
CANDIDATES = [(1.10, 3, "b"), (1.00, 1, "a"), (1.05, 2, "a"), (1.30, 4, "b"), (1.15, 5, "c")]


def test_by_default_the_fastest_comes_first_and_ties_go_by_key():
    assert seed_order(CANDIDATES, running=["a"], started=["a"]) == [1, 2, 3, 5, 4]
    assert seed_order([(1.0, 9, "a"), (1.0, 7, "b")]) == [7, 9]
    assert seed_order([], within=1.2) == []


def test_within_a_close_seed_of_a_structure_no_descent_holds_comes_first():
    # nothing started yet: the fastest
    assert seed_order(CANDIDATES, within=1.2)[0] == 1
    # "a" is being descended: the best of "b" (1.10), then of "c" (1.15), then "a"; 1.30 is too slow
    assert seed_order(CANDIDATES, running=["a"], started=["a"], within=1.2) == [3, 5, 1, 2, 4]
    # "a" and "b" each have a running descent, "a" had one more before: "c" first, then "b", then "a"
    assert seed_order(CANDIDATES, running=["a", "b"], started=["a", "a", "b"], within=1.2) == [5, 3, 1, 2, 4]


def test_within_falls_back_to_the_fastest_when_no_other_structure_is_close():
    assert seed_order(CANDIDATES, running=["a"], started=["a"], within=1.04) == [1, 2, 3, 5, 4]
    assert seed_order([(1.0, 1, "a"), (2.0, 2, "b")], running=["a"], within=1.2) == [1, 2]
