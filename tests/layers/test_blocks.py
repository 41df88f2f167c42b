"""Identity, Residual and Parallel, and state through every container (Sequential included).

Gradients against finite differences are checked by the layer registry (tests/test_gradients.py,
``CONTAINER_TEMPLATES``); here: what the containers compute, how they thread params, state, mode
and random streams through their children, the errors for a call without state or mode (or with
state to a container that has none), ``output_shape``, ``apply_layer``, and dropout inside a
stateful model.
"""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.layers import (
    BatchNorm, Conv2D, Dense, Dropout, Flatten, Identity, LayerNorm, Parallel, ReLU, Residual,
    Sequential, Tanh, apply_layer,
)
from purenn.tree import tree_leaves, tree_map, tree_structure

RNG = np.random.default_rng
X = RNG(0).standard_normal((6, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]


def leaves_equal(a, b) -> bool:
    return tree_structure(a) == tree_structure(b) and all(
        np.array_equal(u, v) for u, v in zip(tree_leaves(a), tree_leaves(b)))


def stateful_models():
    return {
        "Sequential": Sequential([Dense(3, 3), BatchNorm(3)]),
        "Residual": Residual(BatchNorm(3)),
        "Residual[projection]": Residual(Dense(3, 2), projection=Sequential([Dense(3, 2), BatchNorm(2)])),
        "Parallel": Parallel([Identity(), BatchNorm(3)]),
        "deep": Sequential([Residual(Sequential([Parallel([Tanh(), BatchNorm(3)], merge="sum")]))]),
    }


STATEFUL = stateful_models()


# ---------------------------------------------------------------- state and mode, explicitly


@pytest.mark.parametrize("name", list(STATEFUL))
def test_stateful_containers_refuse_a_call_without_state_or_mode(name):
    model = STATEFUL[name]
    assert model.stateful
    params, state = model.init(RNG(0)), model.init_state()
    head = type(model).__name__
    for kwargs, missing in [({}, "state and training"), ({"training": True}, "state"),
                            ({"training": False}, "state"), ({"state": state}, "training")]:
        with pytest.raises(ArgumentError, match=rf"^{head}\(.* carries state .*called without {missing}: "
                                                r".*init_state\(\)"):
            model.forward(params, X, **kwargs)
    with pytest.raises(ArgumentTypeError, match="`training` must be True or False"):
        model.forward(params, X, state=state, training=1)


@pytest.mark.parametrize("model", [
    Sequential([Dense(3, 3), Tanh()]), Residual(Dense(3, 3)), Parallel([Identity(), Dropout(0.5)]),
    Residual(Parallel([Dense(3, 3), LayerNorm(3)], merge="sum")),
], ids=lambda m: type(m).__name__)
def test_containers_without_state_refuse_state_with_a_clear_error(model):
    assert not model.stateful
    params = model.init(RNG(0))
    for kwargs in [{"state": model.init_state(), "training": True}, {"state": model.init_state()},
                   {"training": False}]:
        with pytest.raises(ArgumentError, match=rf"^{type(model).__name__} .*has no layer with state: "
                                                r"call forward\(params, x\)"):
            model.forward(params, X, **kwargs)
    y, _ = model.forward(params, X)  # the two-argument call works
    assert y.shape[0] == len(X)


def test_init_state_and_state_shapes_have_one_entry_per_child():
    bn = {"mean": np.zeros(3), "var": np.ones(3)}

    def same(state, want):
        assert tree_structure(state) == tree_structure(want)
        for a, b in zip(tree_leaves(state), tree_leaves(want)):
            np.testing.assert_array_equal(a, b)

    same(Sequential([Dense(3, 3), BatchNorm(3), Tanh()]).init_state(), ({}, bn, {}))
    same(Residual(BatchNorm(3)).init_state(), {"block": bn, "projection": {}})
    same(Residual(Dense(3, 3), projection=BatchNorm(3)).init_state(), {"block": {}, "projection": bn})
    same(Parallel([Identity(), BatchNorm(3), Sequential([Tanh(), BatchNorm(3)])]).init_state(),
         ({}, bn, ({}, bn)))
    same(Residual(Dense(3, 3)).init_state(), {"block": {}, "projection": {}})
    same(Parallel([Identity(), Dense(3, 2)]).init_state(), ({}, {}))
    for model in [*STATEFUL.values(), Residual(Dense(3, 3)), Parallel([Identity(), Dense(3, 2)])]:
        described = tree_map(lambda a: (a.shape, a.dtype.name), model.init_state())
        assert model.state_shapes() == described
        params = model.init(RNG(0))
        assert model.param_shapes() == tree_map(lambda a: (a.shape, a.dtype.name), params)
        assert all(not a.flags.writeable for a in tree_leaves(params) + tree_leaves(model.init_state()))


def test_stateful_and_stochastic_follow_the_children():
    assert not Residual(Dense(3, 3)).stateful and not Parallel([Identity()]).stochastic
    both = Residual(Sequential([BatchNorm(3), Dropout(0.5)]))
    assert both.stateful and both.stochastic
    assert Parallel([Identity(), Residual(BatchNorm(3))]).stateful
    assert Parallel([Identity(), Residual(Dropout(0.1))]).stochastic
    assert not Parallel([Identity(), Residual(Dropout(0.1))]).stateful
    assert Residual(Dense(3, 3), projection=BatchNorm(3)).stateful


def _model_with_every_container():
    return Sequential([
        BatchNorm(3), Dense(3, 3),
        Residual(BatchNorm(3), projection=BatchNorm(3, momentum=0.5)),
        Parallel([BatchNorm(3, momentum=0.9), Identity()], merge="sum"),
    ])


def test_a_training_step_threads_every_childs_state():
    """Each BatchNorm's new state is the one it gives alone on the input it actually sees."""
    model = _model_with_every_container()
    params = tree_map(lambda a: a + 0.3, model.init(RNG(1)))  # scales and shifts away from 1 and 0
    state = model.init_state()
    y, _, new = model.forward(params, X, state=state, training=True)

    def alone(layer, p, x):
        out, _, s = layer.forward(p, x, state=layer.init_state(), training=True)
        return out, s

    bn0, res, par = model.layers[0], model.layers[2], model.layers[3]
    h0, s0 = alone(bn0, params[0], X)
    h1, _ = model.layers[1].forward(params[1], h0)
    hb, sb = alone(res.block, params[2]["block"], h1)
    hp, sp = alone(res.projection, params[2]["projection"], h1)
    h2 = hb + hp
    hq, sq = alone(par.branches[0], params[3][0], h2)
    want = ({"mean": s0["mean"], "var": s0["var"]}, {}, {"block": sb, "projection": sp}, (sq, {}))
    assert leaves_equal(new, want)
    np.testing.assert_allclose(y, hq + h2, rtol=1e-6)
    # the momenta differ, so a state handed to the wrong child would show
    assert not np.allclose(sb["var"], sp["var"])


@pytest.mark.parametrize("name", ["threaded", *STATEFUL])
def test_a_step_returns_a_new_read_only_state_and_the_old_one_stays_valid(name):
    model = STATEFUL.get(name) or _model_with_every_container()
    params = model.init(RNG(2))
    old = model.init_state()
    kept = tree_map(np.copy, old)
    y1, _, new = model.forward(params, X, state=old, training=True)
    assert leaves_equal(old, kept)  # untouched
    assert not leaves_equal(new, kept)  # and the step moved it
    assert tree_structure(new) == tree_structure(old)
    for a in tree_leaves(new):
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0.0
    y2, _, again = model.forward(params, X, state=old, training=True)
    np.testing.assert_array_equal(y2, y1)
    assert leaves_equal(again, new)
    # evaluation: the state comes back unchanged, and old and new states give different outputs
    e_old, _, same = model.forward(params, X, state=old, training=False)
    e_new, _, _ = model.forward(params, X, state=new, training=False)
    assert leaves_equal(same, kept)
    assert not np.allclose(e_old, e_new)


@pytest.mark.parametrize("name", list(STATEFUL))
def test_evaluation_mode_treats_each_sample_on_its_own(name):
    model = STATEFUL[name]
    params = model.init(RNG(3))
    _, _, state = model.forward(params, X, state=model.init_state(), training=True)
    y, _, _ = model.forward(params, X, state=state, training=False)
    for i in range(len(X)):
        one, _, _ = model.forward(params, X[i : i + 1], state=state, training=False)
        np.testing.assert_allclose(one[0], y[i], rtol=1e-6, atol=1e-7)
    # in training the other samples matter
    t1, _, _ = model.forward(params, X[:2], state=state, training=True)
    t2, _, _ = model.forward(params, np.concatenate([X[:1], 5 * X[1:]]), state=state, training=True)
    assert not np.allclose(t1[0], t2[0])


def test_stateful_container_refuses_state_of_the_wrong_structure():
    model = Parallel([Identity(), BatchNorm(3)])
    with pytest.raises(ValueError, match=r"Parallel of 2 branches needs state with one entry per branch, "
                                         r"got 1 entries; create them with model.init_state\(\)"):
        model.forward(model.init(RNG(0)), X, state=({},), training=True)
    res = Residual(BatchNorm(3))
    with pytest.raises(ValueError, match=r"Residual needs state as a dict with 'block' and 'projection'"):
        res.forward(res.init(RNG(0)), X, state=(res.init_state(),), training=True)
    with pytest.raises(ValueError, match=r"Residual needs params as a dict .* got keys \['block'\]; "
                                         r"create them with model.init\(rng\)"):
        Residual(Dense(3, 3)).forward({"block": {}}, X)


# ---------------------------------------------------------------- what they compute


def test_identity_passes_its_input_and_its_gradient_through():
    y, cache = Identity().forward({}, X)
    np.testing.assert_array_equal(y, X)
    dy = RNG(1).standard_normal(X.shape)
    dx, grads = Identity().backward({}, cache, dy)
    np.testing.assert_array_equal(dx, dy)
    assert grads == {} and Identity().init(RNG(0)) == {}
    assert Identity().forward({}, np.array([[1, 2]]))[0].dtype == np.float32  # integers become floats
    assert Identity().output_shape((4, 2, 5)) == (4, 2, 5)


def test_residual_adds_the_shortcut_and_parallel_merges_as_documented():
    block, proj = Sequential([Dense(3, 4), Tanh(), Dense(4, 3)]), Dense(3, 3, use_bias=False)
    a, b = Dense(3, 2), Sequential([Dense(3, 5), Tanh()])
    rp = {"block": block.init(RNG(1)), "projection": {}}
    np.testing.assert_allclose(Residual(block).forward(rp, X)[0], X + block.forward(rp["block"], X)[0])
    rp["projection"] = proj.init(RNG(2))
    np.testing.assert_allclose(Residual(block, projection=proj).forward(rp, X)[0],
                               proj.forward(rp["projection"], X)[0] + block.forward(rp["block"], X)[0])
    pp = (a.init(RNG(3)), b.init(RNG(4)))
    ya, yb = a.forward(pp[0], X)[0], b.forward(pp[1], X)[0]
    y, _ = Parallel([a, b]).forward(pp, X)
    np.testing.assert_array_equal(y, np.concatenate([ya, yb], axis=-1))
    pp2 = (pp[0], Dense(3, 2).init(RNG(5)), Dense(3, 2).init(RNG(6)))
    outs = [Dense(3, 2).forward(p, X)[0] for p in pp2]
    y, _ = Parallel([a, Dense(3, 2), Dense(3, 2)], merge="sum").forward(pp2, X)
    np.testing.assert_allclose(y, outs[0] + outs[1] + outs[2], rtol=1e-6)
    single = Parallel([Tanh()], merge="sum")
    y, _ = single.forward(({},), X)
    np.testing.assert_allclose(y, np.tanh(X), rtol=1e-6)
    assert not np.shares_memory(y, X)


def test_parallel_sum_keeps_the_widest_dtype_of_its_branches():
    """As concat does (np.concatenate promotes): a float64 branch is not rounded to float32 because
    the first two branches are float32."""
    branches = [Dense(3, 2), Dense(3, 2), Dense(3, 2, dtype="float64")]
    for merge in ("sum", "concat"):
        model = Parallel(branches, merge=merge)
        params = model.init(RNG(0))
        y, _ = model.forward(params, X)
        assert y.dtype == np.float64, merge
    outs = [b.forward(p, X)[0].astype(np.float64) for b, p in zip(branches, params)]
    np.testing.assert_array_equal(Parallel(branches, merge="sum").forward(params, X)[0],
                                  outs[0] + outs[1] + outs[2])


def test_children_get_their_own_init_streams_and_dropout_branches_their_own_masks():
    res = Residual(Dense(3, 3), projection=Dense(3, 3))
    p = res.init(RNG(0))
    assert not np.array_equal(p["block"]["w"], p["projection"]["w"])
    par = Parallel([Dense(3, 3), Dense(3, 3)])
    q = par.init(RNG(0))
    assert not np.array_equal(q[0]["w"], q[1]["w"])
    drops = Parallel([Dropout(0.5), Dropout(0.5)])
    y, _ = drops.forward(({}, {}), np.ones((4, 50)), rng=RNG(7))
    left, right = y[:, :50] == 0, y[:, 50:] == 0
    assert left.any() and right.any() and not np.array_equal(left, right)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("model, shape, want", [
    (Residual(Dense(3, 3)), (5, 3), (5, 3)),
    (Residual(Dense(3, 4), projection=Dense(3, 4)), (5, 3), (5, 4)),
    (Residual(Sequential([BatchNorm(3), Conv2D(3, 3, 3, padding="same")])), (2, 6, 6, 3), (2, 6, 6, 3)),
    (Residual(Conv2D(2, 4, 3, stride=2, padding="same"), projection=Conv2D(2, 4, 1, stride=2)),
     (2, 6, 6, 2), (2, 3, 3, 4)),
    (Parallel([Dense(3, 2), Identity(), Dense(3, 4)]), (5, 3), (5, 9)),
    (Parallel([Dense(3, 2), Dense(3, 2)], merge="sum"), (5, 3), (5, 2)),
    (Parallel([Conv2D(2, 3, 1), Sequential([Conv2D(2, 5, 3, padding="same"), BatchNorm(5)])]),
     (2, 4, 4, 2), (2, 4, 4, 8)),
    (Sequential([Parallel([Identity(), Residual(Dense(3, 3))]), LayerNorm(6), Dense(6, 1)]), (5, 3), (5, 1)),
    (Sequential([Conv2D(1, 2, 3), Flatten(), Dense(8, 3), BatchNorm(3), ReLU()]), (4, 4, 4, 1), (4, 3)),
], ids=["residual", "residual-projection", "residual-conv", "residual-conv-stride", "parallel-concat",
        "parallel-sum", "parallel-conv", "sequential-of-containers", "sequential-conv-batchnorm"])
def test_output_shape_is_the_shape_forward_gives(model, shape, want):
    assert model.output_shape(shape) == want
    params = model.init(RNG(0))
    x = RNG(1).standard_normal(shape)
    y = apply_layer(model, params, x, state=model.init_state(), training=True)[0]
    assert y.shape == want


@pytest.mark.parametrize("model, shape, match", [
    (Residual(Dense(3, 1)), (5, 3),
     (r"^Residual: the block gives shape \(5, 1\) but the input \(identity shortcut\) has shape \(5, 3\); "
      r"they are added, so they must match \(give projection=.*\)$")),
    (Residual(Dense(3, 4), projection=Dense(3, 5)), (5, 3),
     r"^Residual: the block gives shape \(5, 4\) but the projection has shape \(5, 5\)"),
    (Residual(Conv2D(2, 2, 3), projection=Identity()), (1, 5, 5, 2),
     r"the block gives shape \(1, 3, 3, 2\) but the projection has shape \(1, 5, 5, 2\)"),
    (Parallel([Dense(3, 2), Dense(3, 4)], merge="sum"), (5, 3),
     (r"^Parallel\(merge='sum'\): the branches give shapes \[\(5, 2\), \(5, 4\)\]; summed outputs "
      r"must all match")),
    (Parallel([Conv2D(1, 2, 3), Conv2D(1, 2, 1)]), (1, 5, 5, 1),
     (r"^Parallel\(merge='concat'\): the branches give shapes \[\(1, 3, 3, 2\), \(1, 5, 5, 2\)\]; "
      r"concatenated along the last axis, they must agree on every other axis")),
    (Parallel([Dense(3, 2), Dense(4, 4)]), (5, 3),
     r"^branch 1 of Parallel: Dense\(in_features=4.*got \(5, 3\)$"),
    (Residual(Dense(4, 4)), (5, 3), r"^block of Residual: Dense\(in_features=4.*got \(5, 3\)$"),
    (Residual(Dense(3, 2), projection=BatchNorm(2)), (5, 3),
     r"^projection of Residual: BatchNorm\(features=2.*got \(5, 3\)$"),
], ids=["residual-identity", "residual-projection", "residual-conv", "parallel-sum", "parallel-concat",
        "parallel-branch", "residual-block", "residual-projection-child"])
def test_mismatched_shapes_are_shape_errors_in_output_shape_and_in_forward(model, shape, match):
    """Residual and Parallel check the shapes before adding: numpy would broadcast (5, 1) + (5, 3)."""
    with pytest.raises(ShapeError, match=match):
        model.output_shape(shape)
    params = model.init(RNG(0))
    with pytest.raises(ShapeError, match=match):
        apply_layer(model, params, np.ones(shape), state=model.init_state(), training=True)


@pytest.mark.parametrize("make, error, match", [
    (lambda: Residual("block"), ArgumentTypeError, "Residual takes a layer as its block"),
    (lambda: Residual(Dense(2, 2), projection=3), ArgumentTypeError, "projection must be a layer or None"),
    (lambda: Parallel([]), ArgumentError, "Parallel needs at least one branch"),
    (lambda: Parallel(Dense(2, 2)), ArgumentTypeError, "takes a list of layers"),
    (lambda: Parallel([Dense(2, 2), "x"]), ArgumentTypeError, "item 1 .* is not a layer"),
    (lambda: Parallel([Dense(2, 2)], merge="max"), ArgumentError,
     r"`merge` must be one of \('concat', 'sum'\)"),
])
def test_container_fields_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---------------------------------------------------------------- apply_layer and dropout


def test_apply_layer_calls_stateless_and_stateful_layers_alike():
    dense = Dense(3, 2)
    p = dense.init(RNG(0))
    marker = {"anything": np.zeros(1)}
    y, cache, state = apply_layer(dense, p, X, state=marker, training=True)
    assert state is marker  # a layer without state passes it through
    np.testing.assert_array_equal(y, dense.forward(p, X)[0])
    dx, _ = dense.backward(p, cache, np.ones_like(y))
    np.testing.assert_array_equal(dx, dense.backward(p, dense.forward(p, X)[1], np.ones_like(y))[0])

    bn = BatchNorm(3)
    q, s = bn.init(RNG(0)), bn.init_state()
    for training in (True, False):
        got = apply_layer(bn, q, X, state=s, training=training)
        want = bn.forward(q, X, state=s, training=training)
        np.testing.assert_array_equal(got[0], want[0])
        assert leaves_equal(got[2], want[2])
    assert not leaves_equal(apply_layer(bn, q, X, state=s, training=True)[2], s)

    drop = Dropout(0.5)
    ones = np.ones((4, 30))
    assert (apply_layer(drop, {}, ones, state={}, training=True, rng=RNG(0))[0] == 0).any()
    np.testing.assert_array_equal(apply_layer(drop, {}, ones, state={}, training=False, rng=RNG(0))[0], ones)
    np.testing.assert_array_equal(apply_layer(drop, {}, ones, state={}, training=True)[0], ones)


@pytest.mark.parametrize("wrap", ["Sequential", "Residual", "Parallel"])
def test_dropout_inside_a_stateful_model_masks_in_training_only(wrap):
    inner = [Dense(3, 8), BatchNorm(8), Dropout(0.5)]
    model = {"Sequential": Sequential(inner),
             "Residual": Residual(Sequential(inner), projection=Dense(3, 8)),
             "Parallel": Parallel([Sequential(inner), Identity()])}[wrap]
    assert model.stateful and model.stochastic
    params, state = model.init(RNG(0)), model.init_state()

    def dropped(y):  # the dropout's output: zeros where masked
        inner_y = {"Sequential": y, "Parallel": y[:, :8]}.get(wrap)
        if inner_y is None:
            inner_y = y - model.projection.forward(params["projection"], X)[0]
        return np.isclose(inner_y, 0.0, atol=1e-6)

    ya, _, sa = model.forward(params, X, rng=RNG(1), state=state, training=True)
    yb, _, sb = model.forward(params, X, rng=RNG(2), state=state, training=True)
    yc, _, _ = model.forward(params, X, rng=RNG(1), state=state, training=True)
    assert dropped(ya).any() and not np.array_equal(dropped(ya), dropped(yb))
    np.testing.assert_array_equal(ya, yc)  # the same generator state: the same mask
    assert leaves_equal(sa, sb)  # the BatchNorm before the dropout updates alike
    # evaluation: no mask, with or without a generator, and without a generator in training either
    for kwargs in [{"rng": RNG(1), "training": False}, {"training": False}, {"training": True}]:
        y, _, _ = model.forward(params, X, state=sa, **kwargs)
        assert not dropped(y).any(), kwargs
    y_eval = model.forward(params, X, rng=RNG(5), state=sa, training=False)[0]
    np.testing.assert_array_equal(y_eval, model.forward(params, X, state=sa, training=False)[0])


def test_dropout_in_evaluation_is_the_model_without_it():
    model = Sequential([Dense(3, 4), BatchNorm(4), Dropout(0.3)])
    bare = Sequential([Dense(3, 4), BatchNorm(4)])
    params = model.init(RNG(0))
    _, _, state = model.forward(params, X, state=model.init_state(), training=True, rng=RNG(1))
    got = model.forward(params, X, state=state, training=False, rng=RNG(2))[0]
    want = bare.forward(params[:2], X, state=state[:2], training=False)[0]
    np.testing.assert_array_equal(got, want)


def test_purenn_exports_the_new_layers():
    for name in ("BatchNorm", "LayerNorm", "Identity", "Residual", "Parallel", "apply_layer"):
        assert getattr(pn, name) is getattr(pn.layers, name)
