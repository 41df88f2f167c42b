"""Layers that only change an array's shape: Flatten and Reshape."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.layers.base import Layer, shape_error
from purenn.validation import as_float_array, to_shape
from purenn.validation import shape as shape_rule

__all__ = ["Flatten", "Reshape"]


@attrs.frozen
class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

    fresh_grads: ClassVar[bool] = True

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1:
            raise shape_error(self, "(batch, ...)", input_shape)
        return (input_shape[0], math.prod(input_shape[1:]))

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        if x.ndim < 1:
            raise shape_error(self, "(batch, ...)", x.shape)
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, params: Any, shape: tuple[int, ...], dy: np.ndarray):
        return dy.reshape(shape), {}


@attrs.frozen
class Reshape(Layer):
    """(batch, ...) -> (batch, *shape); the per-sample size must stay the same.

    ``Reshape((28, 28, 1))`` turns flat MNIST rows into channels-last images.
    """

    fresh_grads: ClassVar[bool] = True

    shape: tuple[int, ...] = attrs.field(converter=to_shape, validator=shape_rule)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(self.shape)
        if len(input_shape) < 1 or math.prod(input_shape[1:]) != size:
            raise shape_error(self, f"(batch, ...) with {size} values per sample", input_shape)
        return (input_shape[0], *self.shape)

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self)
        size = math.prod(self.shape)
        if x.ndim < 1 or math.prod(x.shape[1:]) != size:
            raise shape_error(self, f"(batch, ...) with {size} values per sample", x.shape)
        return x.reshape((x.shape[0], *self.shape)), x.shape

    def backward(self, params: Any, shape: tuple[int, ...], dy: np.ndarray):
        return dy.reshape(shape), {}
