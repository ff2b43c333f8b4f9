"""The droplet state machine and its acceptance test: plain Python, no TVM."""

import math
import warnings

import pytest
from scipy import stats

from ms_droplet.descent import Droplet
from ms_droplet.space import CATEGORICAL, COMPUTE_LOCATION, TILE, DecisionSpace, Site
from ms_droplet.stats import is_faster, mean, rank_agreement

SPACE = DecisionSpace((Site(TILE, 0, extent=16, max_innermost=16), Site(CATEGORICAL, 1, num_choices=4)))


def cost(point):
    """A smooth bowl with its minimum at ((1, 4, 4), 2)."""
    tiles, unroll = point
    return 1.0 + sum(abs(math.log2(a) - math.log2(b)) for a, b in zip(tiles, (1, 4, 4), strict=False)) + abs(unroll - 2)


def run(droplet, budget=1000):
    measured = 0
    while not droplet.converged and measured < budget:
        proposals = droplet.proposals()
        if not proposals:
            break
        droplet.observe({p: (cost(p),) for p in proposals})
        measured += len(proposals)
    return measured


def test_descent_reaches_the_minimum_of_a_bowl_and_converges():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),))
    run(droplet)
    assert droplet.converged
    assert droplet.center == ((1, 4, 4), 2)
    assert droplet.best_time == pytest.approx(1.0)
    assert droplet.accepted and droplet.accepted[-1] == droplet.center


def test_radius_grows_without_improvement_and_resets_on_acceptance():
    best = ((1, 4, 4), 2)
    droplet = Droplet(SPACE, best, (cost(best),))
    droplet.observe({p: (cost(p),) for p in droplet.proposals()})
    assert droplet.radius == 2 and droplet.center == best
    # a faster point at radius 2 recentres and resets
    proposals = droplet.proposals()
    droplet.observe({proposals[0]: (0.5,)})
    assert droplet.center == proposals[0] and droplet.radius == 1


def test_max_radius_converges_once_no_radius_up_to_it_holds_a_faster_point():
    best = ((1, 4, 4), 2)
    assert SPACE.max_radius() == 4
    radius_one = Droplet(SPACE, best, (cost(best),)).proposals()
    droplet, full = Droplet(SPACE, best, (cost(best),), max_radius=1), Droplet(SPACE, best, (cost(best),))
    assert run(droplet) == len(radius_one) < run(full)  # at the optimum: radius 1 screened, then done
    assert droplet.converged and droplet.proposals() == [] and droplet.center == best
    # a move resets the radius: the descent goes on from each new centre, at radius 1 only
    start = ((16, 1, 1), 0)
    short, full = Droplet(SPACE, start, (cost(start),), max_radius=1), Droplet(SPACE, start, (cost(start),))
    run(short), run(full)
    assert len(short.accepted) >= 2 and short.converged and full.center == best
    assert len(short.visited) < len(full.visited)
    # a bound past the space's largest range changes nothing
    wide = Droplet(SPACE, start, (cost(start),), max_radius=99)
    run(wide)
    assert wide.visited == full.visited and wide.center == full.center


def test_failed_points_are_visited_but_never_accepted():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),))
    proposals = droplet.proposals()
    assert droplet.observe(dict.fromkeys(proposals)) is None
    assert all(p in droplet.visited for p in proposals)
    assert droplet.center == start


def test_exhausted_radius_is_skipped_by_proposals():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),))
    first = droplet.proposals()
    droplet.visited.update(first)  # as if measured elsewhere
    nxt = droplet.proposals()
    assert droplet.radius >= 2 and nxt and not set(nxt) & set(first)


# late radii hold one neighbour each: the unroll-like site moved alone, up to 9 steps away
LONG = DecisionSpace((Site(TILE, 0, extent=16, max_innermost=16), Site(CATEGORICAL, 1, num_choices=10)))


def _batches_to_converge(space, start, fill, cost=lambda point: 1.0 + (point[0] != (1, 4, 4)) + point[1]):
    droplet = Droplet(space, start, (cost(start),))
    sizes = []
    while proposals := droplet.proposals(fill):
        sizes.append(len(proposals))
        droplet.observe({p: (cost(p),) for p in proposals})
    return droplet, sizes


