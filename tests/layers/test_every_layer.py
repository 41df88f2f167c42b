"""The layer contract, checked on every layer class of the registry (tests/registry_layers.py).

For each class's drawn examples: ``forward`` computes the registry's plain-NumPy ``rule`` (where
the entry gives one); ``output_shape`` is the shape ``forward`` gives (what ``summary`` relies on); ``param_shapes()`` and ``state_shapes()`` declare what ``init`` and ``init_state``
allocate (what checkpoints check a file against before reading it); params are read-only and the
same from the same generator; non-numeric or ragged input is refused with a clear error naming the
layer, and integer or boolean input computes exactly as float32 input does; in evaluation mode each
sample of a batch is computed alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from purenn.errors import ArgumentTypeError
from purenn.layers import Softmax, apply_layer
from purenn.tree import tree_leaves, tree_map

from _models import declared_shapes
from layer_strategies import random_params, with_dtype
from registry_layers import LAYERS

EVERY_LAYER = pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)


def _evaluate(layer: Any, params: Any, x: Any) -> np.ndarray:
    return apply_layer(layer, params, x, state=layer.init_state(), training=False)[0]


def _allocated(tree: Any) -> Any:
    return tree_map(lambda a: (a.shape, a.dtype), tree)


@pytest.mark.parametrize("cls", [cls for cls, entry in LAYERS.items() if entry.rule is not None],
                         ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_forward_is_the_registrys_rule(cls, data):
    """The forward pass, in float64 at random params, against its definition in plain NumPy."""
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    layer = with_dtype(layer, "float64")
    params = random_params(layer, data.draw(st.integers(0, 2**32 - 1), label="seed"))
    np.testing.assert_allclose(_evaluate(layer, params, x), LAYERS[cls].rule(layer, params, x),
                               rtol=1e-12, atol=1e-12)


@EVERY_LAYER
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_output_shape_is_the_shape_forward_gives(cls, data):
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    y = _evaluate(layer, layer.init(np.random.default_rng(0)), x)
    assert layer.output_shape(x.shape) == y.shape


@EVERY_LAYER
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_declared_shapes_are_what_init_allocates(cls, data):
    layer, _ = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assert declared_shapes(layer.param_shapes()) == _allocated(layer.init(np.random.default_rng(0)))
    assert declared_shapes(layer.state_shapes()) == _allocated(layer.init_state())


@EVERY_LAYER
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_params_and_state_are_read_only_and_the_same_from_the_same_generator(cls, data):
    layer, _ = data.draw(LAYERS[cls].cases, label="(layer, x)")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    params, again = layer.init(np.random.default_rng(seed)), layer.init(np.random.default_rng(seed))
    for a, b in zip(tree_leaves(params), tree_leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    for leaf in tree_leaves(params) + tree_leaves(layer.init_state()):
        assert not leaf.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            leaf[...] = 0


@EVERY_LAYER
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_non_numeric_input_is_refused_naming_the_layer(cls, data):
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    params = layer.init(np.random.default_rng(0))
    for bad, dtype in ((np.full(x.shape, "a"), "<U1"), (np.full(x.shape, None, dtype=object), "object")):
        with pytest.raises(ArgumentTypeError, match=rf"\): input must be numeric, got an array of dtype {dtype}"):
            _evaluate(layer, params, bad)
    ragged = [x.tolist(), x.tolist()[:-1] or [[]]]
    with pytest.raises(ArgumentTypeError, match=r"\): input could not be turned into an array \(.*inhomogeneous"):
        _evaluate(layer, params, ragged)


@EVERY_LAYER
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_integer_and_boolean_input_compute_as_float32_input_does(cls, data):
    """The tutorial feeds integer arrays: they are converted as float32 ones would be, exactly."""
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    params = layer.init(np.random.default_rng(0))
    for exact in (np.round(3 * x).astype(np.int64), x > 0):
        got, want = _evaluate(layer, params, exact), _evaluate(layer, params, exact.astype(np.float32))
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@EVERY_LAYER
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_each_sample_is_computed_alone_in_evaluation_mode(cls, data):
    """The rows of a batch (axis 0) do not see each other: forward and dE/dX of a batch are those of
    each row alone, and the grads the sum of each row's; in float64, to rounding. (A Softmax asked
    to normalise over the batch axis mixes rows by definition.)"""
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assume(not (isinstance(layer, Softmax) and layer.axis % x.ndim == 0))
    layer = with_dtype(layer, "float64")
    params = layer.init(np.random.default_rng(0))
    state = layer.init_state()

    def run(rows: np.ndarray, dy: np.ndarray):
        y, cache, _ = apply_layer(layer, params, rows, state=state, training=False)
        return (y, *layer.backward(params, cache, dy))

    y = _evaluate(layer, params, x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    y, dx, grads = run(x, dy)
    grad_sum = tree_map(np.zeros_like, grads)
    for i in range(len(x)):
        yi, dxi, gi = run(x[i : i + 1], dy[i : i + 1])
        np.testing.assert_allclose(yi[0], y[i], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dxi[0], dx[i], rtol=1e-12, atol=1e-13)
        grad_sum = tree_map(np.add, grad_sum, gi)
    for a, b in zip(tree_leaves(grad_sum), tree_leaves(grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
