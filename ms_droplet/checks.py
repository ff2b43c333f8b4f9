"""Checks of the settings users pass in: one message shape everywhere.

Each check returns the value as its Python type or raises ``ValueError`` naming the owner, the
setting, what it must be, and the value given: ``"builder: max_uses must be an integer >= 1, got
0"``. ``bool`` is never taken for a number (``True`` is an ``int`` to Python, not to a user).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any


def _fail(owner: str, name: str, what: str, value: Any) -> ValueError:
    return ValueError(f"{owner}: {name} must be {what}, got {value!r}")


def integer(owner: str, name: str, value: Any, low: int, *, optional: bool = False) -> int | None:
    """``value`` as an ``int`` >= ``low`` (``None`` passes when ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise _fail(owner, name, f"an integer >= {low}" + (" or None" if optional else ""), value)
    return int(value)


def number(owner: str, name: str, value: Any, *, low: float, high: float | None = None,
           low_open: bool = False, high_open: bool = False, optional: bool = False) -> float | None:
    """``value`` as a ``float`` in the range from ``low`` to ``high`` (``None``: unbounded above),
    each end closed unless said open; NaN is never in range."""
    if optional and value is None:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        if high is None:
            what = f"a number {'>' if low_open else '>='} {low:g}"
        else:
            what = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _fail(owner, name, what + (" or None" if optional else ""), value)
    return float(value)


def flag(owner: str, name: str, value: Any) -> bool:
    """``value``, which must be ``True`` or ``False`` (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise _fail(owner, name, "True or False", value)
    return value


def choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value``, which must be one of ``choices``."""
    if value not in choices:
        raise _fail(owner, name, f"one of {choices}", value)
    return value


def flag_or_auto(owner: str, name: str, value: Any, *words: str) -> bool | str:
    """``value``, which must be ``True``, ``False`` or one of ``words`` (default ``"auto"``)."""
    words = words or ("auto",)
    if value is True or value is False or (isinstance(value, str) and value in words):
        return value
    allowed = ["True", "False", *map(repr, words)]
    raise _fail(owner, name, ", ".join(allowed[:-1]) + " or " + allowed[-1], value)
