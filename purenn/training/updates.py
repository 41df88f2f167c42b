"""Steps and updates: with gradient accumulation (:class:`~purenn.optim.accumulate.MultiSteps`)
several steps make one update, and what follows updates (a weight average, a schedule over the
run's length) must count updates, not steps.

Where a ``MultiSteps`` is found: the optimizer itself (``fit(optimizer=MultiSteps(...))``), or a
link of its top-level chain (``chain(ClipByGlobalNorm(1.0), MultiSteps(Adam(1e-3), 4))``). An
optimizer of your own may say it by having ``made_update(state) -> bool`` and ``every_k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from purenn.optim.accumulate import MultiSteps
from purenn.optim.base import Chain, Optimizer, Transformation, as_transformation

__all__ = ["accumulation", "made_update", "update_count"]


def _multi_steps(optimizer: Any) -> tuple[Any, int | None] | None:
    """The object that says whether a step updated, and where its state is in the optimizer's
    (None: the state itself; an int: that link of a chain's state); None when every step updates."""
    if isinstance(optimizer, (Optimizer, Transformation)):
        t = as_transformation(optimizer)
        if isinstance(t, MultiSteps):
            return t, None
        if isinstance(t, Chain):
            found = [(i, link) for i, link in enumerate(t.transformations) if isinstance(link, MultiSteps)]
            if found:
                return found[0][1], found[0][0]
        return None
    return (optimizer, None) if callable(getattr(optimizer, "made_update", None)) else None


def made_update(optimizer: Any) -> Callable[[Any], bool] | None:
    """``made(opt_state) -> bool``: whether the step that returned ``opt_state`` updated the
    params; None when every step does (no gradient accumulation)."""
    found = _multi_steps(optimizer)
    if found is None:
        return None
    multi, link = found
    if link is None:
        return multi.made_update
    return lambda state: bool(multi.made_update(state[link]))


def accumulation(optimizer: Any) -> int:
    """How many steps make one update (``MultiSteps``' ``every_k``; 1 without accumulation)."""
    found = _multi_steps(optimizer)
    return 1 if found is None else int(getattr(found[0], "every_k", 1))


def update_count(optimizer: Any, steps: int) -> int:
    """The updates a run of ``steps`` steps counts, ``ceil(steps / k)`` for ``k`` steps per update:
    the length to give a schedule over the run (a last group of fewer than ``k`` steps makes no
    update, so the schedule's last step may go unused)."""
    return math.ceil(steps / accumulation(optimizer))
