"""The decision space of one trace: its sampling sites and the values each may take.

Plain Python, no TVM: the adapter in :mod:`ms_droplet.strategy` reads the sites off a
MetaSchedule trace, everything else (neighbourhoods, descent) works on these objects.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A decision of one site: a tuple of tile factors, or an index.
Decision = int | tuple[int, ...]
#: A point of the space: one decision per site, in site order.
Point = tuple[Decision, ...]

TILE = "tile"
CATEGORICAL = "categorical"
COMPUTE_LOCATION = "compute_location"
KINDS = (TILE, CATEGORICAL, COMPUTE_LOCATION)

#: SampleComputeLocation's two special decisions: inline (-2) and root (-1).
COMPUTE_LOCATION_MIN = -2


def prime_factors(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, smallest first (``12 -> [2, 2, 3]``)."""
    if n < 1:
        raise ValueError(f"prime_factors needs a positive integer, got {n}")
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


@dataclass(frozen=True)
class Site:
    """One sampling instruction of a trace.

    Attributes
    ----------
    kind:
        ``"tile"`` (SamplePerfectTile), ``"categorical"`` (SampleCategorical) or
        ``"compute_location"`` (SampleComputeLocation).
    position:
        Index of the instruction in the trace. Replay makes new instruction objects, so a
        position is the only stable name of a site.
    extent:
        Tile sites: the loop extent, which every tile decision must multiply to.
    max_innermost:
        Tile sites: the largest innermost factor allowed (``<= 0`` means no limit).
    num_choices:
        Categorical sites: the number of candidates. Compute-location sites: an exclusive
        upper bound of the loop index (the loops of the scheduled function).
    """

    kind: str
    position: int
    extent: int = 0
    max_innermost: int = 0
    num_choices: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Site kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == TILE and self.extent < 1:
            raise ValueError(f"a tile site needs a positive extent, got {self.extent}")
        if self.kind == CATEGORICAL and self.num_choices < 1:
            raise ValueError(f"a categorical site needs num_choices >= 1, got {self.num_choices}")

    def radius_limit(self) -> int:
        """The largest radius at which this site can still have a neighbour."""
        if self.kind == TILE:
            return len(prime_factors(self.extent))
        if self.kind == CATEGORICAL:
            return self.num_choices - 1
        return max(0, self.num_choices - COMPUTE_LOCATION_MIN - 1)

    def admits(self, decision: Decision) -> bool:
        """Whether ``decision`` is a legal value of this site."""
        if self.kind == TILE:
            if not isinstance(decision, tuple) or not decision or min(decision) < 1:
                return False
            product = 1
            for f in decision:
                product *= f
            return product == self.extent and (
                self.max_innermost <= 0 or decision[-1] <= self.max_innermost
            )
        if not isinstance(decision, int):
            return False
        if self.kind == CATEGORICAL:
            return 0 <= decision < self.num_choices
        return COMPUTE_LOCATION_MIN <= decision < max(self.num_choices, 0)


@dataclass(frozen=True)
class DecisionSpace:
    """The sites of one trace, in trace order."""

    sites: tuple[Site, ...]

    def max_radius(self) -> int:
        """The radius past which no site has a neighbour: the droplet's end."""
        return max((s.radius_limit() for s in self.sites), default=0)

    def admits(self, point: Point) -> bool:
        """Whether every decision of ``point`` is legal at its site."""
        return len(point) == len(self.sites) and all(
            s.admits(d) for s, d in zip(self.sites, point, strict=False)
        )
