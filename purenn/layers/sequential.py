"""Sequential: a chain of layers that is itself a layer, so models nest."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from functools import cached_property

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.layers.base import (
    MISSING, Layer, apply_layer, init_state, is_layer, output_shape, param_shapes, require_mode,
    state_problem, state_shapes,
)
from purenn.tree import tree_map
from purenn.validation import as_float_array

__all__ = ["Sequential"]


def to_layers(value: Any) -> tuple[Layer, ...]:
    """A container's children as a tuple, each checked to be a layer (:func:`is_layer`); an
    :class:`~purenn.errors.ArgumentTypeError` for anything else (a single layer included)."""
    if is_layer(value) or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ArgumentTypeError(
            f"Sequential takes a list of layers, e.g. Sequential([Dense(2, 3), Tanh()]); "
            f"got {value!r:.80}"
        )
    layers = tuple(value)
    for i, layer in enumerate(layers):
        if not is_layer(layer):
            raise ArgumentTypeError(
                f"Sequential: item {i} ({layer!r}) is not a layer; a layer needs "
                "init(rng), forward(params, x) and backward(params, cache, dy)"
            )
    return layers


def _has_arrays(tree: Any) -> bool:
    """Whether a params tree holds any array (stops at the first one: cheap for a Dense's dict)."""
    if isinstance(tree, (dict, tuple, list)):
        for v in tree.values() if isinstance(tree, dict) else tree:
            if _has_arrays(v):
                return True
        return False
    return True


def _check_entries(layer: Any, what: str, tree: Any, make: str) -> None:
    """A container's params (or state) must have one entry per child."""
    n = len(layer.layers)
    if not isinstance(tree, (tuple, list)) or len(tree) != n:
        got = f"{len(tree)} entries" if isinstance(tree, (tuple, list)) else type(tree).__name__
        raise ArgumentError(
            f"{type(layer).__name__} of {n} layers needs {what} with one entry per layer, "
            f"got {got}; create them with {make}"
        )


@attrs.frozen
class Sequential(Layer):
    """Apply ``layers`` in order. Params and caches are tuples with one entry per layer.

    ``init(rng)`` gives each child its own stream, spawned from ``rng``, so adding a layer at the
    end does not change the initial params of the ones before it. ``forward`` hands a spawned
    generator to every stochastic child (dropout) when given one, and none in evaluation mode.
    """

    layers: tuple[Layer, ...] = attrs.field(converter=to_layers)

    @cached_property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(getattr(layer, "stochastic", False) for layer in self.layers)

    @cached_property
    def fresh_grads(self) -> bool:  # type: ignore[override]
        """Whether every layer inside returns fresh grads (see :class:`~purenn.layers.base.Layer`)."""
        return all(getattr(layer, "fresh_grads", False) for layer in self.layers)

    @cached_property
    def stateful(self) -> bool:  # type: ignore[override]
        """Whether any layer inside carries state (then ``forward`` takes ``state`` and ``training``)."""
        return any(getattr(layer, "stateful", False) for layer in self.layers)

    def init(self, rng: np.random.Generator) -> tuple[Any, ...]:
        streams = rng.spawn(len(self.layers))
        return tuple(layer.init(r) for layer, r in zip(self.layers, streams))

    def init_state(self) -> tuple[Any, ...]:
        """One entry per layer, as params: ``{}`` for a layer without state."""
        return tuple(init_state(layer) for layer in self.layers)

    def state_shapes(self) -> tuple[Any, ...]:
        return tuple(state_shapes(layer) for layer in self.layers)

    def state_problem(self, state: tuple[Any, ...]) -> str | None:
        """The first layer's :func:`~purenn.layers.base.state_problem`, naming the layer."""
        for i, (layer, s) in enumerate(zip(self.layers, state)):
            problem = state_problem(layer, s)
            if problem is not None:
                return f"layer {i} of Sequential: {problem}"
        return None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(input_shape)
        for i, layer in enumerate(self.layers):
            try:
                shape = output_shape(layer, shape)
            except ShapeError as e:
                raise ShapeError(f"layer {i} of Sequential: {e}") from None
        return shape

    def param_shapes(self) -> tuple[Any, ...]:
        """Each child's ``param_shapes()``, without allocating (see :class:`~purenn.layers.base.Layer`);
        a child that has none (a layer not derived from ``Layer``) is described from its ``init``."""
        return tuple(param_shapes(layer) for layer in self.layers)

    def forward(self, params: tuple[Any, ...], x: Any, rng: np.random.Generator | None = None, *,
                state: Any = MISSING, training: Any = MISSING):
        """``(y, caches)``; for a Sequential holding stateful layers (``self.stateful``),
        ``forward(params, x, rng=None, *, state, training)`` gives ``(y, caches, new_state)``."""
        _check_entries(self, "params", params, "model.init(rng)")
        if self.stateful:
            require_mode(self, state, training)
            _check_entries(self, "state", state, "model.init_state()")
            return self._forward_with_state(params, x, rng, state, training)
        if not self.layers:  # the identity: its input checked as every layer checks it
            return as_float_array(x, self), ()
        if state is not MISSING or training is not MISSING:
            raise ArgumentError(
                f"Sequential of {len(self.layers)} layers has no layer with state: call "
                "forward(params, x) (or forward(params, x, rng=...) to train dropout); "
                "purenn.apply_layer calls stateful and stateless layers alike"
            )
        caches = []
        i = 0
        try:
            if rng is None:  # evaluation mode, and the hot path of deterministic training
                for i, layer in enumerate(self.layers):
                    x, cache = layer.forward(params[i], x)
                    caches.append(cache)
            else:
                streams = rng.spawn(len(self.layers))
                for i, layer in enumerate(self.layers):
                    if getattr(layer, "stochastic", False):
                        x, cache = layer.forward(params[i], x, rng=streams[i])  # type: ignore[call-arg]
                    else:
                        x, cache = layer.forward(params[i], x)
                    caches.append(cache)
        except ShapeError as e:
            raise ShapeError(f"layer {i} of Sequential: {e}") from None
        return x, tuple(caches)

    def _forward_with_state(self, params: tuple[Any, ...], x: Any, rng: np.random.Generator | None,
                            state: tuple[Any, ...], training: bool):
        streams = rng.spawn(len(self.layers)) if rng is not None and training else [None] * len(self.layers)
        caches, new_state = [], []
        i = 0
        try:
            for i, layer in enumerate(self.layers):
                x, cache, s = apply_layer(layer, params[i], x, state=state[i], training=training,
                                          rng=streams[i])
                caches.append(cache)
                new_state.append(s)
        except ShapeError as e:
            raise ShapeError(f"layer {i} of Sequential: {e}") from None
        return x, tuple(caches), tuple(new_state)

    def backward(self, params: tuple[Any, ...], caches: tuple[Any, ...], dy: np.ndarray):
        layers = self.layers
        grads = [None] * len(layers)
        for i in range(len(layers) - 1, -1, -1):
            dy, grads[i] = layers[i].backward(params[i], caches[i], dy)
        return dy, tuple(grads)

    def param_grads(self, params: tuple[Any, ...], caches: tuple[Any, ...], dy: np.ndarray):
        """``backward``'s grads alone. No dE/dX is computed below the first layer that has
        parameters: that layer's input gradient (which ``fit`` would discard) is skipped when it
        offers ``param_grads`` too (for a Dense layer on MNIST, a third of a step's arithmetic),
        and the parameter-free layers before it (a ``Reshape``, say) are not run backward at all."""
        layers = self.layers
        first = next((i for i, p in enumerate(params) if _has_arrays(p)), len(layers))
        grads: list[Any] = [None] * len(layers)
        for i in range(len(layers) - 1, first, -1):
            dy, grads[i] = layers[i].backward(params[i], caches[i], dy)
        if first < len(layers):
            alone = getattr(layers[first], "param_grads", None)
            if alone is not None:
                grads[first] = alone(params[first], caches[first], dy)
            else:
                grads[first] = layers[first].backward(params[first], caches[first], dy)[1]
        for i in range(first):  # no parameters: the grads are the params' (leafless) structure
            grads[i] = tree_map(lambda a: a, params[i])
        return tuple(grads)
