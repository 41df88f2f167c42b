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

A layer may also declare ``fresh_grads = True``: its backward (and ``param_grads``) return the
grads as arrays made in that call (or non-overlapping views of them) that it keeps nowhere, not
in its params, cache or state. ``fit`` then writes the new params into that memory instead of
fresh blocks (see :mod:`purenn.optim.base`, "donated memory"); purenn's own layers declare it,
containers when all their children do, and a layer that does not (the default) is never written
into.

A layer may also say what shape it gives: ``output_shape(input_shape) -> shape``, both with the
batch axis first (``Dense(784, 10).output_shape((32, 784)) == (32, 10)``), raising
:class:`~purenn.errors.ShapeError` for an input it cannot take. :func:`purenn.summary` uses it to
describe a model without running it. The base class does not know (``NotImplementedError``);
element-wise layers derive from :class:`ShapePreserving`.

**State.** A layer that carries values between steps which are not trained (BatchNorm's running
mean and variance) sets ``stateful = True`` and adds ``init_state() -> state``, a tree of read-only
arrays like params, and ``state_shapes()``, its ``(shape, dtype)`` outline. Its forward takes the
state and the mode, both explicitly, and returns the new state as a third value::

    y, cache, new_state = layer.forward(params, x, state=state, training=True)
    y, cache, same_state = layer.forward(params, x, state=state, training=False)

Nothing is stored in the layer and nothing is global: the caller picks the mode on every call and
keeps (or drops) the returned state; the state passed in stays valid. Calling a stateful layer
without ``state`` or ``training`` raises :class:`~purenn.errors.ArgumentError` rather than picking a
mode. ``backward(params, cache, dy)`` keeps its contract (the cache remembers the mode). Layers
without state keep the two-argument ``forward``; their ``init_state()`` is ``{}``.
:func:`apply_layer` calls any layer, stateful or not, in one signature: containers
(``Sequential``, ``Residual``, ``Parallel``) use it to thread state through their children.

To write your own layer, subclass :class:`Layer` under ``@attrs.frozen`` and define the three
methods; it then composes with the built-in ones inside ``Sequential``, trains with ``fit`` and
is verified by :func:`purenn.check_gradients`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.tree import tree_map

#: What ``purenn.layers`` and ``purenn`` re-export from here. The other public names below
#: (``ShapePreserving``, ``shape_error``, ``require_mode``, ``param_shapes``, ...) are for layer
#: authors and purenn's own modules, imported from this module.
__all__ = ["Layer", "apply_layer"]


@attrs.frozen
class Layer:
    """Base class for layers; ``init`` defaults to a layer without parameters."""

    stochastic: ClassVar[bool] = False
    stateful: ClassVar[bool] = False
    fresh_grads: ClassVar[bool] = False

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

    def init_state(self) -> Any:
        """The state a layer without state carries: an empty dict."""
        return {}

    def state_shapes(self) -> Any:
        """``init_state()``'s tree with each array as a ``(shape, dtype)`` pair: ``{}`` here."""
        return {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output's shape for an input of ``input_shape`` (batch axis first)."""
        raise NotImplementedError(f"{type(self).__name__} does not define output_shape(input_shape)")

    def forward(self, params: Any, x: Any) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define forward(params, x)")

    def backward(self, params: Any, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define backward(params, cache, dy)")


@attrs.frozen
class ShapePreserving(Layer):
    """A layer whose output has its input's shape (activations, dropout, normalisation)."""

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)


#: The default of a stateful ``forward``'s ``state`` and ``training``: "not given", told apart
#: from any value a caller passes (``None`` included), so :func:`require_mode` can name what is missing.
MISSING: Any = object()


def is_layer(value: Any) -> bool:
    """Whether ``value`` keeps the layer contract's three methods: ``init``, ``forward`` and
    ``backward`` (any object that does is a layer, derived from :class:`Layer` or not)."""
    return all(callable(getattr(value, m, None)) for m in ("init", "forward", "backward"))


def require_mode(layer: object, state: Any, training: Any) -> None:
    """The check at the top of a stateful ``forward``: both ``state`` and ``training`` given."""
    if state is MISSING or state is None or training is MISSING or training is None:
        missing = " and ".join(n for n, v in (("state", state), ("training", training))
                               if v is MISSING or v is None)
        raise ArgumentError(
            f"{layer!r:.120} carries state (running statistics) and was called without {missing}: "
            "call forward(params, x, state=state, training=True) while training (it returns "
            "(y, cache, new_state)) or training=False to use the state as it is; make the first "
            "state with layer.init_state()"
        )
    if not isinstance(training, bool):
        raise ArgumentTypeError(f"{layer!r:.80}: `training` must be True or False, got {training!r:.40}")


def apply_layer(layer: Any, params: Any, x: Any, *, state: Any, training: bool,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, Any, Any]:
    """``(y, cache, new_state)`` from any layer, stateful or not: a stateful layer gets ``state``
    and ``training``; a stochastic one gets ``rng`` when training (no generator: evaluation
    mode); any other layer is called as ``forward(params, x)`` and its ``state`` passes through."""
    stochastic = getattr(layer, "stochastic", False)
    if getattr(layer, "stateful", False):
        if stochastic:
            return layer.forward(params, x, state=state, training=training,
                                 rng=rng if training else None)
        return layer.forward(params, x, state=state, training=training)
    if stochastic and training and rng is not None:
        y, cache = layer.forward(params, x, rng=rng)
    else:
        y, cache = layer.forward(params, x)
    return y, cache, state


def param_shapes(layer: Any) -> Any:
    """``layer.param_shapes()``, or for a layer that does not define it (not derived from
    :class:`Layer`) the shapes of what its ``init`` gives."""
    method = getattr(layer, "param_shapes", None)
    return method() if callable(method) else Layer.param_shapes(layer)


def output_shape(layer: Any, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``layer.output_shape(input_shape)``; ``NotImplementedError`` for a layer without it."""
    method = getattr(layer, "output_shape", None)
    if not callable(method):
        raise NotImplementedError(f"{type(layer).__name__} does not define output_shape(input_shape)")
    return tuple(method(tuple(input_shape)))


def init_state(layer: Any) -> Any:
    """``layer.init_state()``, or ``{}`` for a layer that does not define it."""
    method = getattr(layer, "init_state", None)
    return method() if callable(method) else {}


def state_shapes(layer: Any) -> Any:
    """``layer.state_shapes()``, or ``{}`` for a layer that does not define it."""
    method = getattr(layer, "state_shapes", None)
    return method() if callable(method) else {}


def state_problem(layer: Any, state: Any) -> str | None:
    """What is wrong with the values of a ``state`` whose layout fits ``layer`` (a running
    variance below zero, which would make every prediction NaN), or None: ``layer.state_problem``
    when the layer defines it (BatchNorm, and containers for their children). Files are checked
    with it before their state is trusted."""
    method = getattr(layer, "state_problem", None)
    return method(state) if callable(method) else None


def shape_error(layer: object, expected: str, got: tuple[int, ...]) -> ShapeError:
    """The error for an input of the wrong shape: names the layer, the expected and actual shape."""
    return ShapeError(f"{layer!r} expected input of shape {expected}, got {tuple(got)}")
