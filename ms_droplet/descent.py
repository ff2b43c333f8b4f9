"""The droplet: coordinate descent from one seed point, with a growing radius.

A state machine with two calls: :meth:`Droplet.proposals` gives the unvisited neighbours at
the current radius; :meth:`Droplet.observe` takes what was measured of them. The best
neighbour that is significantly faster (:func:`ms_droplet.stats.is_faster`) becomes the new
centre and the radius goes back to 1; without one the radius grows by 1. The droplet has
converged when the radius passes the largest range of any site (or ``max_radius``, if smaller).
With ``two_site`` > 0, radius 1 also offers that many sampled moves of two sites at once (for
a cost model to rank); with ``donors``, every move of one site to the decision a donor point
has there; with ``serial``, the centre's serial moves (points without a parallel loop, found by
the caller among :func:`~ms_droplet.neighbourhood.serial_candidates`), which
:attr:`Droplet.pinned` names so that a batch takes them whatever their rank; with ``lookahead``,
the points of the caller's walk from the centre along its cost model's predictions, further than
radius 1 (ranked with the rest).
With ``confirm``, the best faster point becomes a suspect instead of the centre; the caller
measures it again and :meth:`Droplet.recheck` moves there only if the new samples beat the
centre too. With ``confirm="retime"`` the droplet moves at once, and every centre (the seed too)
is the suspect until measured again: :meth:`Droplet.recheck` then takes the new samples as the
centre's time. ``confirm="both"`` confirms moves and re-times the seed. With ``sure_gain``, a
confirmed rule moves at once (and re-times the new centre, as retime does) to a point whose first
measurement beats the centre by at least that fraction: only small gains are confirmed. A centre was chosen
because its measurement was the fastest, so that measurement is biased low (the winner's curse),
and a later neighbour must beat it.
A move whose candidate timed out (:meth:`Droplet.ban_move`) is not offered again from later
centres: a build that takes longer than the builder's timeout comes from what the move sets
(a deep unroll, a compute location inside a long loop), not from where it starts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence

from .neighbourhood import donor_neighbours, neighbours, two_site_neighbours
from .space import Decision, DecisionSpace, Point
from .stats import is_faster, is_faster_paired, mean


class Droplet:
    """Coordinate descent over one :class:`~ms_droplet.space.DecisionSpace`.

    Parameters
    ----------
    space:
        The sites of the seed's trace.
    center:
        The seed point.
    center_samples:
        The seed's measured run times (seconds).
    p_value:
        Significance level of the acceptance test.
    min_gain:
        With a paired control: the least relative gain a move must show.
    two_site:
        Moves of two sites at once sampled into the radius-1 neighbourhood (0: none).
    seed:
        Seed of that sampling.
    donors:
        Other good points of the space, whose decisions radius 1 also offers site by site.
    serial:
        ``serial(centre, its mean time)``: the serial moves of a centre, offered at radius 1 and
        pinned (asked once per centre; ``None``: none).
    max_radius:
        The largest radius screened (``None``: the space's largest range, where every site's
        neighbours run out).
    lookahead:
        ``lookahead(centre, its mean time)``: points further than radius 1 that radius 1 also
        offers (asked once per centre; ``None``: none).
    confirm:
        ``True``: a faster point is a :attr:`suspect` until measured again (:meth:`recheck`);
        ``"retime"``: every centre is, and its new samples become its time; ``"both"``: a faster
        point is, and so is the seed (a centre reached by a confirmed move is already timed by
        its second measurement).
    sure_gain:
        With ``confirm`` ``True`` or ``"both"``: a faster point whose mean is at most
        ``1 - sure_gain`` of the centre's is moved to at once, and is the suspect as a new
        centre is with ``"retime"`` (``None``: every move is confirmed first).
    """

    def __init__(
        self,
        space: DecisionSpace,
        center: Point,
        center_samples: Sequence[float],
        p_value: float = 0.05,
        min_gain: float = 0.0,
        two_site: int = 0,
        seed: int = 0,
        donors: Sequence[Point] = (),
        serial: Callable[[Point, float], Sequence[Point]] | None = None,
        max_radius: int | None = None,
        lookahead: Callable[[Point, float], Sequence[Point]] | None = None,
        confirm: bool | str = False,
        sure_gain: float | None = None,
    ) -> None:
        if not space.admits(center):
            raise ValueError(f"the seed point {center!r} is not in its decision space")
        self.space = space
        self.center = center
        self.center_samples = tuple(center_samples)
        self.p_value = p_value
        self.min_gain = min_gain
        self.two_site = two_site
        self._rng = random.Random(seed)
        self.donors = [d for d in donors if space.admits(d) and d != center]
        self.serial = serial
        self.lookahead = lookahead
        self.confirm = confirm is True or confirm == "both"
        self.retime = confirm == "retime"
        self.sure_gain = sure_gain
        # a point to be measured again: a faster one (confirm), or the centre (the seed with
        # "both"; with retime, every centre)
        self.suspect: Point | None = center if confirm in ("retime", "both") else None
        self._grow_if_rejected = False
        self._asked: dict[tuple[str, Point], tuple[Point, ...]] = {}  # a hook's points, by hook and centre
        self.radius = 1
        self.visited: set[Point] = {center}
        self.accepted: list[Point] = []
        self.banned: set[frozenset[tuple[int, Decision]]] = set()  # moves that timed out: site -> value
        self._max_radius = space.max_radius() if max_radius is None else min(space.max_radius(), max_radius)

    @property
    def converged(self) -> bool:
        """True once no radius up to the space's largest range (or ``max_radius``) has an
        unvisited neighbour."""
        return self.radius > self._max_radius

    @property
    def best_time(self) -> float:
        """Mean run time of the current centre."""
        return mean(self.center_samples)

    def proposals(self, fill: int = 1) -> list[Point]:
        """Unvisited neighbours at the current radius, growing it past exhausted radii.

        With ``fill`` > 1, fewer than ``fill`` of them are joined by those of the next radii
        (nearest first) until there are ``fill``: late in a descent a radius holds a few
        neighbours, and each batch of them costs seconds of builder and runner start-up
        whatever its size. The radius stays the first one's; :meth:`observe` accepts the best
        faster point of any radius, and radii all of whose points are visited are skipped.
        """
        while not self.converged:
            fresh = self._fresh(self.radius)
            if fresh:
                ahead = self.radius + 1
                while len(fresh) < fill and ahead <= self._max_radius:
                    fresh += self._fresh(ahead)
                    ahead += 1
                return list(dict.fromkeys(fresh))
            self.radius += 1
        return []

    def _fresh(self, radius: int) -> list[Point]:
        points = neighbours(self.space, self.center, radius)
        if radius == 1 and self.two_site:
            points += two_site_neighbours(self.space, self.center, self.two_site, self._rng)
        if radius == 1 and self.donors:
            points += donor_neighbours(self.space, self.center, self.donors)
        if radius == 1:
            points += self._serial() + self._ask("lookahead", self.lookahead)
        return [p for p in points if p not in self.visited and not self._is_banned(p)]

    @property
    def pinned(self) -> set[Point]:
        """Proposals a batch takes before any ranked one: the centre's serial moves not yet
        visited (a cost model trained on parallel kernels may not rank them high)."""
        return {p for p in self._serial() if p not in self.visited and not self._is_banned(p)}

    def _serial(self) -> tuple[Point, ...]:
        return self._ask("serial", self.serial)

    def _ask(self, name: str, hook: Callable[[Point, float], Sequence[Point]] | None) -> tuple[Point, ...]:
        """The legal points other than the centre that ``hook`` gives for the centre, asked once."""
        if hook is None:
            return ()
        if (name, self.center) not in self._asked:
            moves = hook(self.center, self.best_time)
            self._asked[name, self.center] = tuple(p for p in moves if p != self.center and self.space.admits(p))
        return self._asked[name, self.center]

    def _changes(self, point: Point) -> frozenset[tuple[int, Decision]]:
        return frozenset((i, v) for i, (v, c) in enumerate(zip(point, self.center, strict=True)) if v != c)

    def singles_first(self, ranked: Sequence[Point], take: int) -> list[Point]:
        """Up to ``take`` of ``ranked`` (best first), none of them a move of several sites beside
        the one-site move of one of its parts: that move goes, the several-site ones wait.

        Why: a part that times out (a compute location under a deep unroll) times out in most
        moves that contain it (on SFM-1, 5 of the 7 in one batch), and the batch waits out the
        timeout for each. Measured alone first, it bans them all (:meth:`ban_move`) if it times
        out; if it does not, they can follow in a later batch.
        """
        out: list[tuple[Point, frozenset[tuple[int, Decision]]]] = []
        taken_parts: set[tuple[int, Decision]] = set()
        for point in ranked:
            changes = self._changes(point)
            if len(changes) == 1:
                part = next(iter(changes))
                # a better-ranked several-site move holding this part gives way to it
                out = [(p, c) for p, c in out if len(c) == 1 or part not in c]
                taken_parts.add(part)
            elif changes & taken_parts:
                continue
            out.append((point, changes))
            if len(out) >= take:
                break
        return [p for p, _ in out]

    def _is_banned(self, point: Point) -> bool:
        changes = self._changes(point)
        return any(move <= changes for move in self.banned)

    def ban_move(self, point: Point) -> None:
        """Never again offer the move from the current centre to ``point`` (the sites it sets to
        its values), from this centre or any later one: ``point`` timed out."""
        changes = self._changes(point)
        if changes:
            self.banned.add(changes)

    def observe(
        self,
        results: Mapping[Point, Sequence[float] | None],
        control: Sequence[float] | None = None,
        beside_control: Collection[Point] | None = None,
        grow: bool = True,
    ) -> Point | None:
        """Take the measurements of some proposals; return the new centre, if one was accepted.

        ``None`` (or empty samples) marks a point that failed to replay, build or run: it is
        visited and never accepted. ``control`` is the centre re-timed in the same interleaved
        batch as the points of ``beside_control`` (default: all of ``results``): those are
        compared with it round by round (:func:`~ms_droplet.stats.is_faster_paired`), and it
        replaces the centre's older samples; other points (measured in other batches) are
        compared with the centre's samples by :func:`~ms_droplet.stats.is_faster`. With
        ``grow=False`` a batch without a better point leaves the radius as it is, so that the
        rest of its neighbours can be tried first.
        """
        paired = set(results) if beside_control is None else set(beside_control)
        best: Point | None = None
        for point, samples in results.items():
            self.visited.add(point)
            if not samples or not self._beats_centre(samples, control if point in paired else None):
                continue
            if best is None or mean(samples) < mean(results[best]):
                best = point
        if best is None:
            if control:
                self.center_samples = tuple(control)
            if grow:
                self.radius += 1
            return None
        if self.confirm and not self._sure(results[best]):
            # if the recheck fails, the radius grows then as it would have now
            self.suspect, self._grow_if_rejected = best, grow
            return None
        if self.retime or self.confirm:  # moved on one measurement (a sure gain, with confirm): timed again
            self.suspect = best
        return self._move(best, results[best])

    def _sure(self, samples: Sequence[float]) -> bool:
        """True if ``samples`` beat the centre by ``sure_gain`` or more: a move made at once.

        Why: re-timed in fresh processes (bench/moves.py, six workloads), points first measured
        at least 10% faster than their centre were faster in 25 of 36 decisions (geometric mean
        0.90x), while ``True`` refused such points on T2D-1 and stopped there."""
        return self.sure_gain is not None and mean(samples) <= (1 - self.sure_gain) * self.best_time

    @property
    def retiming(self) -> bool:
        """True while the :attr:`suspect` is the centre itself: its next measurement times it
        (``retime``, or the seed with ``"both"``) and moves nothing."""
        return self.suspect is not None and self.suspect == self.center

    def recheck(self, samples: Sequence[float] | None) -> Point | None:
        """The :attr:`suspect` measured again: move there if ``samples`` beat the centre too
        (the centre's time is then these samples); return the new centre, if it moved. With
        ``retime`` (and for the seed with ``"both"``) the suspect is the centre: ``samples``
        become its time (a failure leaves the first ones), and nothing moves."""
        retiming, point, self.suspect = self.retiming, self.suspect, None
        if retiming:
            if samples:
                self.center_samples = tuple(samples)
            return None
        if point is None or not samples or not is_faster(samples, self.center_samples, self.p_value):
            if point is not None and self._grow_if_rejected:
                self.radius += 1
            return None
        return self._move(point, samples)

    def _move(self, point: Point, samples: Sequence[float]) -> Point:
        self.center, self.center_samples, self.radius = point, tuple(samples), 1
        self.accepted.append(point)
        return point

    def _beats_centre(self, samples: Sequence[float], control: Sequence[float] | None) -> bool:
        if control and len(control) >= 2 and len(samples) == len(control):
            return is_faster_paired(samples, control, self.p_value, self.min_gain)
        return is_faster(samples, self.center_samples, self.p_value)
