"""Optimizer.update_reusing_grads: fit's update, which may write the new params into the grads.

It must give update's numbers bit for bit, and reuse only an array that nothing else holds."""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn
from purenn.layers import Dense, Sequential, Tanh
from purenn.tree import readonly

RNG = np.random.default_rng


def _arrays(params, opt_state):
    """Every array of params and an optimizer's state (a tuple of State records), in order."""
    slots = [(s.step, s.slots) for s in opt_state]
    return pn.tree.tree_leaves(params) + [np.asarray(a) for a in pn.tree.tree_leaves(slots)]


def _params():
    return ({"w": readonly(np.ones((3, 2), np.float32)), "b": readonly(np.zeros(2, np.float32))}, {})


def _fresh_grads():
    return ({"w": np.full((3, 2), 2.0, np.float32), "b": np.full(2, 4.0, np.float32)}, {})


@pytest.mark.parametrize("opt", [pn.SGD(0.5), pn.SGD(0.1, momentum=0.9), pn.Adam(1e-2), pn.AdamW(1e-2)],
                         ids=["sgd", "momentum", "adam", "adamw"])
def test_same_numbers_as_update(opt):
    params, state = _params(), opt.init(_params())
    want, want_state = opt.update(params, _fresh_grads(), state)
    got, got_state = opt.update_reusing_grads(params, _fresh_grads(), state)
    for a, b in zip(_arrays(want, want_state), _arrays(got, got_state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(not a.flags.writeable for a in pn.tree.tree_leaves(got))
    assert np.all(params[0]["w"] == 1)  # the params are untouched


def test_plain_descent_writes_into_grads_nobody_else_holds():
    opt = pn.SGD(0.5)
    grads = _fresh_grads()
    ids = {id(grads[0]["w"]), id(grads[0]["b"])}
    new, _ = opt.update_reusing_grads(_params(), grads, opt.init(_params()))
    assert {id(new[0]["w"]), id(new[0]["b"])} == ids  # reused: no fresh arrays
    np.testing.assert_array_equal(new[0]["w"], np.zeros((3, 2)))  # 1 - 0.5 * 2


def test_arrays_held_elsewhere_are_never_overwritten():
    opt = pn.SGD(0.5)
    shared = np.full((3, 2), 2.0, np.float32)
    kept = np.full(2, 4.0, np.float32)
    base = np.full((2, 2), 4.0, np.float32)
    cases = [
        ({"w": shared, "b": kept}, {}),                          # both held by this test too
        ({"w": np.full((3, 2), 2.0, np.float32), "b": base[0]}, {}),  # a view of another array
    ]
    for grads in cases:
        new, _ = opt.update_reusing_grads(_params(), grads, opt.init(_params()))
        np.testing.assert_array_equal(new[0]["w"], np.zeros((3, 2)))
        np.testing.assert_array_equal(new[0]["b"], np.full(2, -2.0))
    assert np.all(shared == 2) and np.all(kept == 4) and np.all(base == 4)


def test_one_array_given_for_two_params_is_used_for_both():
    """A pure layer may return the same array as the gradient of two params."""
    opt = pn.SGD(0.5)
    params = ({"a": readonly(np.ones(2, np.float32)), "b": readonly(np.full(2, 3.0, np.float32))},)
    g = np.full(2, 2.0, np.float32)
    grads = ({"a": g, "b": g},)
    del g
    new, _ = opt.update_reusing_grads(params, grads, opt.init(params))
    np.testing.assert_array_equal(new[0]["a"], np.zeros(2))
    np.testing.assert_array_equal(new[0]["b"], np.full(2, 2.0))


def test_fit_matches_a_loop_of_update():
    model = Sequential([Dense(6, 5, dtype="float64"), Tanh(), Dense(5, 3, dtype="float64")])
    params = model.init(RNG(0))
    x, y = RNG(1).standard_normal((40, 6)), RNG(2).integers(0, 3, 40)
    opt = pn.SGD(0.1)
    fitted, _ = pn.fit(model, params, x, y, loss=pn.softmax_cross_entropy, optimizer=opt, epochs=2,
                       batch_size=8, shuffle=False)
    p, state = params, opt.init(params)
    for _ in range(2):
        for s in range(0, 40, 8):
            out, cache = model.forward(p, x[s : s + 8])
            _, dy = pn.softmax_cross_entropy(out, y[s : s + 8])
            p, state = opt.update(p, model.param_grads(p, cache, dy), state)
    for a, b in zip(pn.tree.tree_leaves(fitted), pn.tree.tree_leaves(p)):
        np.testing.assert_array_equal(a, b)
