"""Donated memory (purenn.optim.base): fit writes the new params into the step's own update
arrays only when the model declares fresh grads and every transformation fresh updates; the
numbers are those of the pure path, bit for bit, and nothing that someone else holds is written.
Every optimizer and transformation of the registry (tests/registry_optim.py) is checked."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

import purenn as pn
from purenn.layers import Dense, Sequential, Tanh
from purenn.optim.base import FromTransformation, Transformation, as_optimizer, chain
from purenn.tree import readonly, tree_leaves

from registry_optim import OPTIMIZERS, TRANSFORMATIONS

RNG = np.random.default_rng
# every optimizer of the registry, and every transformation as one (tests/registry_optim.py)
EXAMPLES = [pytest.param(as_optimizer(record), id=f"{cls.__name__}-{i}")
            for registry in (OPTIMIZERS, TRANSFORMATIONS)
            for cls, entry in registry.items() for i, record in enumerate(entry.examples)]


def _params():
    return ({"w": readonly(np.ones((3, 2), np.float32)), "b": readonly(np.zeros(2, np.float32))}, {})


def _fresh_grads():
    return ({"w": np.full((3, 2), 2.0, np.float32), "b": np.full(2, 4.0, np.float32)}, {})


def _open(state):
    """A state with every State record opened into (step, slots), to compare as a tree."""
    if isinstance(state, pn.State):
        return (np.asarray(state.step), {k: _open(v) for k, v in state.slots.items()})
    if isinstance(state, (tuple, list)):
        return [_open(v) for v in state]
    return state


def _arrays(params, opt_state):
    return tree_leaves(params) + [np.asarray(a) for a in tree_leaves(_open(opt_state))]


@pytest.mark.parametrize("opt", EXAMPLES)
def test_donated_steps_give_the_pure_numbers(opt):
    params, state = _params(), opt.init(_params())
    want, want_state = opt.update(_fresh_grads(), state, params)
    got, got_state = opt.update(_fresh_grads(), state, params, donate=True)
    for _ in range(2):  # and again from the states each made
        want, want_state = opt.update(_fresh_grads(), want_state, want)
        got, got_state = opt.update(_fresh_grads(), got_state, got, donate=True)
    for a, b in zip(_arrays(want, want_state), _arrays(got, got_state), strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.signbit(a).tolist() == np.signbit(b).tolist()
    assert all(not a.flags.writeable for a in tree_leaves(got))
    assert np.all(params[0]["w"] == 1)  # the params given are untouched


def test_donated_updates_hold_the_new_params():
    """A transformation that passes its input through (clipping below its bound) hands the
    donated grads themselves to apply_updates, which writes the params into them."""
    opt = FromTransformation(pn.ClipByGlobalNorm(1e9))
    grads = _fresh_grads()
    new, _ = opt.update(grads, opt.init(_params()), _params(), donate=True)
    assert new[0]["w"] is grads[0]["w"] and new[0]["b"] is grads[0]["b"]
    np.testing.assert_array_equal(new[0]["w"], np.full((3, 2), 3.0))
    fresh, _ = opt.update(_fresh_grads(), opt.init(_params()), _params())  # not donated
    assert not np.shares_memory(fresh[0]["w"], grads[0]["w"])


def test_an_update_that_is_also_state_is_never_written():
    """Momentum without Nesterov returns its trace as the update: not fresh, so not written."""
    trace = pn.Trace(0.9)
    assert not trace.fresh_updates and pn.Trace(0.9, nesterov=True).fresh_updates
    opt = FromTransformation(trace)
    new, state = opt.update(_fresh_grads(), opt.init(_params()), _params(), donate=True)
    np.testing.assert_array_equal(state.slots["trace"][0]["w"], np.full((3, 2), 2.0))  # not 3.0
    assert not np.shares_memory(new[0]["w"], state.slots["trace"][0]["w"])


@attrs.frozen
class _Remember(Transformation):
    """A custom transformation that returns one tree as both its update and its state (allowed;
    it does not declare fresh updates)."""

    def init(self, params):
        return pn.State(0, {"last": pn.tree_map(np.zeros_like, params)})

    def update(self, updates, state, params):
        new = pn.tree_map(lambda u: np.asarray(u) * 1.0, updates)
        return new, pn.State(state.step + 1, {"last": new})


def test_a_custom_transformation_is_never_written_unless_it_says_so():
    opt = as_optimizer(chain(_Remember(), pn.ScaleByLearningRate(1.0)))
    assert not opt.fresh_updates
    _, (kept, _) = opt.update(_fresh_grads(), opt.init(_params()), _params(), donate=True)
    np.testing.assert_array_equal(kept.slots["last"][0]["w"], np.full((3, 2), 2.0))
    alone = FromTransformation(_Remember())
    _, kept = alone.update(_fresh_grads(), alone.init(_params()), _params(), donate=True)
    np.testing.assert_array_equal(kept.slots["last"][0]["w"], np.full((3, 2), 2.0))


class _KeepsGrads:
    """A model (not a purenn layer: no fresh_grads) that keeps the last grads it returned."""

    def __init__(self):
        self.inner = Dense(6, 3, dtype="float64")
        self.last = None

    def init(self, rng):
        return self.inner.init(rng)

    def forward(self, params, x):
        return self.inner.forward(params, x)

    def backward(self, params, cache, dy):
        dx, grads = self.inner.backward(params, cache, dy)
        self.last = {k: v for k, v in grads.items()}
        return dx, grads


def _data():
    return RNG(1).standard_normal((40, 6)), RNG(2).integers(0, 3, 40)


def test_fit_donates_only_when_the_model_declares_fresh_grads():
    x, y = _data()
    keeper = _KeepsGrads()
    opt = FromTransformation(pn.ClipByGlobalNorm(1e9))  # passes the grads themselves through
    fitted, _ = pn.fit(keeper, keeper.init(RNG(0)), x, y, loss=pn.softmax_cross_entropy,
                       optimizer=opt, epochs=1, batch_size=8, shuffle=False)
    assert not np.shares_memory(keeper.last["w"], fitted["w"])  # the kept grads are still grads

    assert Sequential([Dense(6, 3), Tanh()]).fresh_grads and not pn.Residual(_Layer()).fresh_grads


@attrs.frozen
class _Layer(pn.Layer):
    def forward(self, params, x):
        return x, None

    def backward(self, params, cache, dy):
        return dy, {}


@pytest.mark.parametrize("opt", EXAMPLES)
def test_fit_matches_a_loop_of_pure_updates(opt):
    model = Sequential([Dense(6, 5, dtype="float64"), Tanh(), Dense(5, 3, dtype="float64")])
    params = model.init(RNG(0))
    x, y = _data()
    fitted, _ = pn.fit(model, params, x, y, loss=pn.softmax_cross_entropy, optimizer=opt, epochs=2,
                       batch_size=8, shuffle=False)
    p, state = params, opt.init(params)
    for _ in range(2):
        for s in range(0, 40, 8):
            out, cache = model.forward(p, x[s : s + 8])
            _, dy = pn.softmax_cross_entropy(out, y[s : s + 8])
            p, state = opt.update(model.param_grads(p, cache, dy), state, p)
    for a, b in zip(tree_leaves(fitted), tree_leaves(p), strict=True):
        np.testing.assert_array_equal(a, b)


calls: list = []


class _LoggedSGD(pn.SGD):
    """An optimizer whose own update must be the one fit calls."""

    def update(self, grads, state, params, **kwargs):
        calls.append(kwargs.get("donate"))
        return super().update(grads, state, params, **kwargs)


def test_fit_calls_the_optimizers_own_update_by_keyword():
    x, y = _data()
    model = Sequential([Dense(6, 3, dtype="float64")])
    calls.clear()
    pn.fit(model, model.init(RNG(0)), x, y, loss=pn.softmax_cross_entropy, optimizer=_LoggedSGD(0.1),
           epochs=1, batch_size=8, shuffle=False)
    assert calls == [True] * 5  # the subclass's update, every step, with the grads donated


class _OldOrder:
    """An optimizer written for another argument order, with other names: refused up front."""

    def init(self, params):
        return ()

    def update(self, p, g, s):  # pragma: no cover - never called
        return p, s


def test_an_optimizer_fit_cannot_call_by_keyword_is_refused():
    x, y = _data()
    model = Dense(6, 3)
    with pytest.raises(pn.ArgumentTypeError, match=r"_OldOrder.update\(p, g, s\) cannot be called as "
                                                   r"update\(grads=..., state=..., params=...\)"):
        pn.fit(model, model.init(RNG(0)), x, y, optimizer=_OldOrder())
