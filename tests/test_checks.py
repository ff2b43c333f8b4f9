"""The settings checks every public constructor uses (plain Python), and the runner's use of them."""

import numpy as np
import pytest

from ms_droplet import checks
from ms_droplet.interleaved import interleaved_runner


def test_integer_takes_integers_at_or_above_the_bound_numpy_ones_included():
    assert checks.integer("o", "n", 3, 1) == 3
    assert checks.integer("o", "n", np.int64(0), 0) == 0
    assert type(checks.integer("o", "n", np.int64(5), 0)) is int
    assert checks.integer("o", "n", None, 1, optional=True) is None


@pytest.mark.parametrize("value", [0, -1, 2.0, "3", True, None])
def test_integer_refuses_and_names_owner_setting_and_value(value):
    with pytest.raises(ValueError, match=rf"^o: n must be an integer >= 1, got {value!r}$"):
        checks.integer("o", "n", value, 1)


@pytest.mark.parametrize(
    ("bounds", "value", "what"),
    [
        ({"low": 0, "high": 1, "low_open": True}, 0, r"in \(0, 1\]"),
        ({"low": 0, "high": 1, "high_open": True}, 1, r"in \[0, 1\)"),
        ({"low": 0, "high": 1}, 1.5, r"in \[0, 1\]"),
        ({"low": 1}, 0.5, ">= 1"),
        ({"low": 0, "low_open": True}, 0, "> 0"),
        ({"low": 0, "low_open": True}, float("nan"), "> 0"),
        ({"low": 0}, True, ">= 0"),
        ({"low": 0}, "1", ">= 0"),
    ],
)
def test_number_refuses_values_outside_its_range(bounds, value, what):
    with pytest.raises(ValueError, match=rf"^o: x must be a number {what}, got {value!r}$"):
        checks.number("o", "x", value, **bounds)


def test_number_takes_the_closed_ends_and_returns_floats():
    assert checks.number("o", "x", 1, low=0, high=1) == 1.0
    assert checks.number("o", "x", 0, low=0, high=1, high_open=True) == 0.0
    assert isinstance(checks.number("o", "x", np.float32(0.5), low=0), float)
    assert checks.number("o", "x", None, low=1, optional=True) is None
    with pytest.raises(ValueError, match="must be a number >= 1 or None, got 0"):
        checks.number("o", "x", 0, low=1, optional=True)


def test_flag_and_choice():
    assert checks.flag("o", "f", False) is False
    with pytest.raises(ValueError, match=r"^o: f must be True or False, got 1$"):
        checks.flag("o", "f", 1)
    assert checks.choice("o", "c", "b", ("a", "b")) == "b"
    with pytest.raises(ValueError, match=r"^o: c must be one of \('a', 'b'\), got 'z'$"):
        checks.choice("o", "c", "z", ("a", "b"))
    assert [checks.flag_or_auto("o", "a", v) for v in (True, False, "auto")] == [True, False, "auto"]
    for bad in (1, 0, "true", None):  # 1 == True to Python, not to a user
        with pytest.raises(ValueError, match=rf"^o: a must be True, False or 'auto', got {bad!r}$"):
            checks.flag_or_auto("o", "a", bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 0}, "interleaved_runner: rounds must be an integer >= 1, got 0"),
        ({"min_repeat_ms": -5}, "interleaved_runner: min_repeat_ms must be an integer >= 0, got -5"),
        ({"seed": 1.5}, "interleaved_runner: seed must be an integer >= 0, got 1.5"),
        ({"timeout_sec": 0}, "interleaved_runner: timeout_sec must be a number > 0, got 0"),
    ],
)
def test_interleaved_runner_names_a_bad_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        interleaved_runner(**kwargs)
