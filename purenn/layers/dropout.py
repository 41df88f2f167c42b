"""Inverted dropout: a stochastic layer, active only when given a random generator."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.layers.base import ShapePreserving
from purenn.validation import as_float_array, real, to_float

__all__ = ["Dropout"]


_rate = attrs.evolve(real(0.0, 1.0), what="the probability of dropping a unit, a real number in [0, 1)")


@attrs.frozen
class Dropout(ShapePreserving):
    """Training: Y = X * M / (1 - rate), M[i] = 1 with probability 1 - rate, else 0.
    Evaluation (``rng=None``): Y = X.  Backward: dE/dX = dE/dY * M / (1 - rate).

    The scaling by 1 / (1 - rate) ("inverted dropout") keeps E[Y] = X, so nothing changes between
    training and evaluation. The mask is drawn from the generator passed to ``forward``
    (``rng.random(x.shape) >= rate``, in float32 for float32 inputs), so the same generator state
    gives the same mask; ``Sequential`` hands each dropout layer its own spawned stream.
    """

    fresh_grads: ClassVar[bool] = True

    rate: float = attrs.field(converter=to_float, validator=_rate)

    stochastic: ClassVar[bool] = True

    def forward(self, params: Any, x: Any, rng: np.random.Generator | None = None):
        x = as_float_array(x, self)
        if rng is None:
            return x, None
        draw_dtype = np.float32 if x.dtype == np.float32 else np.float64
        keep = np.greater_equal(rng.random(x.shape, dtype=draw_dtype), self.rate)
        factor = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * factor, factor

    def backward(self, params: Any, factor: np.ndarray | None, dy: np.ndarray):
        if factor is None:  # evaluation mode: the identity
            return dy, {}
        return dy * factor, {}
