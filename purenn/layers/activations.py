"""Element-wise activations and softmax: layers without parameters.

Each computes Y = f(X) and, in backward, dE/dX = dE/dY * f'(X) (softmax: its Jacobian-vector
product). The cache holds whatever makes f' cheapest (often Y itself).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.layers.base import ShapePreserving
from purenn.validation import as_float_array, real, to_float

__all__ = ["GELU", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"]

_GELU_C = float(np.sqrt(2.0 / np.pi))  # a Python float, so float32 inputs stay float32


@attrs.frozen
class Tanh(ShapePreserving):
    """Y = tanh(X);  dE/dX = dE/dY * (1 - Y^2)."""

    fresh_grads: ClassVar[bool] = True

    def forward(self, params: Any, x: Any):
        if type(x) is not np.ndarray or x.dtype.kind != "f":
            x = as_float_array(x, self)
        y = np.tanh(x)
        return y, y

    def backward(self, params: Any, y: np.ndarray, dy: np.ndarray):
        return dy * (1 - y * y), {}


@attrs.frozen
class Sigmoid(ShapePreserving):
    """Y = 1 / (1 + exp(-X));  dE/dX = dE/dY * Y (1 - Y). Stable for large |X|."""

    fresh_grads: ClassVar[bool] = True

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        # 1/(1+exp(-x)) == (1 + tanh(x/2)) / 2, which never overflows
        y = 0.5 * (1 + np.tanh(0.5 * x))
        return y, y

    def backward(self, params: Any, y: np.ndarray, dy: np.ndarray):
        return dy * y * (1 - y), {}


@attrs.frozen
class ReLU(ShapePreserving):
    """Y = max(X, 0);  dE/dX = dE/dY where X > 0, else 0."""

    fresh_grads: ClassVar[bool] = True

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        mask = x > 0
        return x * mask, mask

    def backward(self, params: Any, mask: np.ndarray, dy: np.ndarray):
        return dy * mask, {}


@attrs.frozen
class LeakyReLU(ShapePreserving):
    """Y = X where X > 0, else ``negative_slope`` * X."""

    fresh_grads: ClassVar[bool] = True

    negative_slope: float = attrs.field(default=0.01, converter=to_float, validator=real())

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        slope = np.where(x > 0, 1, self.negative_slope).astype(x.dtype)
        return x * slope, slope

    def backward(self, params: Any, slope: np.ndarray, dy: np.ndarray):
        return dy * slope, {}


@attrs.frozen
class GELU(ShapePreserving):
    """Gaussian error linear unit, tanh approximation (as in BERT/GPT-2)::

        Y = X/2 (1 + tanh(u)),  u = sqrt(2/pi) (X + 0.044715 X^3)
    """

    fresh_grads: ClassVar[bool] = True

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
        return 0.5 * x * (1 + t), (x, t)

    def backward(self, params: Any, cache: tuple[np.ndarray, np.ndarray], dy: np.ndarray):
        x, t = cache
        du = _GELU_C * (1 + 3 * 0.044715 * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), {}


@attrs.frozen
class Softmax(ShapePreserving):
    """Y_i = exp(X_i) / sum_j exp(X_j) along ``axis``;  dE/dX = Y * (dE/dY - sum(dE/dY * Y)).

    For classification prefer ``softmax_cross_entropy`` on logits: it is fused and more stable.
    """

    fresh_grads: ClassVar[bool] = True

    axis: int = -1

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        y = e / e.sum(axis=self.axis, keepdims=True)
        return y, y

    def backward(self, params: Any, y: np.ndarray, dy: np.ndarray):
        return y * (dy - (dy * y).sum(axis=self.axis, keepdims=True)), {}
