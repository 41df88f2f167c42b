"""The layer contract, stated once.

A layer is a frozen ``attrs`` record holding hyperparameters only. It has three pure methods::

    params = layer.init(rng)                       # rng: numpy.random.Generator
    y, cache = layer.forward(params, x)            # nothing mutated, nothing global read
    dx, grads = layer.backward(params, cache, dy)  # grads has the same structure as params

``params`` is a tree of read-only arrays (``{}`` for a layer without parameters); ``cache`` is
whatever ``backward`` needs from the forward pass. ``backward`` never updates anything: updates
belong to :func:`purenn.sgd_step` and the optimizers. Layers that draw random numbers at forward
time (``Dropout``) set ``stochastic = True`` and accept ``forward(params, x, rng=None)``; with no
generator they run in evaluation mode.

A layer may also offer ``param_grads(params, cache, dy) -> grads``: ``backward``'s grads without
dE/dX. ``fit`` uses it for the model's first layer, whose input is data and needs no gradient
(for a Dense layer on MNIST that is a third of a step's arithmetic). It is optional.

A layer may also say what ``init`` would give without building it:
``param_shapes() -> tree``, the params tree with each array replaced by a ``(shape, dtype)`` pair,
e.g. ``{"w": ((784, 100), "float32"), "b": ((100,), "float32")}``. Checkpoints compare it with
the arrays in a file before allocating anything. The base class gives ``{}`` for a layer without
parameters, and for a layer with its own ``init`` but no ``param_shapes`` it calls ``init``
(allocating the arrays once) and describes the result; a subclass of a layer that changes the
shapes ``init`` gives must override ``param_shapes`` too.

To write your own layer, subclass :class:`Layer` under ``@attrs.frozen`` and define the three
methods; it then composes with the built-in ones inside ``Sequential``, trains with ``fit`` and
is verified by :func:`purenn.check_gradients`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.tree import tree_map


@attrs.frozen
class Layer:
    """Base class for layers; ``init`` defaults to a layer without parameters."""

    stochastic: ClassVar[bool] = False

    def init(self, rng: np.random.Generator) -> Any:
        """Parameters of a layer that has none: an empty dict."""
        return {}

    def param_shapes(self) -> Any:
        """``init``'s params tree with each array as a ``(shape, dtype)`` pair, e.g.
        ``{"w": ((3, 2), "float32")}``, without allocating: ``{}`` for a layer without
        parameters. A layer with its own ``init`` and no ``param_shapes`` gets them from ``init``
        (which allocates)."""
        if type(self).init is Layer.init:
            return {}
        params = self.init(np.random.default_rng(0))
        return tree_map(lambda a: (tuple(np.shape(a)), np.asarray(a).dtype.str), params)

    def forward(self, params: Any, x: Any) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define forward(params, x)")

    def backward(self, params: Any, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define backward(params, cache, dy)")


def shape_error(layer: object, expected: str, got: tuple[int, ...]) -> ShapeError:
    """The error for an input of the wrong shape: names the layer, the expected and actual shape."""
    return ShapeError(f"{layer!r} expected input of shape {expected}, got {tuple(got)}")
