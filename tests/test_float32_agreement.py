"""Every layer's float32 path against its float64 path, on the cases of the gradient registry.

``check_gradients`` (tests/test_gradients.py) casts everything to float64, so it never runs a
layer's float32 code: the dtype fast paths, float32 dropout masks, in-place float32 arithmetic.
Here each case of the layer registry (``LAYERS``, tests/registry_layers.py) runs twice from the same numbers: once as drawn (float64 params
and input), once with the layer set to float32 (``dtype="float32"`` wherever a layer has that
field) and the same params and input cast to float32. Outputs, ``backward``'s dE/dX and grads, and
``param_grads`` where a layer offers it, must agree to float32 precision (rtol 1e-4, atol 1e-5
times the array's largest value, at least 1e-5) and stay float32; the float64 run must stay float64.
Dropout draws its mask in the input's precision (a float32 draw differs from a float64 one), so
its training mode is checked against its documented formula with the float32 mask instead.
Stateful layers (BatchNorm, and containers holding one) run through ``purenn.apply_layer`` in both
modes: training from ``init_state()`` (each run's own, in its own dtype) and evaluation with a
trained float64 state and the same state cast to float32; the new states must agree too (and keep
their run's dtype). Containers with a dropout inside run in training mode without a generator
(their dropout then passes its input through), as ``fit``'s evaluation does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn.layers import BatchNorm, Dropout, Parallel, Residual, Sequential, apply_layer
from purenn.tree import tree_leaves, tree_map, tree_structure

from layer_strategies import trained_state, with_dtype
from registry_layers import LAYERS

RTOL, ATOL = 1e-4, 1e-5


def has_array_params(tree: Any) -> bool:
    return bool(tree_leaves(tree))


def assert_agree(got32: Any, want64: Any, what: str) -> None:
    got32, want64 = np.asarray(got32), np.asarray(want64)
    assert got32.dtype == np.float32, f"{what}: float32 run gave {got32.dtype}"
    assert want64.dtype == np.float64, f"{what}: float64 run gave {want64.dtype}"
    assert got32.shape == want64.shape, f"{what}: shapes {got32.shape} vs {want64.shape}"
    scale = float(np.abs(want64).max(initial=0.0))
    # the absolute floor is ATOL: inputs, params and dy are O(1), and results that cancel down to
    # far less (a softmax's dE/dX) carry float32 errors of the size of the terms, not the result
    np.testing.assert_allclose(got32.astype(np.float64), want64, rtol=RTOL, atol=ATOL * max(scale, 1.0),
                               err_msg=f"{what}: float32 and float64 disagree")


def assert_trees_agree(got32: Any, want64: Any, what: str) -> None:
    assert tree_structure(got32) == tree_structure(want64), f"{what}: structures differ"
    for k, (a, b) in enumerate(zip(tree_leaves(got32), tree_leaves(want64), strict=True)):
        assert_agree(a, b, f"{what} leaf {k}")


def run(layer: Any, params: Any, x: np.ndarray, dy: np.ndarray, rng_seed: int | None, *,
        state: Any = None, training: bool = False):
    """forward, backward and (when offered) param_grads, and the new state (``None`` for a layer
    without state); stochastic layers get a fixed stream when given ``rng_seed``, stateful ones
    ``state`` in the mode asked for."""
    if getattr(layer, "stateful", False):
        rng = np.random.default_rng(rng_seed) if rng_seed is not None else None
        y, cache, new_state = apply_layer(layer, params, x, state=state, training=training, rng=rng)
    elif rng_seed is not None and getattr(layer, "stochastic", False):
        (y, cache), new_state = layer.forward(params, x, rng=np.random.default_rng(rng_seed)), None
    else:
        (y, cache), new_state = layer.forward(params, x), None
    dx, grads = layer.backward(params, cache, dy.astype(y.dtype) if y.shape == dy.shape else dy)
    alone = getattr(layer, "param_grads", None)
    return y, dx, grads, (alone(params, cache, dy.astype(y.dtype)) if alone is not None else None), new_state


def compare_runs(run32: tuple, run64: tuple, params64: Any, mode: str) -> None:
    y32, dx32, grads32, alone32, state32 = run32
    y64, dx64, grads64, alone64, state64 = run64
    assert_agree(y32, y64, f"{mode}: forward output")
    assert_agree(dx32, dx64, f"{mode}: backward dE/dX")
    assert_trees_agree(grads32, grads64, f"{mode}: backward grads")
    assert tree_structure(grads64) == tree_structure(params64)
    if alone64 is not None and has_array_params(params64):
        assert_trees_agree(alone32, grads64, f"{mode}: param_grads")
        for a, b in zip(tree_leaves(alone64), tree_leaves(grads64), strict=True):
            assert a.dtype == np.float64
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    if state64 is not None:
        assert_trees_agree(state32, state64, f"{mode}: new state")


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_float32_agrees_with_float64(cls, data):
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assert type(layer) is cls
    x64 = np.asarray(x, dtype=np.float64)
    layer64, layer32 = with_dtype(layer, "float64"), with_dtype(layer, "float32")
    params64 = layer64.init(np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="init seed")))
    params32 = tree_map(lambda a: a.astype(np.float32), params64)
    assert all(a.dtype == np.float64 for a in tree_leaves(params64))
    stateful = getattr(layer, "stateful", False)
    if stateful:
        init64, init32 = layer64.init_state(), layer32.init_state()
        assert {a.dtype for a in tree_leaves(init64)} == {np.dtype(np.float64)}
        assert {a.dtype for a in tree_leaves(init32)} == {np.dtype(np.float32)}
        state64 = trained_state(layer64, params64, x64, seed=3)
        state32 = tree_map(lambda a: a.astype(np.float32), state64)

    y64 = apply_layer(layer64, params64, x64, state=init64 if stateful else {}, training=True)[0]
    dy64 = np.random.default_rng(1).standard_normal(y64.shape)
    x32, dy32 = x64.astype(np.float32), dy64.astype(np.float32)

    # evaluation mode (for Dropout: the identity; for BatchNorm: the trained running statistics)
    eval_state = {"state": state32, "training": False} if stateful else {}
    run32 = run(layer32, params32, x32, dy32, None, **eval_state)
    if stateful:
        eval_state["state"] = state64
    run64 = run(layer64, params64, x64, dy64, None, **eval_state)
    compare_runs(run32, run64, params64, "evaluation mode")

    if stateful:  # training mode, from each run's own initial state (a dropout inside is off)
        run32 = run(layer32, params32, x32, dy32, None, state=init32, training=True)
        run64 = run(layer64, params64, x64, dy64, None, state=init64, training=True)
        compare_runs(run32, run64, params64, "training mode")
        for init, new in ((init32, run32[4]), (init64, run64[4])):
            assert tree_structure(new) == tree_structure(init)
            for a, b in zip(tree_leaves(new), tree_leaves(init), strict=True):
                assert a.dtype == b.dtype, "the new state keeps the initial state's dtype"

    if isinstance(layer, Dropout):  # training mode: the documented mask, drawn in float32
        y32, dx32, _, _, _ = run(layer32, params32, x32, dy32, rng_seed=5)
        keep = np.random.default_rng(5).random(x32.shape, dtype=np.float32) >= layer.rate
        factor = keep / (1.0 - layer.rate)
        assert_agree(y32, x64 * factor, "dropout training output")
        assert_agree(dx32, dy64 * factor, "dropout training dE/dX")
    elif getattr(layer, "stochastic", False):  # a dropout's float32 mask is not float64's
        assert isinstance(layer, (Sequential, Residual, Parallel)), (
            f"add the training-mode rule of {cls.__name__} here")


def test_float32_cases_really_run_in_float32():
    """``with_dtype`` reaches every layer that has a dtype, nested ones included (in Sequential,
    Residual's block and projection, Parallel's branches): a float32 model holds float32 params
    and state only, so the agreement test above compares two different code paths."""
    from purenn.layers import Conv2D, Dense, Flatten, Identity, LayerNorm, Tanh

    f64 = {"dtype": "float64"}
    projection = Parallel([Dense(3, 2, **f64), Sequential([LayerNorm(3, **f64), Dense(3, 2, **f64)])])
    model = Sequential([
        Conv2D(1, 2, 3, **f64), Flatten(),
        Sequential([Dense(8, 3, **f64), Tanh()]),
        Residual(Sequential([BatchNorm(3, **f64), Dense(3, 4, **f64)]), projection=projection),
        Parallel([Identity(), Residual(BatchNorm(4, **f64))], merge="sum"),
    ])
    for dtype in ("float32", "float64", "float32"):
        converted = with_dtype(model, dtype)
        params, state = converted.init(np.random.default_rng(0)), converted.init_state()
        assert len(tree_leaves(params)) == 16 and len(tree_leaves(state)) == 4
        assert {a.dtype for a in tree_leaves(params) + tree_leaves(state)} == {np.dtype(dtype)}
        y, _, new_state = converted.forward(params, np.ones((2, 4, 4, 1)), state=state, training=True)
        assert y.shape == (2, 4) and y.dtype == dtype
        assert {a.dtype for a in tree_leaves(new_state)} == {np.dtype(dtype)}
