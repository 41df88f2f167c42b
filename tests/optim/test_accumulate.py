"""Gradient accumulation (purenn.optim.accumulate.MultiSteps) against its definition: k calls make
one update of the inner transformation from the mean of their gradients, which with plain SGD is
one step on the k-times larger batch."""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.optim.accumulate import MultiSteps
from purenn.optim.base import State, as_optimizer, chain
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import StepDecay
from purenn.optim.transforms import ScaleByAdam, ScaleByLearningRate
from purenn.tree import freeze, tree_leaves

PARAMS = freeze({"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([-0.0, -0.75])})
GRADS = [{"w": np.array([[0.1, 0.2], [-0.3, 0.4]]), "b": np.array([1.0, -1.0])},
         {"w": np.array([[-0.5, 0.0], [0.2, 0.1]]), "b": np.array([0.3, 0.6])},
         {"w": np.array([[0.7, -0.1], [0.0, 0.25]]), "b": np.array([-0.2, 0.05])},
         {"w": np.array([[0.05, 0.3], [-0.6, 0.0]]), "b": np.array([0.9, -0.4])}]


def test_k_calls_make_one_update_from_the_mean_of_their_gradients():
    adam = chain(ScaleByAdam(), ScaleByLearningRate(0.1))
    acc = MultiSteps(adam, 2)
    state, ref_state = acc.init(PARAMS), adam.init(PARAMS)
    for i, g in enumerate(GRADS):
        u, state = acc.update(g, state, PARAMS)
        if i % 2 == 0:  # the first of a pair: nothing moves, the gradient is kept
            assert all(np.all(a == 0) and np.all(np.signbit(a)) for a in tree_leaves(u))
            for kept, given in zip(tree_leaves(state.slots["grad_sum"]), tree_leaves(g)):
                np.testing.assert_array_equal(kept, given)
        else:
            mean = {k: (GRADS[i - 1][k] + g[k]) / 2 for k in g}
            want, ref_state = adam.update(mean, ref_state, PARAMS)
            for a, b in zip(tree_leaves(u), tree_leaves(want), strict=True):
                assert a.tobytes() == b.tobytes()
            assert all(np.all(a == 0) for a in tree_leaves(state.slots["grad_sum"]))
        assert state.step == i + 1 and state.slots["inner"][0].step == (i + 1) // 2
        assert acc.made_update(state) == (i % 2 == 1)
    assert not acc.made_update(acc.init(PARAMS))


def _model_and_data():
    model = pn.Sequential([pn.Dense(6, 5, dtype="float64"), pn.Tanh(), pn.Dense(5, 3, dtype="float64")])
    rng = np.random.default_rng(3)
    return model, model.init(rng), rng.standard_normal((24, 6)), rng.integers(0, 3, 24)


def _grads(model, params, x, y):
    out, cache = model.forward(params, x)
    _, dy = pn.softmax_cross_entropy(out, y)
    return model.param_grads(params, cache, dy)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_multisteps_sgd_is_sgd_on_the_k_times_larger_batch(k):
    model, params, x, y = _model_and_data()
    micro, big = 2, 2 * k
    opt = as_optimizer(MultiSteps(SGD(0.3), k))
    p, state = params, opt.init(params)
    for s in range(0, 24, micro):
        p, state = opt.update(_grads(model, p, x[s : s + micro], y[s : s + micro]), state, p)
    q = params
    for s in range(0, 24, big):
        q = pn.sgd_step(q, _grads(model, q, x[s : s + big], y[s : s + big]), 0.3)
    for a, b in zip(tree_leaves(p), tree_leaves(q), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert state.step == 24 // micro and state.slots["inner"][0].step == 24 // big


def test_params_stay_bit_for_bit_between_updates():
    opt = as_optimizer(MultiSteps(SGD(0.1, momentum=0.9), 3))
    p, state = opt.update(GRADS[0], opt.init(PARAMS), PARAMS)
    p, state = opt.update(GRADS[1], state, p, lr_scale=0.5)
    for a, b in zip(tree_leaves(p), tree_leaves(PARAMS)):
        assert a.tobytes() == b.tobytes()  # -0.0 included
    p, state = opt.update(GRADS[2], state, p)
    assert not np.array_equal(p["w"], PARAMS["w"])


def test_a_schedule_inside_goes_by_updates_not_micro_batches():
    opt = as_optimizer(MultiSteps(SGD(StepDecay(0.1, step_size=1, gamma=0.5)), 2))
    one = {"x": np.ones(1)}
    p, state = {"x": np.zeros(1)}, opt.init({"x": np.zeros(1)})
    moves = []
    for _ in range(6):
        new, state = opt.update(one, state, p)
        moves.append(float(p["x"][0] - new["x"][0]))
        p = new
    np.testing.assert_allclose(moves, [0.0, 0.1, 0.0, 0.05, 0.0, 0.025], rtol=1e-14, atol=0)


def test_its_state_is_plain_data():
    acc = MultiSteps(SGD(0.1, momentum=0.5), 2)
    _, state = acc.update(GRADS[0], acc.init(PARAMS), PARAMS)
    assert type(state) is State and set(state.slots) == {"grad_sum", "inner"}
    assert all(type(a) is np.ndarray and not a.flags.writeable for a in tree_leaves(state.slots["grad_sum"]))
    assert type(state.slots["inner"]) is tuple and all(type(s) is State for s in state.slots["inner"])


@pytest.mark.parametrize("make, error, message", [
    (lambda: MultiSteps(SGD(0.1), 0), ArgumentError, r"`every_k` must be a positive integer, got 0"),
    (lambda: MultiSteps(SGD(0.1), 2.5), ArgumentTypeError, r"`every_k` must be a positive integer, got 2.5"),
    (lambda: MultiSteps(pn.sgd_step, 2), ArgumentTypeError, r"`inner` must be a transformation"),
    (lambda: MultiSteps(SGD(0.1), 2).update(GRADS[0], SGD(0.1).init(PARAMS), PARAMS), ArgumentTypeError,
     r"MultiSteps\(.*\)\.update needs the state made by its own init\(params\), got tuple"),
])
def test_bad_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()