def test_fill_joins_the_next_radii_to_a_small_radius_and_keeps_the_points_measured():
    start = ((1, 4, 4), 0)  # the minimum of the default cost
    one, one_sizes = _batches_to_converge(LONG, start, fill=1)
    filled, sizes = _batches_to_converge(LONG, start, fill=4)
    assert one_sizes == [5, 5, 1, 1, 1, 1, 1, 1, 1]
    # nothing is accepted from the minimum: the same neighbours, in fewer and fuller batches
    assert filled.visited == one.visited and filled.center == one.center == start
    assert sizes == [5, 5, 4, 3]
    # nearest radius first: a short radius comes whole, then the next ones
    first = Droplet(LONG, start, (1.0,))
    assert first.proposals(8)[:5] == first.proposals() and len(first.proposals(8)) == 10


def test_fill_still_descends_to_the_minimum():
    droplet, _ = _batches_to_converge(SPACE, ((16, 1, 1), 0), fill=8, cost=cost)
    assert droplet.center == ((1, 4, 4), 2) and droplet.converged


def test_seed_outside_the_space_is_rejected():
    with pytest.raises(ValueError, match=r"\(\(3, 1, 1\), 0\)"):
        Droplet(SPACE, ((3, 1, 1), 0), (1.0,))


def test_best_of_several_significant_neighbours_wins():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (5.0, 5.1, 4.9))
    a, b = droplet.proposals()[:2]
    droplet.observe({a: (3.0, 3.1, 2.9), b: (2.0, 2.1, 1.9)})
    assert droplet.center == b


def test_is_faster_uses_welch_test_with_two_or_more_samples():
    assert is_faster([1.0, 1.01, 0.99], [2.0, 2.02, 1.98])
    # lower mean but hopelessly noisy: not significant
    assert not is_faster([1.0, 3.0, 0.5], [1.6, 1.7, 1.5])
    assert not is_faster([2.0, 2.0], [1.0, 1.0])


def test_is_faster_with_a_single_sample_decides_by_mean():
    assert is_faster([1.0], [1.1, 1.2, 5.0])
    assert not is_faster([1.2], [1.1])
    assert not is_faster([], [1.0]) and not is_faster([1.0], [])


def test_is_faster_without_spread_decides_by_mean():
    assert is_faster([1.0, 1.0], [2.0, 2.0])


def test_is_faster_with_one_side_without_spread_is_welch_without_scipys_warning():
    """Equal timer readings on one side made scipy warn of precision loss (seen in CI); the
    decision must stay Welch's, at the same p-value."""
    cases = [([0.9, 0.95, 0.99], [1.0, 1.0, 1.0]), ([1.0, 1.0, 1.0], [1.02, 1.05, 1.2]),
             ([1e-5, 1e-5, 1e-5 * (1 + 1e-15)], [1.1e-5, 1.2e-5, 1.05e-5])]
    for candidate, incumbent in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            welch = stats.ttest_ind(candidate, incumbent, equal_var=False, alternative="less").pvalue
        assert 0.001 < welch < 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert is_faster(candidate, incumbent, p_value=welch * 1.01)
            assert not is_faster(candidate, incumbent, p_value=welch * 0.99)


def test_p_value_threshold_matters():
    a, b = [1.0, 1.2, 1.1], [1.25, 1.35, 1.3]
    assert is_faster(a, b, p_value=0.05)
    assert not is_faster(a, b, p_value=0.001)


def test_mean():
    assert mean([1.0, 2.0]) == 1.5
    assert mean([]) == math.inf


