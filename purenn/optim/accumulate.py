"""Gradient accumulation: several micro-batches make one update (optax's ``MultiSteps``).

    MultiSteps(inner, every_k)    calls 1 .. k-1 of each group of k: s <- s + u;  u <- -0.0
                                  call k:                            u <- inner(mean = (s + u) / k);  s <- 0

Between updates the params stay bit for bit what they are (the updates are negative zeros, see
:mod:`purenn.optim.masking`'s SetToZero). With micro-batches of equal size and a loss averaged over
the batch, the mean of their gradients is the gradient of the batch they make together, so
``MultiSteps(SGD(lr), k)`` on batches of ``b`` rows trains as ``SGD(lr)`` on batches of ``k * b``
rows, to rounding (the sums are taken in another order). Every micro-batch weighs the same in the
mean, whatever its size (a smaller last batch of an epoch too, as in optax).

The state is ``State(step, {"grad_sum": ..., "inner": ...})``: ``step`` counts the calls
(micro-batches), so ``step % every_k`` of the group in progress are in ``grad_sum`` (params-shaped,
in the params' dtypes); ``inner`` is the inner transformation's state, whose own step counts the
updates made (a learning-rate schedule in it goes by updates, not micro-batches).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentTypeError
from purenn.optim.base import (
    Optimizer, State, Transformation, as_transformation, as_update, map_leaves, transformation_like,
)
from purenn.tree import readonly
from purenn.validation import positive_int, to_int

__all__ = ["MultiSteps"]


@attrs.frozen
class MultiSteps(Transformation):
    """``every_k`` calls make one update of ``inner`` (a transformation or an optimizer), from the
    mean of their gradients; the calls in between return negative zeros (see the module's
    docstring)."""

    inner: Transformation | Optimizer = attrs.field(validator=transformation_like)
    every_k: int = attrs.field(converter=to_int, validator=positive_int)

    @property
    def fresh_updates(self) -> bool:  # type: ignore[override]
        # between updates: new arrays; on an update: inner's updates of a mean no state keeps
        return bool(as_transformation(self.inner).fresh_updates)

    def init(self, params: Any) -> State:
        return State(0, {"grad_sum": map_leaves(lambda p: readonly(np.zeros_like(p)), params),
                         "inner": as_transformation(self.inner).init(params)})

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, State]:
        if not isinstance(state, State) or state.slots.keys() != {"grad_sum", "inner"}:
            raise ArgumentTypeError(f"{self!r:.200}.update needs the state made by its own "
                                    f"init(params), got {type(state).__name__}")
        total = map_leaves(lambda p, s, u: readonly(np.add(s, as_update(self, p, u))),
                           params, state.slots["grad_sum"], updates)
        step = state.step + 1
        if step % self.every_k:
            zeros = map_leaves(lambda p: readonly(np.full(p.shape, -0.0, p.dtype)), params)
            return zeros, State(step, {"grad_sum": total, "inner": state.slots["inner"]})
        mean = map_leaves(lambda s: readonly(np.divide(s, self.every_k)), total)
        new, inner_state = as_transformation(self.inner).update(mean, state.slots["inner"], params)
        return new, State(step, {"grad_sum": map_leaves(lambda p: readonly(np.zeros_like(p)), params),
                                 "inner": inner_state})

    def made_update(self, state: State) -> bool:
        """Whether the call that returned ``state`` updated the params (the last of its group):
        what a weight average, which should follow updates and not micro-batches, asks."""
        return state.step > 0 and state.step % self.every_k == 0

    def resolved(self, params: Any) -> MultiSteps:
        inner = self.inner.resolved(params)
        return self if inner is self.inner else MultiSteps(inner, self.every_k)
