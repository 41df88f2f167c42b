"""Models shared by the tests of saving and loading: ``from _models import Scale, mixed_model``
(``tests/`` is on ``sys.path``, see conftest.py)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from purenn.layers import Dense, Flatten, Layer, LeakyReLU, ReLU, Reshape, Sequential, Softmax, Tanh
from purenn.tree import readonly
from purenn.validation import as_float_array


@attrs.frozen
class Scale(Layer):
    """A user-defined layer: Y = factor * X, with a learnable per-feature gain."""

    features: int
    factor: float = 2.0
    tags: tuple[str, ...] = ()

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"g": readonly(rng.standard_normal(self.features))}

    def forward(self, params: Any, x: Any):
        x = as_float_array(x, self, np.float64)
        return self.factor * params["g"] * x, x

    def backward(self, params: Any, x: np.ndarray, dy: np.ndarray):
        return self.factor * params["g"] * dy, {"g": self.factor * (dy * x).sum(axis=0)}


def mixed_model(dtype: str = "float32") -> Sequential:
    """Shape layers, dense layers with and without bias, activations and a nested Sequential."""
    return Sequential((
        Reshape((2, 6)), Flatten(),
        Dense(12, 8, dtype=dtype), Tanh(),
        Sequential([Dense(8, 5, initializer="he", dtype=dtype), ReLU()]),
        Dense(5, 3, use_bias=False, dtype=dtype), LeakyReLU(0.2), Softmax(axis=-1),
    ))


def declared_shapes(shapes: Any) -> Any:
    """A ``param_shapes()``/``state_shapes()`` tree with each ``(shape, dtype name)`` leaf as
    ``(tuple, np.dtype)``, to compare with the ``(a.shape, a.dtype)`` of allocated arrays."""
    if isinstance(shapes, tuple) and len(shapes) == 2 and isinstance(shapes[1], str):
        return tuple(shapes[0]), np.dtype(shapes[1])
    if isinstance(shapes, dict):
        return {k: declared_shapes(v) for k, v in shapes.items()}
    return type(shapes)(declared_shapes(v) for v in shapes)
