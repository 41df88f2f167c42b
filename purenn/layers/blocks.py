"""Composition beyond a chain: ``Identity``, ``Residual`` (y = x + block(x)) and ``Parallel``
(branches on the same input, merged by concatenation or sum) — stax's ``FanOut``, ``parallel``,
``FanInSum`` and ``FanInConcat`` as two layers.

Both containers thread params and state through their children as ``Sequential`` does (one entry
per child), hand each stochastic child its own spawned stream, and are stateful (taking
``state=`` and ``training=``, see :mod:`purenn.layers.base`) exactly when a child is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.layers.base import (
    MISSING, Layer, ShapePreserving, apply_layer, init_state, is_layer, output_shape, param_shapes,
    require_mode, state_problem, state_shapes,
)
from purenn.layers.sequential import to_layers
from purenn.validation import as_float_array, one_of

__all__ = ["Identity", "Parallel", "Residual"]


@attrs.frozen
class Identity(ShapePreserving):
    """Y = X; dE/dX = dE/dY. A branch of a ``Parallel`` that passes its input through."""

    fresh_grads: ClassVar[bool] = True

    def forward(self, params: Any, x: Any):
        return as_float_array(x, self), None

    def backward(self, params: Any, cache: Any, dy: np.ndarray):
        return dy, {}


def _optional_layer(value: Any) -> Layer | None:
    if value is not None and not is_layer(value):
        raise ArgumentTypeError(
            f"Residual: projection must be a layer or None, got {value!r:.80}; e.g. "
            "projection=Conv2D(32, 64, 1) when the block changes the number of channels"
        )
    return value


def _block(value: Any) -> Layer:
    if not is_layer(value):
        raise ArgumentTypeError(
            f"Residual takes a layer as its block, e.g. Residual(Sequential([Dense(8, 8), ReLU()])); "
            f"got {value!r:.80}"
        )
    return value


@attrs.frozen
class _Container(Layer):
    """What Residual and Parallel share: children, the state and mode threading."""

    @property
    def children(self) -> tuple[Layer, ...]:  # pragma: no cover - each subclass gives its own
        raise NotImplementedError

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(getattr(c, "stochastic", False) for c in self.children)

    @property
    def stateful(self) -> bool:  # type: ignore[override]
        return any(getattr(c, "stateful", False) for c in self.children)

    @property
    def fresh_grads(self) -> bool:  # type: ignore[override]
        return all(getattr(c, "fresh_grads", False) for c in self.children)

    def _run(self, params: Any, x: Any, rng: np.random.Generator | None, state: Any,
             training: Any) -> tuple[list[np.ndarray], list[Any], list[Any], bool]:
        """Every child on ``x``: their outputs, caches and new states, and whether the caller
        asked with state (a stateful container must be; a stateless one may not)."""
        children = self.children
        if self.stateful:
            require_mode(self, state, training)
            states = self._entries("state", state, "model.init_state()")
        elif state is not MISSING or training is not MISSING:
            raise ArgumentError(
                f"{type(self).__name__} has no layer with state: call forward(params, x) (or "
                "forward(params, x, rng=...) to train dropout)"
            )
        else:
            states, training = [{} for _ in children], True  # dropout trains iff rng is given
        entries = self._entries("params", params, "model.init(rng)")
        streams = rng.spawn(len(children)) if rng is not None and training else [None] * len(children)
        x = as_float_array(x, self)
        outs, caches, new_states = [], [], []
        for name, child, p, s, r in zip(self._names, children, entries, states, streams):
            try:
                y, cache, s = apply_layer(child, p, x, state=s, training=training, rng=r)
            except ShapeError as e:
                raise ShapeError(f"{name} of {type(self).__name__}: {e}") from None
            outs.append(y)
            caches.append(cache)
            new_states.append(s)
        return outs, caches, new_states, self.stateful

    @property
    def _names(self) -> tuple[str, ...]:  # pragma: no cover - each subclass gives its own
        raise NotImplementedError

    def _entries(self, what: str, tree: Any, make: str) -> list[Any]:
        raise NotImplementedError  # pragma: no cover

    def _pack(self, entries: list[Any]) -> Any:
        raise NotImplementedError  # pragma: no cover

    def init(self, rng: np.random.Generator) -> Any:
        streams = rng.spawn(len(self.children))
        return self._pack([c.init(r) for c, r in zip(self.children, streams)])

    def param_shapes(self) -> Any:
        return self._pack([param_shapes(c) for c in self.children])

    def init_state(self) -> Any:
        return self._pack([init_state(c) for c in self.children])

    def state_shapes(self) -> Any:
        return self._pack([state_shapes(c) for c in self.children])

    def state_problem(self, state: Any) -> str | None:
        """The first child's :func:`~purenn.layers.base.state_problem`, naming the child."""
        for name, child, s in zip(self._names, self.children, self._entries("state", state, "")):
            problem = state_problem(child, s)
            if problem is not None:
                return f"{name} of {type(self).__name__}: {problem}"
        return None

    def _child_shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        shapes = []
        for name, child in zip(self._names, self.children):
            try:
                shapes.append(output_shape(child, input_shape))
            except ShapeError as e:
                raise ShapeError(f"{name} of {type(self).__name__}: {e}") from None
        return shapes