def test_two_site_moves_change_exactly_two_sites_by_radius_one_and_are_sampled_reproducibly():
    import random

    from ms_droplet.neighbourhood import neighbours, two_site_neighbours

    space = DecisionSpace((Site(TILE, 0, extent=16, max_innermost=16), Site(CATEGORICAL, 1, num_choices=4),
                           Site(CATEGORICAL, 2, num_choices=4)))
    point = ((4, 2, 2), 1, 2)
    singles = set(neighbours(space, point, 1))
    every = two_site_neighbours(space, point, 10_000, random.Random(0))
    assert every and len(every) == len(set(every))
    for p in every:
        changed = [i for i in range(3) if p[i] != point[i]]
        assert len(changed) == 2 and space.admits(p)
        # each changed site took one of its radius-1 moves
        assert all((*point[:i], p[i], *point[i + 1:]) in singles for i in changed)
    sample = two_site_neighbours(space, point, 5, random.Random(3))
    assert len(sample) == 5 and set(sample) <= set(every)
    assert sample == two_site_neighbours(space, point, 5, random.Random(3))


def test_radius_one_offers_two_site_moves_only_when_asked():
    start = ((16, 1, 1), 0)
    plain = Droplet(SPACE, start, (cost(start),))
    # from here: two tile moves times one unroll move make two two-site moves; one is sampled
    wide = Droplet(SPACE, start, (cost(start),), two_site=1, seed=1)
    extra = set(wide.proposals()) - set(plain.proposals())
    assert len(extra) == 1
    assert all(p[0] != start[0] and p[1] != start[1] for p in extra)
    every = Droplet(SPACE, start, (cost(start),), two_site=9, seed=1)
    assert set(every.proposals()) - set(plain.proposals()) == {((8, 2, 1), 1), ((8, 1, 2), 1)}


def test_donor_moves_take_one_site_from_a_donor_however_far_and_reach_its_basin_in_one_step():
    from ms_droplet.neighbourhood import donor_neighbours, neighbours

    start = ((16, 1, 1), 0)
    donor = ((1, 4, 4), 3)  # far at the tile site (radius 4), radius 3 at the unroll site
    assert donor_neighbours(SPACE, start, [donor, start]) == [((1, 4, 4), 0), ((16, 1, 1), 3)]
    assert ((1, 4, 4), 0) not in neighbours(SPACE, start, 1)
    plain = Droplet(SPACE, start, (cost(start),))
    crossed = Droplet(SPACE, start, (cost(start),), donors=[donor, ((3, 1, 1), 0)])  # not in the space: dropped
    assert crossed.donors == [donor]
    assert set(crossed.proposals()) - set(plain.proposals()) == {((1, 4, 4), 0), ((16, 1, 1), 3)}
    crossed.observe({p: (cost(p),) for p in crossed.proposals()})
    assert crossed.center == ((1, 4, 4), 0)  # the tile decision of the donor, in one move
    run(crossed)
    assert crossed.center == ((1, 4, 4), 2)


def test_serial_candidates_fold_the_outer_tile_levels_inward_with_every_compute_location():
    from ms_droplet.neighbourhood import outer_tiles_inward, serial_candidates

    space = DecisionSpace((Site(TILE, 0, extent=16), Site(TILE, 1, extent=16), Site(TILE, 2, extent=3),
                           Site(COMPUTE_LOCATION, 3, num_choices=4)))
    parallel = ((2, 1, 8, 1), (4, 2, 2, 1), (3,), 1)  # two spatial sites with outer factors > 1
    one = ((1, 2, 8, 1), (1, 8, 2, 1), (3,), 1)  # the one-level (reduction-like) site stays
    two = ((1, 1, 16, 1), (1, 1, 16, 1), (3,), 1)
    assert outer_tiles_inward(space, parallel) == one
    assert outer_tiles_inward(space, parallel, depth=2) == two
    assert outer_tiles_inward(space, parallel, depth=3) == ((1, 1, 1, 16), (1, 1, 1, 16), (3,), 1)
    assert outer_tiles_inward(space, one) is None
    found = serial_candidates(space, parallel)
    assert found[:2] == [one, (*one[:3], -2)]  # depth 1, then its compute locations from -2 (inlined) on
    assert len(found) == len(set(found)) == 3 * 6  # 3 depths x locations -2 to 3 (1 is the depth's own)
    assert parallel not in found and all(space.admits(p) for p in found)
    assert {p[:3] for p in found} == {one[:3], two[:3], outer_tiles_inward(space, parallel, depth=3)[:3]}


