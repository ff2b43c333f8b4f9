"""Contenders of a simulation, named as on the command line.

- a MetaSchedule name: ``evolutionary``, ``replay-trace``, ``replay-func``;
- ``droplet``, optionally with options: ``droplet:explore=replay:num_seeds=5``;
- ``package.module:factory``: any callable returning a ``SearchStrategy`` (a researcher's own),
  with the same ``:option=value`` tail passed to it as keyword arguments.

From Python, :func:`~.simulate.simulate` also takes ``SearchStrategy`` instances directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BUILTIN = ("evolutionary", "replay-trace", "replay-func")


def typed(options: dict[str, str]) -> dict[str, Any]:
    """Option strings as Python values: ``"0.7"`` -> 0.7, ``"3"`` -> 3, ``"true"`` -> True, ``"none"`` -> None."""
    out: dict[str, Any] = {}
    for key, text in options.items():
        if text.lower() == "none":
            out[key] = None
            continue
        if text.lower() in ("true", "false"):
            out[key] = text.lower() == "true"
            continue
        for kind in (int, float):
            try:
                out[key] = kind(text)
                break
            except ValueError:
                continue
        else:
            out[key] = text
    return out


@dataclass(frozen=True)
class StrategySpec:
    """A contender: its label and how to make a fresh strategy object for one run."""

    label: str
    make: Callable[[], Any]  # -> SearchStrategy or a MetaSchedule name


def parse_strategy(spec: str) -> StrategySpec:
    """One contender from its command-line spelling; ``ValueError`` names what is wrong."""
    text = spec.strip()
    head, *option_specs = text.split(":")
    factory_name = None
    if head not in BUILTIN and head != "droplet":
        if not option_specs or not all(part.isidentifier() for part in head.split(".")):
            raise ValueError(f"strategy {spec!r} is not one of {', '.join((*BUILTIN, 'droplet'))}, "
                             "droplet:OPTION=VALUE..., or module:factory")
        factory_name, *option_specs = option_specs
    if any(not k or not sep for k, sep, _ in (o.partition("=") for o in option_specs)):
        raise ValueError(f"strategy {spec!r}: options are OPTION=VALUE")
    options = typed(dict(o.partition("=")[::2] for o in option_specs))
    if head in BUILTIN:
        if options:
            raise ValueError(f"strategy {spec!r}: MetaSchedule's {head} takes no options here")
        return StrategySpec(text, lambda: head)
    if head == "droplet":
        from ..strategy import DropletSearch

        try:  # bad options fail now, naming the value, not in the middle of a run
            DropletSearch(**options)
        except TypeError as err:  # an option DropletSearch does not have
            raise ValueError(f"strategy {spec!r}: {err}") from None
        return StrategySpec(text, lambda: DropletSearch(**options))
    try:
        factory = getattr(importlib.import_module(head), factory_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"strategy {spec!r}: cannot import {factory_name} from {head} ({err})") from None
    try:  # made once now, so that a bad option or factory fails before any run
        factory(**options)
    except Exception as err:  # whatever the researcher's factory raises, named with the spec
        raise ValueError(f"strategy {spec!r}: {factory_name}(**{options}) failed: {err}") from None
    return StrategySpec(text, lambda: factory(**options))


def parse_strategies(text: str) -> list[StrategySpec]:
    """Comma-separated contenders; duplicates are an error (their results would merge)."""
    specs = [parse_strategy(s) for s in text.split(",") if s.strip()]
    labels = [s.label for s in specs]
    if not specs:
        raise ValueError(f"no strategy in {text!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"strategies {text!r} name one contender twice")
    return specs