@attrs.frozen
class Residual(_Container):
    """Y = shortcut(X) + block(X), where shortcut is ``projection`` or, by default, the identity.

    ``block``: any layer (usually a ``Sequential``) whose output has the shape of the shortcut's.
    ``projection``: a layer that maps X to the block's output shape when that differs from X's
    (a 1x1 ``Conv2D`` for more channels, a ``Dense`` for more features), or None.

    Params and state: ``{"block": ..., "projection": ...}`` (``{}`` for no projection).
    Backward: dE/dX = dE/dX through the block + dE/dX through the shortcut (dE/dY itself when it
    is the identity).
    """

    block: Layer = attrs.field(converter=_block)
    projection: Layer | None = attrs.field(default=None, converter=_optional_layer)

    @property
    def _names(self) -> tuple[str, ...]:
        return ("block", "projection")

    @property
    def children(self) -> tuple[Layer, ...]:
        return (self.block,) if self.projection is None else (self.block, self.projection)

    def _entries(self, what: str, tree: Any, make: str) -> list[Any]:
        if not isinstance(tree, dict) or tree.keys() != {"block", "projection"}:
            got = f"keys {sorted(tree)}" if isinstance(tree, dict) else type(tree).__name__
            raise ArgumentError(f"Residual needs {what} as a dict with 'block' and 'projection', "
                                f"got {got}; create them with {make}")
        return [tree["block"]] if self.projection is None else [tree["block"], tree["projection"]]

    def _pack(self, entries: list[Any]) -> dict[str, Any]:
        return {"block": entries[0], "projection": entries[1] if len(entries) > 1 else {}}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        shapes = self._child_shapes(input_shape)
        shortcut = shapes[1] if self.projection is not None else tuple(input_shape)
        self._check_shapes(shapes[0], shortcut)
        return shapes[0]

    def _check_shapes(self, block: tuple[int, ...], shortcut: tuple[int, ...]) -> None:
        if tuple(block) != tuple(shortcut):
            what = "the projection" if self.projection is not None else "the input (identity shortcut)"
            raise ShapeError(
                f"Residual: the block gives shape {tuple(block)} but {what} has shape "
                f"{tuple(shortcut)}; they are added, so they must match"
                + ("" if self.projection is not None else
                   " (give projection=..., e.g. a 1x1 Conv2D or a Dense, to map the input)")
            )

    def forward(self, params: dict[str, Any], x: Any, rng: np.random.Generator | None = None, *,
                state: Any = MISSING, training: Any = MISSING):
        outs, caches, states, with_state = self._run(params, x, rng, state, training)
        shortcut = outs[1] if self.projection is not None else as_float_array(x, self)
        self._check_shapes(outs[0].shape, shortcut.shape)
        y = outs[0] + shortcut
        if with_state:
            return y, caches, self._pack(states)
        return y, caches

    def backward(self, params: dict[str, Any], caches: list[Any], dy: np.ndarray):
        dx, block_grads = self.block.backward(params["block"], caches[0], dy)
        if self.projection is None:
            return dx + dy, {"block": block_grads, "projection": {}}
        dx_short, proj_grads = self.projection.backward(params["projection"], caches[1], dy)
        return dx + dx_short, {"block": block_grads, "projection": proj_grads}


