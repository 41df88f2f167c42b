"""Weight averaging (purenn.optim.averaging.EMA): every example of the registry (``AVERAGES``,
tests/registry_optim.py) against its rule, then against its definition on fixed numbers, its
warm-up (TensorFlow's min(decay, (1 + t) / (10 + t))), purity and plain-data state."""

from __future__ import annotations

import json

import numpy as np
import pytest

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.io.serialize import from_data, to_data
from purenn.optim.averaging import EMA
from purenn.optim.base import State
from purenn.tree import freeze, tree_leaves

from registry_optim import AVERAGES

P0 = freeze({"w": np.array([[1.0, -2.0]]), "b": np.array([0.5])})
PATH = [{"w": np.array([[2.0, 0.0]]), "b": np.array([1.0])},
        {"w": np.array([[0.5, 1.0]]), "b": np.array([-1.0])},
        {"w": np.array([[-1.0, 4.0]]), "b": np.array([0.25])}]


@pytest.mark.parametrize("avg, rule", [pytest.param(avg, entry.rule, id=f"{cls.__name__}-{i}")
                                       for cls, entry in AVERAGES.items() for i, avg in enumerate(entry.examples)])
def test_every_average_follows_its_rule(avg, rule):
    params = [np.random.default_rng(k).standard_normal(4) for k in range(40)]
    state, got = avg.init({"p": params[0]}), []
    for p in params[1:]:
        state = avg.update(state, {"p": p})
        got.append(avg.averaged(state)["p"])
    np.testing.assert_allclose(got, rule(avg, params), rtol=1e-12, atol=1e-14)


def _average(ema, path=PATH, start=P0):
    state = ema.init(start)
    for p in path:
        state = ema.update(state, p)
    return ema.averaged(state), state


def test_ema_is_the_running_average_by_hand():
    averaged, state = _average(EMA(0.9))
    # a1 = 0.9 a0 + 0.1 p1, ... worked by hand
    np.testing.assert_allclose(averaged["w"], [[0.836, -0.968]], rtol=1e-15)   # [1.1,-1.8] [1.04,-1.52]
    np.testing.assert_allclose(averaged["b"], [0.3805], rtol=1e-15)            # 0.55, 0.395
    assert state.step == 3


def test_ema_warm_up_is_tensorflows():
    ema = EMA(0.9, warmup=True)
    decays = [min(0.9, (1 + t) / (10 + t)) for t in (1, 2, 3)]  # t counts the updates, from 1
    assert [ema.decay_at(s) for s in (0, 1, 2)] == decays == [2 / 11, 3 / 12, 4 / 13]
    a = {k: v.copy() for k, v in P0.items()}
    for d, p in zip(decays, PATH):
        a = {k: d * a[k] + (1 - d) * p[k] for k in a}
    averaged, _ = _average(ema)
    for k in a:
        np.testing.assert_allclose(averaged[k], a[k], rtol=1e-14)
    assert EMA(0.999, warmup=True).decay_at(10**6) == 0.999 and EMA(0.2, warmup=True).decay_at(1) == 0.2


def test_ema_of_a_constant_is_that_constant_and_decay_zero_follows_the_params():
    averaged, _ = _average(EMA(0.999), [P0] * 5)
    for a, b in zip(tree_leaves(averaged), tree_leaves(P0)):
        assert a.tobytes() == b.tobytes()
    averaged, _ = _average(EMA(0.0))
    for a, b in zip(tree_leaves(averaged), tree_leaves(PATH[-1])):
        assert a.tobytes() == b.tobytes()


def test_ema_is_pure_keeps_dtypes_and_returns_readonly_arrays():
    start = freeze({"w": np.ones((2, 3), np.float32)})
    ema = EMA(0.5)
    state = ema.init(start)
    assert state == State(0, {"average": start}) and state.slots["average"]["w"] is start["w"]
    new = ema.update(state, {"w": np.zeros((2, 3), np.float32)})
    again = ema.update(state, {"w": np.zeros((2, 3), np.float32).tolist()})  # the old state still works
    assert new.slots["average"]["w"].dtype == np.float32 and np.all(new.slots["average"]["w"] == 0.5)
    np.testing.assert_array_equal(again.slots["average"]["w"], new.slots["average"]["w"])
    assert np.all(start["w"] == 1) and not new.slots["average"]["w"].flags.writeable
    writable = {"w": np.ones(2)}
    copied = ema.init(writable).slots["average"]["w"]
    assert copied is not writable["w"] and not copied.flags.writeable


@pytest.mark.parametrize("make, error, message", [
    (lambda: EMA(1.0), ArgumentError, r"`decay` must be a real number in \[0, 1\), got 1.0"),
    (lambda: EMA(-0.1), ArgumentError, r"`decay` must be a real number in \[0, 1\)"),
    (lambda: EMA(0.9, warmup=1), ArgumentTypeError, r"`warmup` must be True or False, got 1"),
    (lambda: EMA(0.9).update(pn.Adam().init(P0), P0), ArgumentTypeError,
     r"EMA\(decay=0.9, warmup=False\): the state must be the State its init\(params\) made, got tuple"),
    (lambda: EMA(0.9).averaged(State(0)), ArgumentTypeError, r"got State with slots \[\]"),
    (lambda: EMA(0.9).update(EMA(0.9).init(P0), {"w": np.zeros((2, 1)), "b": np.zeros(1)}), ShapeError,
     r"EMA\(decay=0.9, warmup=False\).update: a params array of shape \(2, 1\) where the average has shape \(1, 2\)"),
    (lambda: EMA(0.9).update(EMA(0.9).init(P0), {"w": np.zeros((1, 2))}), ArgumentError, "tree structures differ"),
])
def test_bad_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_ema_round_trips_as_data_given_its_class():
    for ema in (EMA(0.999), EMA(0.5, warmup=True)):
        assert from_data(json.loads(json.dumps(to_data(ema))), custom=[EMA]) == ema