def test_the_serial_moves_are_asked_once_per_centre_and_pinned_until_visited():
    space = DecisionSpace((Site(TILE, 0, extent=16), Site(CATEGORICAL, 1, num_choices=4)))
    parallel = ((4, 1, 4, 1), 1)
    serial = ((1, 4, 4, 1), 1)  # a move of radius 2: not among the radius-1 neighbours
    asked = []

    def serial_moves(centre, time):  # stands for the driver's search of schedules without a parallel loop
        asked.append((centre, time))
        return [serial, centre, ((3, 1, 1, 1), 1)] if centre == parallel else []  # the centre, an illegal point: dropped

    plain = Droplet(space, parallel, (1.0,))
    assert plain.pinned == set() and serial not in plain.proposals()
    droplet = Droplet(space, parallel, (1.0, 3.0), serial=serial_moves)
    assert droplet.pinned == {serial} and serial in droplet.proposals()
    assert asked == [(parallel, 2.0)]  # once per centre, with its mean time
    droplet.observe({serial: (0.1,)})
    assert droplet.center == serial and droplet.pinned == set()
    assert asked == [(parallel, 2.0), (serial, 0.1)]


def test_radius_one_offers_the_lookahead_points_of_each_centre_and_a_faster_one_is_a_jump():
    start = ((16, 1, 1), 0)
    far = ((1, 4, 4), 2)  # every site moved: no radius-1 neighbour of the start
    asked = []

    def walk(centre, time):  # stands for the driver's walk along the cost model's predictions
        asked.append((centre, time))
        return [far, centre, ((3, 1, 1), 0)] if centre == start else []  # the centre, an illegal point: dropped

    assert far not in Droplet(SPACE, start, (cost(start),)).proposals()
    droplet = Droplet(SPACE, start, (cost(start),), lookahead=walk)
    proposals = droplet.proposals()
    assert far in proposals and start not in proposals and ((3, 1, 1), 0) not in proposals
    assert droplet.pinned == set()  # ranked with the rest, not pinned
    droplet.proposals()
    assert asked == [(start, cost(start))]  # once per centre
    droplet.observe({p: (cost(p),) for p in proposals})
    assert droplet.center == far and droplet.radius == 1 and droplet.accepted == [far]
    assert far not in droplet.proposals() and asked[-1] == (far, 1.0)


def test_with_confirm_a_faster_point_is_a_suspect_until_measured_again():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),), confirm=True)
    proposals = droplet.proposals()
    best = min(proposals, key=cost)
    assert droplet.observe({p: (cost(p),) for p in proposals}) is None
    assert droplet.suspect == best and droplet.center == start and droplet.radius == 1
    # measured again and faster again: the move, timed by the new samples
    assert droplet.recheck((cost(best) + 0.01,)) == best
    assert droplet.center == best and droplet.best_time == pytest.approx(cost(best) + 0.01)
    assert droplet.suspect is None and droplet.accepted == [best]
    # measured again and no longer faster (a lucky first draw): no move; the radius grows as
    # the batch that found it, its last look at radius 1, would have made it
    proposals = droplet.proposals()
    lucky = proposals[0]
    droplet.observe({p: ((0.5,) if p == lucky else (99.0,)) for p in proposals}, grow=True)
    assert droplet.suspect == lucky and droplet.radius == 1
    assert droplet.recheck((cost(best) + 1.0,)) is None
    assert droplet.center == best and droplet.radius == 2 and droplet.accepted == [best]
    # a failed re-measurement is no move either
    droplet.observe({p: (0.5,) for p in droplet.proposals()[:1]}, grow=False)
    assert droplet.recheck(None) is None and droplet.radius == 2 and droplet.center == best


