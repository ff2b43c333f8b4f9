"""Makes ``"droplet"`` a strategy name wherever MetaSchedule takes one.

MetaSchedule resolves strategy strings with ``SearchStrategy.create``, a fixed chain of the
built-in names; ``tune_tir``, ``tune_tasks``, ``tune_relax`` and ``TuneContext`` all go
through it. :func:`register` wraps it once: ``"droplet"`` (keyword arguments go to
:class:`~ms_droplet.DropletSearch`) and every built-in name keep working.
"""

from __future__ import annotations

from tvm.s_tir.meta_schedule import search_strategy as _ss

NAME = "droplet"


def _create(kind: str = "evolutionary", *args, **kwargs) -> _ss.SearchStrategy:
    if kind == NAME:
        from .strategy import DropletSearch  # late: strategy imports this module's users

        return DropletSearch(*args, **kwargs)
    return _builtin_create(kind, *args, **kwargs)


_builtin_create = _ss.SearchStrategy.create


def register() -> None:
    """Install the ``"droplet"`` name (idempotent; done by ``import ms_droplet``)."""
    if _ss.SearchStrategy.create is not _create:
        _ss.SearchStrategy.create = staticmethod(_create)
        _ss.create = _create


def is_registered() -> bool:
    """Whether ``SearchStrategy.create("droplet")`` works."""
    return _ss.SearchStrategy.create is _create
