"""Layers under the contract: errors, dtypes, initializers, immutability, seeding, custom layers.

What every layer must do (read-only params, shapes, clear errors for non-numeric input, dtypes) is
checked on every class of the registry by tests/layers/test_every_layer.py and
tests/test_float32_agreement.py; here are Dense's and Sequential's own behaviours and examples."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.errors import ShapeError
from purenn.gradcheck import check_gradients
from purenn.layers import (
    Dense, Layer, LeakyReLU, Reshape, Sequential, Tanh,
)
from purenn.tree import readonly, tree_leaves

RNG = np.random.default_rng
# The tutorial's XOR data, as it writes it: integer arrays of shape (4, 1, 2) and (4, 1, 1).
XOR_X = np.array([[[0, 0]], [[0, 1]], [[1, 0]], [[1, 1]]])
XOR_Y = np.array([[[0]], [[1]], [[1]], [[0]]])


# ---------------------------------------------------------------- shape errors


def test_dense_shape_error_names_layer_expected_and_actual_shape():
    layer = Dense(3, 2)
    with pytest.raises(ShapeError, match=r"^Dense\(in_features=3, out_features=2.*\) expected input "
                       r"of shape \(batch, 3\), got \(4, 5\)$"):
        layer.forward(layer.init(RNG(0)), np.zeros((4, 5)))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 3\), got \(\)"):
        layer.forward(layer.init(RNG(0)), 1.0)


def test_shape_error_is_a_value_error():
    assert issubclass(ShapeError, ValueError)


def test_reshape_shape_error_names_layer_expected_and_actual_shape():
    with pytest.raises(ShapeError, match=r"^Reshape\(shape=\(2, 3\)\) expected input of shape "
                       r"\(batch, \.\.\.\) with 6 values per sample, got \(4, 5\)$"):
        Reshape((2, 3)).forward({}, np.zeros((4, 5)))


def test_sequential_shape_error_says_which_layer():
    model = Sequential([Dense(2, 3), Tanh(), Dense(4, 1)])
    with pytest.raises(ShapeError, match=r"^layer 2 of Sequential: Dense\(in_features=4.*got \(5, 3\)$"):
        model.forward(model.init(RNG(0)), np.zeros((5, 2)))


def test_nested_sequential_shape_error_gives_the_path():
    model = Sequential([Dense(2, 3), Sequential([Tanh(), Dense(5, 1)])])
    with pytest.raises(ShapeError, match=r"^layer 1 of Sequential: layer 1 of Sequential: Dense\(in_features=5"):
        model.forward(model.init(RNG(0)), np.zeros((1, 2)))


def test_sequential_refuses_params_of_the_wrong_length():
    model = Sequential([Dense(2, 3), Tanh()])
    with pytest.raises(ValueError, match=r"Sequential of 2 layers needs params with one entry per "
                       r"layer, got 1 entries; create them with model.init\(rng\)"):
        model.forward((Dense(2, 3).init(RNG(0)),), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="got dict"):
        model.forward({}, np.zeros((1, 2)))


# ---------------------------------------------------------------- input conversion and dtypes


def test_tutorial_integer_xor_input_works_and_becomes_the_params_dtype():
    for dtype in ("float32", "float64"):
        layer = Dense(2, 3, dtype=dtype)
        params = layer.init(RNG(0))
        y, _ = layer.forward(params, XOR_X)
        assert y.shape == (4, 1, 3) and y.dtype == dtype
        expected = XOR_X.astype(dtype) @ params["w"] + params["b"]
        np.testing.assert_array_equal(y, expected)


def test_tutorial_integer_xor_trains_end_to_end():
    """The tutorial's integer arrays train the float32 network exactly as float arrays would,
    and the run learns: seed 1 (the CLI's default) solves XOR in the tutorial's 1000 epochs."""
    from purenn.recipes.xor import xor_network, xor_solved

    model = xor_network()
    params = model.init(RNG(1))
    kw = dict(lr=0.1, epochs=1000, batch_size=1, shuffle=False)
    new, history = pn.fit(model, params, XOR_X, XOR_Y, **kw)
    assert [leaf.dtype for leaf in tree_leaves(new)] == [np.float32] * 4
    assert len(history.loss) == 1000 and all(np.isfinite(history.loss))
    out, _ = model.forward(new, XOR_X)
    assert out.shape == (4, 1, 1) and out.dtype == np.float32
    # it learned: the loss fell by far, every output rounds to its target, the weights moved
    assert history.loss[-1] < 0.05 * history.loss[0]
    assert all(b <= a * 1.001 for a, b in zip(history.loss[100::100], history.loss[200::100]))
    assert xor_solved(out)
    before, _ = model.forward(params, XOR_X)
    assert not xor_solved(before)
    for a, b in zip(tree_leaves(new), tree_leaves(params), strict=True):
        assert np.abs(a - b).max() > 0.1
    # integer data is converted exactly: the same run from float32 arrays is bit for bit the same
    same, same_history = pn.fit(model, params, XOR_X.astype(np.float32), XOR_Y.astype(np.float32), **kw)
    assert same_history.loss == history.loss
    for a, b in zip(tree_leaves(new), tree_leaves(same), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_numeric_error_names_the_layer():
    with pytest.raises(TypeError, match=r"^Dense\(in_features=2, out_features=2.*\): input must be numeric"):
        Dense(2, 2).forward(Dense(2, 2).init(RNG(0)), np.array([["x", "y"]]))


def test_dense_dtype_float32_by_default_float64_on_request():
    assert Dense(2, 3).dtype == "float32"
    for dtype in ("float32", "float64"):
        layer = Dense(2, 3, dtype=dtype)
        params = layer.init(RNG(0))
        assert all(leaf.dtype == dtype for leaf in tree_leaves(params))
        for x_dtype in (np.float32, np.float64, np.int64):
            assert layer.forward(params, np.ones((1, 2), dtype=x_dtype))[0].dtype == dtype


def test_dense_dtype_validator_names_field_value_and_choices():
    with pytest.raises(ValueError, match=r"`dtype` must be one of \('float32', 'float64'\), got 'float16'"):
        Dense(2, 3, dtype="float16")


# ---------------------------------------------------------------- initializers


def test_uniform_initializer_is_the_tutorials():
    p = Dense(200, 300, initializer="uniform", dtype="float64").init(RNG(0))
    for leaf in (p["w"], p["b"]):
        assert leaf.min() >= -0.5 and leaf.max() < 0.5
    assert p["w"].min() < -0.49 and p["w"].max() > 0.49
    assert abs(p["w"].mean()) < 0.01
    assert abs(p["w"].std() - np.sqrt(1 / 12)) < 0.005
    # exactly rand(in, out) - 0.5 from the given generator, weights first, then bias
    rng = RNG(3)
    spawned = Dense(4, 5, initializer="uniform", dtype="float64").init(RNG(3))
    np.testing.assert_array_equal(spawned["w"], rng.random((4, 5)) - 0.5)
    np.testing.assert_array_equal(spawned["b"], rng.random(5) - 0.5)


def test_glorot_initializer_is_within_its_limit_and_fills_it():
    layer = Dense(120, 80, initializer="glorot", dtype="float64")
    p = layer.init(RNG(0))
    limit = np.sqrt(6 / (120 + 80))
    assert np.abs(p["w"]).max() <= limit
    assert np.abs(p["w"]).max() > 0.99 * limit
    assert abs(p["w"].std() - limit / np.sqrt(3)) < 0.02 * limit
    np.testing.assert_array_equal(p["b"], np.zeros(80))
    assert Dense(2, 3).initializer == "glorot"


def test_he_initializer_has_std_sqrt_2_over_fan_in():
    p = Dense(400, 300, initializer="he", dtype="float64").init(RNG(0))
    expected = np.sqrt(2 / 400)
    # 120000 draws: the sample std is within ~0.2 % of the truth, so 2 % is a real check
    assert abs(p["w"].std() / expected - 1) < 0.02
    assert abs(p["w"].mean()) < 0.05 * expected
    np.testing.assert_array_equal(p["b"], np.zeros(300))


def test_no_bias_means_no_bias_param():
    assert set(Dense(2, 3, use_bias=False).init(RNG(0))) == {"w"}
    assert set(Dense(2, 3).init(RNG(0))) == {"w", "b"}


# ---------------------------------------------------------------- purity


def test_layers_are_frozen_and_evolve_round_trips():
    layer = Dense(2, 3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        layer.out_features = 4
    wider = attrs.evolve(layer, out_features=4)
    assert (layer.out_features, wider.out_features) == (3, 4)
    assert attrs.evolve(wider, out_features=3) == layer
    assert attrs.evolve(layer) == layer and hash(attrs.evolve(layer)) == hash(layer)
    with pytest.raises(ValueError, match=r"`out_features` must be a positive integer below 2\*\*31, got 0"):
        attrs.evolve(layer, out_features=0)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 20), st.integers(1, 20), st.sampled_from(["uniform", "glorot", "he"]),
    st.booleans(), st.sampled_from(["float32", "float64"]), st.integers(0, 2**32 - 1),
)
def test_a_layer_rebuilt_from_its_fields_is_the_same_layer_for_params(i, o, init, bias, dtype, seed):
    """The hyperparameters are the whole layer: a Dense rebuilt from its fields (as a checkpoint
    or a run record rebuilds it) initialises the same params from the same generator and computes
    the same outputs and gradients from them; a layer evolved to another shape refuses those
    params, alone and inside a Sequential, instead of computing with them."""
    layer = Dense(i, o, initializer=init, use_bias=bias, dtype=dtype)
    rebuilt = Dense(**attrs.asdict(layer))
    params = layer.init(RNG(seed))
    for a, b in zip(tree_leaves(params), tree_leaves(rebuilt.init(RNG(seed))), strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    x = RNG(seed).standard_normal((3, i))
    (y, cache), (y2, cache2) = layer.forward(params, x), rebuilt.forward(params, x)
    np.testing.assert_array_equal(y, y2)
    dy = RNG(seed + 1).standard_normal(y.shape)
    (dx, grads), (dx2, grads2) = layer.backward(params, cache, dy), rebuilt.backward(params, cache2, dy)
    np.testing.assert_array_equal(dx, dx2)
    for a, b in zip(tree_leaves(grads), tree_leaves(grads2), strict=True):
        np.testing.assert_array_equal(a, b)

    wider = attrs.evolve(layer, out_features=o + 1)
    with pytest.raises(ShapeError, match=rf"params\['w'\] has shape \({i}, {o}\), expected \({i}, {o + 1}\)"):
        wider.forward(params, x)
    model = Sequential([layer, LeakyReLU(0.3)])
    other = attrs.evolve(model, layers=(wider, LeakyReLU(0.3)))
    model_params = model.init(RNG(seed))
    with pytest.raises(ShapeError, match=r"^layer 0 of Sequential: Dense"):
        other.forward(model_params, x)
    back = attrs.evolve(other, layers=model.layers)
    np.testing.assert_array_equal(back.forward(model_params, x)[0], model.forward(model_params, x)[0])


# ---------------------------------------------------------------- seeding of Sequential


def test_same_seed_gives_identical_params_different_seed_differs():
    model = Sequential([Dense(4, 8), Tanh(), Dense(8, 3, initializer="uniform")])
    a, b, c = model.init(RNG(7)), model.init(RNG(7)), model.init(RNG(8))
    for x, y in zip(tree_leaves(a), tree_leaves(b), strict=True):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0]["w"], c[0]["w"])


def test_adding_a_layer_at_the_end_keeps_earlier_params():
    base = [Dense(4, 8, initializer="he"), Tanh(), Dense(8, 3, initializer="uniform")]
    short = Sequential(base).init(RNG(0))
    longer = Sequential([*base, Tanh(), Dense(3, 2, initializer="uniform")]).init(RNG(0))
    for x, y in zip(tree_leaves(short), tree_leaves(longer[:3]), strict=True):
        assert np.array_equal(x, y)


def test_each_child_gets_its_own_stream():
    # two identical children must not get identical params (cloned generators would)
    p = Sequential([Dense(3, 3, initializer="uniform"), Dense(3, 3, initializer="uniform")]).init(RNG(0))
    assert not np.array_equal(p[0]["w"], p[1]["w"])
    # changing how much the first child draws (uniform: w and b; he: w only; wider: more) leaves
    # the last child's params alone; with one shared stream they would shift
    last = Dense(8, 3, initializer="uniform")
    runs = [
        Sequential([first, Tanh(), last]).init(RNG(0))[2]
        for first in (Dense(4, 8, initializer="uniform"), Dense(4, 8, initializer="he"), Dense(9, 8))
    ]
    for other in runs[1:]:
        assert np.array_equal(runs[0]["w"], other["w"]) and np.array_equal(runs[0]["b"], other["b"])


# ---------------------------------------------------------------- a user-written layer


@attrs.frozen
class Scale(Layer):
    """Y = X * s for a learned per-feature scale s of shape (features,).

    Backward: dE/dX = dE/dY * s,  dE/ds = sum over the batch of dE/dY * X.
    """

    features: int = attrs.field(validator=attrs.validators.gt(0))

    def init(self, rng):
        return {"s": readonly(np.ones(self.features, dtype=np.float32))}

    def forward(self, params, x):
        x = pn.validation.as_float_array(x, self, params["s"].dtype)
        if x.shape[-1] != self.features:
            raise pn.layers.base.shape_error(self, f"(batch, {self.features})", x.shape)
        return x * params["s"], x

    def backward(self, params, x, dy):
        return dy * params["s"], {"s": (dy * x).reshape(-1, self.features).sum(axis=0)}


def test_custom_layer_passes_check_gradients_alone_and_inside_sequential():
    check_gradients(Scale(3), RNG(0).standard_normal((4, 3)))
    model = Sequential([Dense(2, 3), Scale(3), Tanh(), Sequential([Scale(3), Dense(3, 1)])])
    check_gradients(model, RNG(1).standard_normal((5, 2)))


def test_custom_layer_shape_error_is_reported_with_its_index():
    model = Sequential([Dense(2, 3), Scale(4)])
    with pytest.raises(ShapeError, match=r"layer 1 of Sequential: Scale\(features=4\) expected"):
        model.forward(model.init(RNG(0)), np.zeros((1, 2)))


def test_custom_layer_trains_with_fit():
    x = RNG(0).standard_normal((64, 3)).astype(np.float32)
    target_scale = np.array([2.0, -1.0, 0.5], dtype=np.float32)
    params, history = pn.fit(Scale(3), Scale(3).init(RNG(0)), x, x * target_scale,
                             lr=0.5, epochs=60, batch_size=16)
    np.testing.assert_allclose(params["s"], target_scale, atol=1e-3)
    assert history.loss[-1] < 1e-4 * history.loss[0]
    assert not params["s"].flags.writeable

    model = Sequential([Dense(3, 8), Tanh(), Scale(8), Dense(8, 1)])
    y = np.sin(x.sum(axis=1, keepdims=True))
    _, history = pn.fit(model, model.init(RNG(1)), x, y, lr=0.05, epochs=30, batch_size=8)
    assert history.loss[-1] < 0.5 * history.loss[0]


# ---------------------------------------------------------------- validators


@pytest.mark.parametrize("make, error, match", [
    (lambda: Dense(0, 3), ValueError, r"`in_features` must be a positive integer below 2\*\*31, got 0"),
    (lambda: Dense(3, -1), ValueError, r"`out_features` must be a positive integer below 2\*\*31, got -1"),
    (lambda: Dense(2.5, 3), ValueError, r"`in_features` must be a positive integer below 2\*\*31, got 2.5"),
    (lambda: Dense(True, 3), ValueError, r"`in_features` must be a positive integer below 2\*\*31, got True"),
    (lambda: LeakyReLU("abc"), TypeError, r"`negative_slope` must be a real number, got 'abc' of type str"),
    (lambda: LeakyReLU(float("inf")), ValueError, r"`negative_slope` must be a real number, got inf"),
    (lambda: Dense(2, 3, initializer="xavier"), ValueError,
     r"`initializer` must be one of \('uniform', 'glorot', 'he'\), got 'xavier'"),
    (lambda: Reshape((0,)), ValueError, r"`shape` must be a non-empty tuple of positive integers, got \(0,\)"),
    (lambda: Reshape(()), ValueError, r"`shape` must be a non-empty tuple of positive integers, got \(\)"),
    (lambda: Reshape((2, -3)), ValueError, r"got \(2, -3\)"),
    (lambda: Sequential([Dense(2, 3), "tanh"]), TypeError,
     r"Sequential: item 1 \('tanh'\) is not a layer; a layer needs init\(rng\), forward"),
])
def test_validators_give_clear_messages(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_sequential_accepts_any_iterable_and_stores_a_tuple():
    model = Sequential(layer for layer in [Dense(2, 3), Tanh()])
    assert isinstance(model.layers, tuple) and len(model.layers) == 2
    assert model == Sequential([Dense(2, 3), Tanh()])


def test_dense_refuses_params_made_for_another_layer():
    layer = Dense(3, 2)
    params = layer.init(np.random.default_rng(0))
    x = np.ones((1, 3))
    with pytest.raises(ValueError, match=r"params must be a dict with 'w' and 'b'.*got keys \['w'\]"):
        layer.forward({"w": params["w"]}, x)
    with pytest.raises(ShapeError, match=r"params\['w'\] has shape \(2, 3\), expected \(3, 2\)"):
        layer.forward({"w": params["w"].T, "b": params["b"]}, x)
    model = Sequential([Dense(3, 2), Dense(2, 2)])
    p = model.init(np.random.default_rng(0))
    with pytest.raises(ShapeError, match=r"layer 0 of Sequential: Dense.*params\['w'\] has shape \(2, 2\)"):
        model.forward((p[1], p[0]), x)


def test_an_empty_sequential_is_the_identity_and_checks_its_input_like_any_layer():
    empty = pn.Sequential([])
    y, _ = empty.forward(empty.init(np.random.default_rng(0)), [[1, 2]])
    assert y.dtype == np.float32 and y.tolist() == [[1.0, 2.0]]
    with pytest.raises(pn.ArgumentTypeError, match="input must be numeric"):
        empty.forward((), np.array([["a", "b"]]))
