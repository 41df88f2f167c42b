"""Fully connected layer: Y = X W + b."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentError, ShapeError
from purenn.layers.base import Layer, shape_error
from purenn.tree import readonly
from purenn.validation import array_size, as_float_array, boolean, float_dtype, one_of, to_int

__all__ = ["Dense"]

INITIALIZERS = ("uniform", "glorot", "he")


@attrs.frozen
class Dense(Layer):
    """Y = X W + b, for X of shape ``(..., in_features)`` and Y of shape ``(..., out_features)``.

    Backward (the tutorial's three equations, summed over the batch)::

        dE/dX = dE/dY W^T      dE/dW = X^T dE/dY      dE/db = sum over samples of dE/dY

    ``initializer``:
      - ``"uniform"``: the tutorial's weights and biases, uniform in [-0.5, 0.5).
      - ``"glorot"`` (default): Glorot/Xavier uniform, limit sqrt(6 / (in + out)); zero bias.
      - ``"he"``: He normal, std sqrt(2 / in), for ReLU networks; zero bias.
    ``dtype``: ``"float32"`` (default) or ``"float64"``; inputs are converted to the params' dtype.
    """

    fresh_grads: ClassVar[bool] = True

    in_features: int = attrs.field(converter=to_int, validator=array_size)
    out_features: int = attrs.field(converter=to_int, validator=array_size)
    initializer: str = attrs.field(default="glorot", validator=one_of(INITIALIZERS))
    use_bias: bool = attrs.field(default=True, validator=boolean)
    dtype: str = attrs.field(default="float32", validator=float_dtype)

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = (self.in_features, self.out_features)
        if self.initializer == "uniform":
            w = rng.random(shape) - 0.5
            b = rng.random(self.out_features) - 0.5
        elif self.initializer == "glorot":
            limit = np.sqrt(6.0 / (self.in_features + self.out_features))
            w = rng.uniform(-limit, limit, shape)
            b = np.zeros(self.out_features)
        else:
            w = rng.standard_normal(shape) * np.sqrt(2.0 / self.in_features)
            b = np.zeros(self.out_features)
        params = {"w": readonly(w.astype(self.dtype))}
        if self.use_bias:
            params["b"] = readonly(b.astype(self.dtype))
        return params

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``init``'s shapes and dtypes without allocating (see :class:`~purenn.layers.base.Layer`)."""
        shapes: dict[str, tuple[tuple[int, ...], str]] = {
            "w": ((self.in_features, self.out_features), self.dtype)
        }
        if self.use_bias:
            shapes["b"] = ((self.out_features,), self.dtype)
        return shapes

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        if len(input_shape) < 2 or input_shape[-1] != self.in_features:
            raise shape_error(self, f"(batch, {self.in_features})", input_shape)
        return (*input_shape[:-1], self.out_features)

    def forward(self, params: dict[str, np.ndarray], x: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            w = params["w"]
            b = params["b"] if self.use_bias else None
        except (KeyError, TypeError, IndexError):
            keys = "'w' and 'b'" if self.use_bias else "'w'"
            got = f"keys {sorted(params)}" if isinstance(params, dict) else type(params).__name__
            raise ArgumentError(
                f"{self!r}: params must be a dict with {keys}, as layer.init(rng) makes; got {got}"
            ) from None
        if w.shape != (self.in_features, self.out_features):
            raise ShapeError(
                f"{self!r}: params['w'] has shape {w.shape}, expected "
                f"{(self.in_features, self.out_features)}; were these params made for another layer?"
            )
        if type(x) is not np.ndarray or x.dtype != w.dtype:
            x = as_float_array(x, self, w.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise shape_error(self, f"(batch, {self.in_features})", x.shape)
        y = np.dot(x, w) if x.ndim == 2 else x @ w  # same result; np.dot has less overhead
        if b is not None:
            y += b
        return y, x

    def backward(self, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray):
        w = params["w"]
        if x.ndim == 2:
            dx = np.dot(dy, w.T)
        else:  # any leading dims: flatten them into one batch axis
            dx = np.dot(dy.reshape(-1, self.out_features), w.T).reshape(x.shape)
        return dx, self.param_grads(params, x, dy)

    def param_grads(self, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray):
        """``backward``'s grads alone, without dE/dX: for a model's first layer, whose input is data."""
        if x.ndim != 2:
            x, dy = x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)
        # np.dot, not @: for a single sample (an outer product) matmul is several times slower
        grads = {"w": np.dot(x.T, dy)}
        if self.use_bias:
            grads["b"] = np.add.reduce(dy, axis=0)  # dy.sum(axis=0) without its Python wrapper
        return grads
