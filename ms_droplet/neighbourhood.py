"""Neighbours of a point at a given radius, one site moved at a time.

- Tile sites: move a divisor made of ``radius`` prime factors from one tile level to another,
  so the product stays the loop extent; the innermost factor keeps within its limit.
- Categorical and compute-location sites: the index moves by ``+radius`` or ``-radius``.
- Two-site moves (:func:`two_site_neighbours`): radius-1 moves of two sites at once, as AutoTVM's
  DropletTuner moved knobs together; there are many, so a seeded sample of them is taken.
- Serial moves (:func:`serial_candidates`): every multi-level tile's outer levels folded inward at
  once, with each compute location: the points from which the TVM side picks kernels with no
  parallel loop.
- Donor moves (:func:`donor_neighbours`): one site set to the decision another good point of the
  same space (a donor) has there, however far that is: a crossover of one site.

Every neighbour returned is legal in the space, differs from the point, and appears once; the
order is deterministic (site order, then move order) so that a seeded search replays exactly.
"""

from __future__ import annotations

import random
from itertools import combinations

from .space import (
    COMPUTE_LOCATION,
    COMPUTE_LOCATION_MIN,
    TILE,
    Decision,
    DecisionSpace,
    Point,
    Site,
    prime_factors,
)


def _divisors_with_omega(n: int, omega: int) -> list[int]:
    """Divisors of ``n`` that are a product of exactly ``omega`` primes (with multiplicity)."""
    return sorted({_product(c) for c in combinations(prime_factors(n), omega)}) if omega else []


def _product(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def tile_moves(factors: tuple[int, ...], radius: int, max_innermost: int = 0) -> list[tuple[int, ...]]:
    """Perfect tilings reached by moving a divisor with ``radius`` prime factors between levels."""
    out: dict[tuple[int, ...], None] = {}
    n = len(factors)
    for src in range(n):
        for f in _divisors_with_omega(factors[src], radius):
            for dst in range(n):
                if dst == src:
                    continue
                new = list(factors)
                new[src] //= f
                new[dst] *= f
                if max_innermost > 0 and new[-1] > max_innermost:
                    continue
                out[tuple(new)] = None
    return list(out)


def index_moves(value: int, radius: int, low: int, high: int) -> list[int]:
    """``value - radius`` and ``value + radius`` where they fall in ``[low, high)``."""
    return [v for v in (value - radius, value + radius) if low <= v < high]


def site_moves(site: Site, decision: Decision, radius: int) -> list[Decision]:
    """The legal values of one site at ``radius`` from ``decision``."""
    if radius < 1:
        return []
    if site.kind == TILE:
        return [m for m in tile_moves(tuple(decision), radius, site.max_innermost) if site.admits(m)]
    low = 0 if site.kind == "categorical" else COMPUTE_LOCATION_MIN
    return index_moves(int(decision), radius, low, site.num_choices)


def neighbours(space: DecisionSpace, point: Point, radius: int) -> list[Point]:
    """All points that differ from ``point`` at one site by a move of ``radius``."""
    out: dict[Point, None] = {}
    for i, site in enumerate(space.sites):
        for move in site_moves(site, point[i], radius):
            if move != point[i]:
                out[(*point[:i], move, *point[i + 1:])] = None
    return list(out)


def two_site_neighbours(space: DecisionSpace, point: Point, limit: int, rng: random.Random) -> list[Point]:
    """Up to ``limit`` points, sampled by ``rng``, that move two sites of ``point`` by radius 1 each."""
    moves = [[m for m in site_moves(site, point[i], 1) if m != point[i]] for i, site in enumerate(space.sites)]
    pairs = [(i, a, j, b) for i, j in combinations(range(len(moves)), 2) for a in moves[i] for b in moves[j]]
    if len(pairs) > limit:
        pairs = rng.sample(pairs, limit)
    out: dict[Point, None] = {}
    for i, a, j, b in pairs:
        new = list(point)
        new[i], new[j] = a, b
        out[tuple(new)] = None
    return list(out)


def donor_neighbours(space: DecisionSpace, point: Point, donors: list[Point]) -> list[Point]:
    """Points that take one site's decision from one of ``donors`` (points of the same space)."""
    out: dict[Point, None] = {}
    for donor in donors:
        for i, (mine, theirs) in enumerate(zip(point, donor, strict=True)):
            if theirs != mine and space.sites[i].admits(theirs):
                out[(*point[:i], theirs, *point[i + 1:])] = None
    return list(out)


def outer_tiles_inward(space: DecisionSpace, point: Point, depth: int = 1, min_levels: int = 4) -> Point | None:
    """``point`` with the factors of the outer ``depth`` levels of every tile site of ``min_levels``
    levels or more (on CPU, MetaSchedule's spatial tiles) multiplied into level ``depth``, the
    levels above left at 1. ``None`` when no site changes.

    Why: on a tiny kernel a parallel loop costs more than the work (a 55,000 multiply-add
    convolution: 6-7 us parallel, 0.6 us serial); post-processing fuses the outer spatial loops
    into one parallel loop, so a serial kernel needs those at 1, which no move of one or two
    sites sets from a parallel one.
    """
    new = list(point)
    for i, site in enumerate(space.sites):
        factors = point[i]
        if site.kind == TILE and depth < len(factors) and len(factors) >= min_levels:
            moved = (1,) * depth + (_product(factors[:depth + 1]), *factors[depth + 1:])
            if moved != factors and site.admits(moved):
                new[i] = moved
    out = tuple(new)
    return None if out == point else out


def serial_candidates(space: DecisionSpace, point: Point, max_depth: int = 3) -> list[Point]:
    """Points near ``point`` that may have no parallel loop: its spatial tiles' outer ``depth``
    levels folded inward (:func:`outer_tiles_inward`, ``depth`` 1 to ``max_depth``), each as it
    is and with one compute-location site set to each of its values (a block computed at the
    root, outside the tiled loops, gets a parallel loop of its own). Which of them has none only
    post-processing tells: the TVM side replays them.
    """
    out: dict[Point, None] = {}
    for depth in range(1, max_depth + 1):
        inward = outer_tiles_inward(space, point, depth)
        if inward is None:
            continue
        out[inward] = None
        for i, site in enumerate(space.sites):
            if site.kind == COMPUTE_LOCATION:
                for value in range(COMPUTE_LOCATION_MIN, site.num_choices):
                    out[(*inward[:i], value, *inward[i + 1:])] = None
    return [p for p in out if p != point]