def test_with_retime_each_centre_is_measured_again_and_timed_by_it():
    start = ((16, 1, 1), 0)
    lucky = cost(start) / 2  # the seed's first measurement: the fastest of an exploration, so a lucky one
    plain = Droplet(SPACE, start, (lucky,))
    proposals = plain.proposals()
    results = {p: (cost(p),) for p in proposals}
    assert plain.observe(results) is None, "against its lucky time, no neighbour of the seed is faster"
    droplet = Droplet(SPACE, start, (lucky,), confirm="retime")
    assert droplet.suspect == start, "the seed is measured again before its neighbours"
    assert droplet.recheck((cost(start),)) is None and droplet.center == start
    assert droplet.best_time == cost(start) and droplet.suspect is None
    best = min(proposals, key=cost)
    assert droplet.proposals() == proposals
    # a faster neighbour: the move is made at once, and the new centre is measured again
    assert droplet.observe(results) == best and droplet.center == best and droplet.accepted == [best]
    assert droplet.suspect == best and droplet.best_time == cost(best)
    assert droplet.recheck((cost(best) + 0.25,)) is None and droplet.best_time == cost(best) + 0.25
    # a failed re-measurement leaves the first samples
    droplet.observe({p: (0.5,) for p in droplet.proposals()[:1]})
    assert droplet.suspect == droplet.center and droplet.recheck(None) is None and droplet.best_time == 0.5


def test_with_both_the_seed_is_timed_again_and_each_move_confirmed():
    start = ((16, 1, 1), 0)
    lucky = cost(start) / 2
    droplet = Droplet(SPACE, start, (lucky,), confirm="both")
    assert droplet.suspect == start and droplet.retiming, "the seed is measured again before its neighbours"
    assert droplet.recheck((cost(start),)) is None and droplet.best_time == cost(start)
    proposals = droplet.proposals()
    best = min(proposals, key=cost)
    # unlike retime, a faster neighbour is only a suspect: no move until it is measured again
    assert droplet.observe({p: (cost(p),) for p in proposals}) is None and droplet.center == start
    assert droplet.suspect == best and not droplet.retiming
    assert droplet.recheck((cost(best),)) == best and droplet.best_time == cost(best)
    assert droplet.suspect is None, "a centre reached by a confirmed move is not timed a third time"
    # a second measurement no faster than the centre: no move, and the radius grows
    later = droplet.proposals()
    assert droplet.observe({p: (cost(p) / 10,) for p in later[:1]}) is None and droplet.suspect == later[0]
    assert droplet.recheck((cost(best) * 2,)) is None and droplet.center == best and droplet.radius == 2


@pytest.mark.parametrize("confirm", [True, "both"])
def test_with_a_sure_gain_a_big_gain_moves_at_once_and_a_small_one_is_confirmed(confirm):
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),), confirm=confirm, sure_gain=0.1)
    if droplet.retiming:  # "both": the seed first
        droplet.recheck((cost(start),))
    proposals = droplet.proposals()
    near, far = proposals[0], proposals[1]
    # 5% faster: a suspect, as without sure_gain
    assert droplet.observe({near: (cost(start) * 0.95,)}, grow=False) is None
    assert droplet.suspect == near and droplet.center == start and not droplet.retiming
    assert droplet.recheck((cost(start) * 1.2,)) is None and droplet.center == start
    # 10% faster: moved to at once, then measured again as the new centre (its time the new samples)
    assert droplet.observe({far: (cost(start) * 0.9,)}) == far and droplet.accepted == [far]
    assert droplet.retiming and droplet.best_time == pytest.approx(cost(start) * 0.9)
    assert droplet.recheck((cost(start) * 0.93,)) is None and droplet.center == far
    assert droplet.best_time == pytest.approx(cost(start) * 0.93) and droplet.suspect is None


def test_sure_gain_changes_nothing_without_confirm():
    """``DropletSearch`` passes its default ``sure_gain`` whatever ``confirm_moves`` is: with
    ``False`` a big gain is a plain move, its centre not measured again."""
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),), sure_gain=0.1)
    point = droplet.proposals()[0]
    assert droplet.observe({point: (cost(start) * 0.5,)}) == point
    assert droplet.suspect is None and not droplet.retiming


