"""Optimizer.update_reusing_grads: fit's update, which may write the new params into the grads.

It must give update's numbers bit for bit, and reuse only an array that nothing else holds."""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn
from purenn.layers import Dense, Sequential, Tanh
from purenn.optim.base import FromTransformation
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


class _MyMomentum(pn.optim.base.Transformation):
    """A custom momentum that returns one tree as both its update and its state (allowed)."""

    def init(self, params):
        return pn.State(0, {"trace": pn.tree_map(np.zeros_like, params)})

    def update(self, updates, state, params):
        new = pn.tree_map(lambda t, u: 0.9 * t + u, state.slots["trace"], updates)
        return new, pn.State(state.step + 1, {"trace": new})


class _LoggedSGD(pn.SGD):
    """An optimizer whose own update must be the one fit calls."""

    def update(self, params, grads, state, *, lr_scale=1.0):
        calls.append(1)
        return super().update(params, grads, state, lr_scale=lr_scale)


calls: list = []


class _KeepsGrads:
    """A model (not a purenn layer) that keeps the last grads it returned, e.g. to log norms."""

    def __init__(self):
        self.inner = Dense(6, 3, dtype="float64")
        self.last = None

    def init(self, rng):
        return self.inner.init(rng)

    def forward(self, params, x):
        return self.inner.forward(params, x)

    def backward(self, params, cache, dy):
        dx, grads = self.inner.backward(params, cache, dy)
        self.last = grads
        return dx, grads


def _loop(model, params, opt, x, y, epochs=2, batch=8):
    p, state = params, opt.init(params)
    for _ in range(epochs):
        for s in range(0, len(x), batch):
            out, cache = model.forward(p, x[s : s + batch])
            _, dy = pn.softmax_cross_entropy(out, y[s : s + batch])
            p, state = opt.update(p, model.backward(p, cache, dy)[1], state)
    return p


def test_fit_leaves_alone_what_custom_pieces_may_share():
    x, y = RNG(1).standard_normal((40, 6)), RNG(2).integers(0, 3, 40)
    model = Sequential([Dense(6, 3, dtype="float64")])
    params = model.init(RNG(0))
    opt = FromTransformation(pn.chain(_MyMomentum(), pn.ScaleByLearningRate(0.1)))
    fitted, _ = pn.fit(model, params, x, y, loss=pn.softmax_cross_entropy, optimizer=opt, epochs=2,
                       batch_size=8, shuffle=False)
    for a, b in zip(pn.tree_leaves(fitted), pn.tree_leaves(_loop(model, params, opt, x, y)), strict=True):
        np.testing.assert_array_equal(a, b)

    keeper = _KeepsGrads()
    fitted, _ = pn.fit(keeper, keeper.init(RNG(0)), x, y, loss=pn.softmax_cross_entropy,
                       optimizer=pn.SGD(0.1), epochs=1, batch_size=8, shuffle=False)
    assert not np.shares_memory(keeper.last["w"], fitted["w"])  # the kept grads are still grads

    calls.clear()
    pn.fit(model, params, x, y, loss=pn.softmax_cross_entropy, optimizer=_LoggedSGD(0.1), epochs=1,
           batch_size=8, shuffle=False)
    assert len(calls) == 5  # the subclass's own update ran every step


@pytest.mark.parametrize("layout", ["F", "transposed"])
def test_adam_on_large_params_of_any_memory_layout(layout):
    """Arrays above the block size go block by block; a parameter that is not C-ordered (a
    transposed import, a Fortran-ordered array) must get the same numbers as its C copy."""
    w = RNG(0).standard_normal((300, 300)).astype(np.float32)
    odd = np.asfortranarray(w) if layout == "F" else np.ascontiguousarray(w.T).T
    g = RNG(1).standard_normal((300, 300)).astype(np.float32)
    opt = pn.Adam(1e-3)
    want, want_state = opt.update(({"w": w},), ({"w": g},), opt.init(({"w": w},)))
    got, got_state = opt.update(({"w": odd},), ({"w": g},), opt.init(({"w": odd},)))
    np.testing.assert_array_equal(got[0]["w"], want[0]["w"])
    np.testing.assert_array_equal(got_state[0].slots["mu"][0]["w"], want_state[0].slots["mu"][0]["w"])
    np.testing.assert_array_equal(got_state[0].slots["nu"][0]["w"], want_state[0].slots["nu"][0]["w"])