MERGES = ("concat", "sum")


@attrs.frozen
class Parallel(_Container):
    """Every branch on the same input X, the outputs merged: Y = concat(branch_i(X)) along the
    last axis (``merge="concat"``, the default: channels of a channels-last image, features of a
    vector) or Y = sum of branch_i(X) (``merge="sum"``).

    Params and state: a tuple with one entry per branch. Backward: each branch gets its slice of
    dE/dY (concat) or all of it (sum); dE/dX is the sum of the branches' input gradients.
    ``Parallel([Identity(), block])`` is a DenseNet-style skip that concatenates.
    """

    branches: tuple[Layer, ...] = attrs.field(converter=to_layers)
    merge: str = attrs.field(default="concat", validator=one_of(MERGES))

    @branches.validator
    def _not_empty(self, attribute: Any, value: tuple[Layer, ...]) -> None:
        if not value:
            raise ArgumentError("Parallel needs at least one branch")

    @property
    def children(self) -> tuple[Layer, ...]:
        return self.branches

    @property
    def _names(self) -> tuple[str, ...]:
        return tuple(f"branch {i}" for i in range(len(self.branches)))

    def _entries(self, what: str, tree: Any, make: str) -> list[Any]:
        if not isinstance(tree, (tuple, list)) or len(tree) != len(self.branches):
            got = f"{len(tree)} entries" if isinstance(tree, (tuple, list)) else type(tree).__name__
            raise ArgumentError(f"Parallel of {len(self.branches)} branches needs {what} with one "
                                f"entry per branch, got {got}; create them with {make}")
        return list(tree)

    def _pack(self, entries: list[Any]) -> tuple[Any, ...]:
        return tuple(entries)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self._merged_shape(self._child_shapes(input_shape))

    def _merged_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        first = tuple(shapes[0])
        if self.merge == "sum":
            if any(tuple(s) != first for s in shapes):
                raise ShapeError(f"Parallel(merge='sum'): the branches give shapes "
                                 f"{[tuple(s) for s in shapes]}; summed outputs must all match")
            return first
        if any(len(s) != len(first) or tuple(s[:-1]) != first[:-1] for s in shapes):
            raise ShapeError(f"Parallel(merge='concat'): the branches give shapes "
                             f"{[tuple(s) for s in shapes]}; concatenated along the last axis, they "
                             "must agree on every other axis")
        return (*first[:-1], sum(s[-1] for s in shapes))

    def forward(self, params: tuple[Any, ...], x: Any, rng: np.random.Generator | None = None, *,
                state: Any = MISSING, training: Any = MISSING):
        outs, caches, states, with_state = self._run(params, x, rng, state, training)
        self._merged_shape([o.shape for o in outs])
        if self.merge == "sum":
            y = outs[0].astype(np.result_type(*outs))  # a copy, in the widest branch dtype
            for o in outs[1:]:
                y += o
            sizes = None
        else:
            y = np.concatenate(outs, axis=-1)
            sizes = [o.shape[-1] for o in outs]
        cache = (caches, sizes)
        if with_state:
            return y, cache, tuple(states)
        return y, cache

    def backward(self, params: tuple[Any, ...], cache: Any, dy: np.ndarray):
        caches, sizes = cache
        if sizes is None:
            pieces = [dy] * len(self.branches)
        else:
            pieces = np.split(dy, np.cumsum(sizes)[:-1], axis=-1)
        dx = None
        grads = []
        for branch, p, c, d in zip(self.branches, params, caches, pieces):
            dxi, g = branch.backward(p, c, d)
            dx = dxi if dx is None else dx + dxi
            grads.append(g)
        return dx, tuple(grads)
