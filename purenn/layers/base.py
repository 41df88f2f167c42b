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

To write your own layer, subclass :class:`Layer` under ``@attrs.frozen`` and define the three
methods; it then composes with the built-in ones inside ``Sequential``, trains with ``fit`` and
is verified by :func:`purenn.check_gradients`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ShapeError

_FLOAT_DTYPES = ("float32", "float64")


@attrs.frozen
class Layer:
    """Base class for layers; ``init`` defaults to a layer without parameters."""

    stochastic: ClassVar[bool] = False

    def init(self, rng: np.random.Generator) -> Any:
        """Parameters of a layer that has none: an empty dict."""
        return {}

    def forward(self, params: Any, x: Any) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define forward(params, x)")

    def backward(self, params: Any, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define backward(params, cache, dy)")


def as_float_array(x: Any, layer: object, dtype: Any = None) -> np.ndarray:
    """Convert a layer's input to a floating array, refusing non-numeric data clearly.

    ``dtype`` given: convert to it (integer XOR arrays become the layer's floats). Otherwise
    floating input keeps its dtype and integer or boolean input becomes float32.
    """
    if type(x) is np.ndarray and (x.dtype == dtype or (dtype is None and x.dtype.kind == "f")):
        return x
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{layer!r}: input could not be turned into an array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{layer!r}: input must be numeric, got an array of dtype {a.dtype}; "
            "convert it first, e.g. np.asarray(x, dtype=np.float32)"
        )
    target = dtype if dtype is not None else (a.dtype if a.dtype.kind == "f" else np.float32)
    return a.astype(target, copy=False)


def shape_error(layer: object, expected: str, got: tuple[int, ...]) -> ShapeError:
    """The error for an input of the wrong shape: names the layer, the expected and actual shape."""
    return ShapeError(f"{layer!r} expected input of shape {expected}, got {tuple(got)}")


def float_dtype_validator(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in _FLOAT_DTYPES:
        raise ValueError(f"`{attribute.name}` must be one of {_FLOAT_DTYPES}, got {value!r}")


def index_to_int(value: Any) -> Any:
    """attrs converter: NumPy integers (from shape arithmetic) become plain ints, so records
    compare and serialise as written; anything else is left for the validator to judge."""
    return int(value) if isinstance(value, np.integer) else value


def one_of(choices: tuple[str, ...]):
    """attrs validator: ``value`` is one of ``choices``; the message names the field and the choices."""

    def validate(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"`{attribute.name}` must be one of {choices}, got {value!r}")

    return validate


def positive_int(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: a positive int (not a bool), with a message naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{attribute.name}` must be a positive integer, got {value!r}")


def to_float(name: str):
    """attrs converter to float whose error names the field."""

    def convert(value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a number, got {value!r}") from None

    return convert
