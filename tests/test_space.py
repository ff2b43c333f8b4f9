"""Decision space and neighbourhoods: plain Python, no TVM."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ms_droplet.neighbourhood import index_moves, neighbours, site_moves, tile_moves
from ms_droplet.space import CATEGORICAL, COMPUTE_LOCATION, TILE, DecisionSpace, Site, prime_factors


def test_prime_factors():
    assert prime_factors(1) == []
    assert prime_factors(12) == [2, 2, 3]
    assert prime_factors(97) == [97]
    with pytest.raises(ValueError, match="0"):
        prime_factors(0)


def test_tile_moves_radius_one_moves_one_prime():
    moves = tile_moves((1, 4, 3), 1)
    assert (2, 2, 3) in moves and (1, 2, 6) in moves and (3, 4, 1) in moves
    assert (1, 4, 3) not in moves
    assert all(math.prod(m) == 12 for m in moves)


def test_tile_moves_respect_innermost_limit():
    assert all(m[-1] <= 4 for m in tile_moves((1, 2, 4), 1, max_innermost=4))
    assert (1, 1, 8) not in tile_moves((1, 2, 4), 1, max_innermost=4)
    assert (1, 1, 8) in tile_moves((1, 2, 4), 1, max_innermost=0)


@settings(max_examples=200, deadline=None)
@given(
    factors=st.lists(st.integers(1, 24), min_size=2, max_size=5),
    radius=st.integers(1, 4),
    max_innermost=st.sampled_from([0, 4, 16, 64]),
)
def test_tile_neighbours_are_perfect_unique_and_within_limit(factors, radius, max_innermost):
    extent = math.prod(factors)
    moves = tile_moves(tuple(factors), radius, max_innermost)
    assert len(moves) == len(set(moves))
    for move in moves:
        assert math.prod(move) == extent
        assert len(move) == len(factors)
        assert max_innermost <= 0 or move[-1] <= max_innermost
        # moved exactly `radius` prime factors from one level to one other level
        changed = [i for i, (a, b) in enumerate(zip(factors, move, strict=False)) if a != b]
        assert len(changed) == 2
        ratio = max(move[i] / factors[i] for i in changed)
        assert len(prime_factors(round(ratio))) == radius


def test_index_moves_stay_in_range():
    assert index_moves(0, 1, 0, 4) == [1]
    assert index_moves(2, 2, 0, 4) == [0]
    assert index_moves(-1, 1, -2, 5) == [-2, 0]
    assert index_moves(3, 5, 0, 4) == []


def test_site_validation_names_the_value():
    with pytest.raises(ValueError, match="'bogus'"):
        Site("bogus", 0)
    with pytest.raises(ValueError, match="extent, got 0"):
        Site(TILE, 0)
    with pytest.raises(ValueError, match="num_choices >= 1, got 0"):
        Site(CATEGORICAL, 0)


def test_radius_limits():
    assert Site(TILE, 0, extent=128).radius_limit() == 7
    assert Site(CATEGORICAL, 0, num_choices=4).radius_limit() == 3
    assert Site(COMPUTE_LOCATION, 0, num_choices=3).radius_limit() == 4  # -2 .. 2


SPACE = DecisionSpace(
    (
        Site(TILE, 3, extent=8, max_innermost=4),
        Site(CATEGORICAL, 5, num_choices=4),
        Site(COMPUTE_LOCATION, 7, num_choices=3),
    )
)


@settings(max_examples=100, deadline=None)
@given(radius=st.integers(1, 6), cat=st.integers(0, 3), loc=st.integers(-2, 2))
def test_neighbours_move_one_site_and_are_legal(radius, cat, loc):
    point = ((2, 2, 2), cat, loc)
    assert SPACE.admits(point)
    found = neighbours(SPACE, point, radius)
    assert len(found) == len(set(found))
    for n in found:
        assert SPACE.admits(n)
        assert sum(a != b for a, b in zip(point, n, strict=False)) == 1


def test_no_neighbour_past_the_max_radius():
    point = ((2, 2, 2), 1, 0)
    assert neighbours(SPACE, point, SPACE.max_radius() + 1) == []
    assert site_moves(SPACE.sites[0], (2, 2, 2), 0) == []


def test_admits_rejects_imperfect_tiles_and_out_of_range_indices():
    assert not SPACE.admits(((3, 2, 2), 1, 0))
    assert not SPACE.admits(((1, 1, 8), 1, 0))  # innermost over the limit
    assert not SPACE.admits(((2, 2, 2), 4, 0))
    assert not SPACE.admits(((2, 2, 2), 1, 3))
    assert not SPACE.admits(((2, 2, 2), 1))
