"""Weight averaging: a running average of the params, kept beside the training.

An **average** is a frozen record with three pure methods, in the argument order of the updates
(the state, then the params)::

    state = avg.init(params)              # the average starts at the params given
    state = avg.update(state, params)     # after each optimizer step, with the new params
    averaged = avg.averaged(state)        # a params tree (read-only arrays) for predict, evaluate

The state is ``State(step, {"average": params-shaped tree})``: ``step`` counts the updates, and a
training checkpoint saves it as it saves an optimizer's state.

    EMA(decay, warmup=False)   t = step + 1 (the update being made, from 1)
                               d_t = decay, or min(decay, (1 + t) / (10 + t)) with warm-up
                               a_t = a_{t-1} + (1 - d_t) (p_t - a_{t-1})  [= d_t a_{t-1} + (1 - d_t) p_t]

The warm-up is TensorFlow's ``ExponentialMovingAverage(decay, num_updates=t)`` (timm's and Keras's
EMA are of the same family): early averages, made of few and poor params, forget faster. The
update is written as PyTorch's ``get_ema_multi_avg_fn`` writes it (a lerp), in the params' dtype.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentTypeError, ShapeError
from purenn.optim.base import State, map_leaves
from purenn.tree import freeze, readonly
from purenn.validation import boolean, float_field, unit_interval

__all__ = ["Average", "EMA"]


@attrs.frozen
class Average:
    """Base class of weight averages (see the module's docstring for the contract)."""

    def init(self, params: Any) -> State:
        """The state before the first update: the average is ``params`` (read-only, not copied)."""
        return State(0, {"average": freeze(params)})

    def update(self, state: State, params: Any) -> State:  # pragma: no cover
        """The state after one more optimizer step, whose new params are ``params``."""
        raise NotImplementedError(f"{type(self).__name__} must define update(state, params)")

    def averaged(self, state: State) -> Any:
        """The averaged params: a tree shaped like the params, of read-only arrays."""
        self._check_state(state)
        return state.slots["average"]

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, State) or state.slots.keys() != {"average"}:
            raise ArgumentTypeError(f"{self!r}: the state must be the State its init(params) made, "
                                    f"got {type(state).__name__}"
                                    + (f" with slots {sorted(state.slots)}" if isinstance(state, State) else ""))


@attrs.frozen
class EMA(Average):
    """Exponential moving average of the params with decay ``decay`` in [0, 1) (0.999 is usual),
    optionally warmed up (the module's docstring has the formulas)."""

    decay: float = float_field(unit_interval)
    warmup: bool = attrs.field(default=False, validator=boolean)

    def decay_at(self, step: int) -> float:
        """d_t for the update that turns state step ``step`` into ``step + 1`` (t = step + 1)."""
        t = step + 1
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def update(self, state: State, params: Any) -> State:
        self._check_state(state)
        weight = 1.0 - self.decay_at(state.step)

        def leaf(a: np.ndarray, p: Any) -> np.ndarray:
            if type(p) is not np.ndarray or p.dtype != a.dtype:
                p = np.asarray(p, dtype=a.dtype)
            if p.shape != a.shape:
                raise ShapeError(f"{self!r}.update: a params array of shape {p.shape} where the "
                                 f"average has shape {a.shape}; give the params of the model it averages")
            out = np.subtract(p, a)
            out *= weight
            out += a
            return readonly(out)

        # the average leads the walk: params may be array-likes, converted leaf by leaf
        return State(state.step + 1, {"average": map_leaves(leaf, state.slots["average"], params)})