def test_a_batch_takes_the_pinned_serial_move_before_every_ranked_neighbour():
    from ms_droplet.candidates import Pending
    from ms_droplet.descent_driver import DescentDriver
    from ms_droplet.neighbourhood import outer_tiles_inward

    space = DecisionSpace((Site(TILE, 0, extent=16), Site(TILE, 1, extent=16)))
    start = ((2, 1, 8, 1), (4, 2, 2, 1))
    droplet = Droplet(space, start, (1.0,), serial=lambda centre, time: [outer_tiles_inward(space, centre)])
    points = droplet.proposals()
    serial = next(iter(droplet.pinned))
    assert points[-1] == serial
    driver = DescentDriver(None, [], "t", p_value=0.05, min_gain=0.0, paired=False, num_seeds=1,
                           new_seed=lambda: 1, rank=list)  # a ranking that keeps it last
    fresh = [(None, Pending(i, None, p)) for i, p in enumerate(points)]
    ranked = [pending.point for _, pending in driver._ranked(fresh, droplet)]
    assert ranked == [serial, *points[:-1]]


def test_a_move_that_timed_out_is_not_offered_again_from_later_centres():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),))
    first = droplet.proposals()
    slow_build = ((16, 1, 1), 1)  # the unroll move 0 -> 1 timed out
    assert slow_build in first
    droplet.ban_move(slow_build)
    tile_move = next(p for p in first if p[1] == 0)
    droplet.observe({**dict.fromkeys(first), tile_move: (0.01,)})  # the centre moves on a tile site
    assert droplet.center == tile_move and droplet.radius == 1
    later = droplet.proposals()
    assert later and all(p[1] != 1 for p in later), "unroll -> 1 is banned from every centre"
    assert (tile_move[0], 2) not in later  # radius 2 on unroll is not reached yet at radius 1
    droplet.radius = 2
    assert (tile_move[0], 2) in droplet.proposals(), "other values of the same site stay open"


def test_singles_first_holds_back_the_two_site_moves_of_a_part_measured_alone():
    start = ((16, 1, 1), 0)
    droplet = Droplet(SPACE, start, (cost(start),), two_site=9, seed=1)
    unroll_1, tile_a, tile_b = ((16, 1, 1), 1), ((8, 2, 1), 0), ((8, 1, 2), 0)
    pair_a, pair_b = ((8, 2, 1), 1), ((8, 1, 2), 1)  # each holds unroll 0 -> 1 and a tile move
    ranked = [pair_a, tile_a, unroll_1, pair_b, tile_b]  # as a cost model might rank them
    assert set(ranked) == set(droplet.proposals())
    # unroll_1 comes after pair_a, which gives way to it; pair_b holds a part already taken
    assert droplet.singles_first(ranked, 5) == [tile_a, unroll_1, tile_b]
    # the batch fills in rank order: with room for two, pair_a is taken before any single holds it
    assert droplet.singles_first([pair_a, tile_b, unroll_1], 2) == [pair_a, tile_b]
    # a pair whose parts have no one-site move in the batch keeps its rank
    assert droplet.singles_first([pair_b, tile_a], 2) == [pair_b, tile_a]


def test_rank_agreement_is_spearman_within_groups_weighted_by_size():
    exact = [(3.0, 1.0), (2.0, 2.0), (1.0, 3.0)]  # higher score, lower time: agree
    reversed_ = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0), (5.0, 5.0)]
    assert rank_agreement([exact]) == (1.0, 3)
    assert rank_agreement([exact, reversed_]) == (pytest.approx((3 * 1 - 5 * 1) / 8), 8)
    # too small or without order: no evidence
    assert math.isnan(rank_agreement([[(1.0, 1.0), (2.0, 0.5)], [(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]])[0])
    # pooled, these two groups would agree perfectly through their references alone; within, not at all
    low_centre = [(10.0, 0.5), (11.0, 0.4), (12.0, 0.6)]
    high_centre = [(0.4, 2.0), (0.5, 2.1), (0.6, 1.9)]
    assert rank_agreement([low_centre, high_centre]) == (pytest.approx(0.0), 6)
    assert rank_agreement([low_centre + high_centre])[0] > 0.7
