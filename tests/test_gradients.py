"""Every layer and every loss against float64 finite differences, from ONE registry each.

``LAYER_CASES`` maps each layer class to a Hypothesis strategy drawing ``(layer, x)``; the conv,
pooling and dropout entries come from ``gradcases_conv.py`` (a helper shared with
tests/layers/test_conv_layers.py), in the same format. ``LOSS_CASES`` maps a name to
``(loss, strategy)``. The coverage tests fail as soon as a Layer subclass or a loss exists without
a registry entry, so a new one cannot skip the check. The last tests prove the checker itself
catches broken layers.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn
import purenn as pn
import purenn.layers
import purenn.losses
from purenn.gradcheck import GradientCheckError, check_gradients, check_loss_gradients
from purenn.layers import (
    GELU, Dense, Flatten, Layer, LeakyReLU, ReLU, Reshape, Sequential, Sigmoid, Softmax, Tanh,
)
from purenn.layers.dense import INITIALIZERS
from purenn.losses import binary_cross_entropy, mse, one_hot, softmax_cross_entropy

from gradcases_conv import CONV_CASES

seeds = st.integers(0, 2**32 - 1)
sizes = st.integers(1, 4)
shapes = st.lists(sizes, min_size=1, max_size=3).map(tuple)


def normal(seed: int, shape: tuple[int, ...], margin: float = 0.0) -> np.ndarray:
    """Standard normal float64; with ``margin``, every value at least that far from 0 (kinks)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + np.sign(x) * margin if margin else x


# ---------------------------------------------------------------- the layer registry


@st.composite
def dense_case(draw: st.DrawFn):
    layer = Dense(
        draw(sizes), draw(sizes), initializer=draw(st.sampled_from(INITIALIZERS)),
        use_bias=draw(st.booleans()), dtype=draw(st.sampled_from(["float32", "float64"])),
    )
    lead = tuple(draw(st.lists(sizes, min_size=1, max_size=3)))  # (batch,), (n, batch), ...
    return layer, normal(draw(seeds), (*lead, layer.in_features))


slopes = st.sampled_from([0.0, 0.01, 0.2, 1.0, 3.0, -0.5])


def activation_case(make):
    """``make(draw)`` builds the layer; x keeps 0.05 away from the kinks of ReLU/LeakyReLU."""

    @st.composite
    def case(draw: st.DrawFn):
        return make(draw), normal(draw(seeds), draw(shapes), margin=0.05)

    return case()


@st.composite
def softmax_case(draw: st.DrawFn):
    shape = draw(shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Softmax(axis=axis), 3 * normal(draw(seeds), shape)


@st.composite
def flatten_case(draw: st.DrawFn):
    shape = tuple(draw(st.lists(sizes, min_size=1, max_size=4)))
    return Flatten(), normal(draw(seeds), shape)


@st.composite
def reshape_case(draw: st.DrawFn):
    dims = draw(st.lists(sizes, min_size=1, max_size=4))
    target = list(draw(st.permutations(dims)))
    while len(target) > 1 and draw(st.booleans()):  # merge neighbours: same size, new shape
        i = draw(st.integers(0, len(target) - 2))
        target[i : i + 2] = [target[i] * target[i + 1]]
    return Reshape(tuple(target)), normal(draw(seeds), (draw(sizes), *dims))


# Inside random stacks only smooth activations: a hidden ReLU's input can land within eps of its
# kink, where finite differences are meaningless. ReLU and LeakyReLU have their own cases above,
# with inputs kept away from 0.
SMOOTH_ACTIVATIONS = st.one_of(
    st.builds(Tanh), st.builds(Sigmoid), st.builds(GELU), st.builds(Softmax),
)


@st.composite
def sequential_case(draw: st.DrawFn):
    """A random Dense/activation stack, sometimes behind a Flatten, sometimes with a nested
    Sequential (and a Sequential nested in that)."""
    widths = draw(st.lists(sizes, min_size=2, max_size=4))
    layers: list[Any] = []
    for a, b in zip(widths, widths[1:]):
        layers.append(Dense(a, b, initializer=draw(st.sampled_from(INITIALIZERS)), use_bias=draw(st.booleans())))
        if draw(st.booleans()):
            layers.append(draw(SMOOTH_ACTIVATIONS))
    for _ in range(draw(st.integers(0, 2))):  # wrap a random slice into a nested Sequential
        i = draw(st.integers(0, len(layers) - 1))
        j = draw(st.integers(i + 1, len(layers)))
        layers[i:j] = [Sequential(layers[i:j])]
    batch = draw(sizes)
    if draw(st.booleans()):
        layers.insert(0, Flatten())
        x = normal(draw(seeds), (batch, widths[0], 1), margin=0.05)
    else:
        x = normal(draw(seeds), (batch, widths[0]), margin=0.05)
    return Sequential(layers), x


LAYER_CASES: dict[type, st.SearchStrategy] = {  # class -> strategy drawing (layer, x)
    Dense: dense_case(),
    Tanh: activation_case(lambda draw: Tanh()),
    Sigmoid: activation_case(lambda draw: Sigmoid()),
    ReLU: activation_case(lambda draw: ReLU()),
    LeakyReLU: activation_case(lambda draw: LeakyReLU(draw(slopes))),
    GELU: activation_case(lambda draw: GELU()),
    Softmax: softmax_case(),
    Flatten: flatten_case(),
    Reshape: reshape_case(),
    Sequential: sequential_case(),
    **CONV_CASES,
}


@pytest.mark.parametrize("cls", list(LAYER_CASES), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_layer_gradients_match_finite_differences(cls, data):
    layer, x = data.draw(LAYER_CASES[cls], label="(layer, x)")
    assert type(layer) is cls, f"the registry entry for {cls.__name__} drew a {type(layer).__name__}"
    assert np.asarray(x).dtype == np.float64
    check_gradients(layer, x, rng_seed=0)


def _exported_layer_classes() -> set[type]:
    out = set()
    for module in (purenn.layers, purenn):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer:
                out.add(obj)
    return out


def _defined_layer_classes() -> set[type]:
    """Every Layer subclass defined in any purenn.layers module, exported or not yet.

    Only the class its module holds under its name counts: ``@attrs.frozen`` builds a new
    (slotted) class and the one it replaced stays in ``__subclasses__()`` until the garbage
    collector runs, which made this check fail at random on a stale copy of a covered layer."""
    for info in pkgutil.iter_modules(purenn.layers.__path__):
        importlib.import_module(f"purenn.layers.{info.name}")
    found, todo = set(), [Layer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            live = getattr(sys.modules.get(sub.__module__), sub.__name__, None) is sub
            if sub.__module__.startswith("purenn.") and not sub.__name__.startswith("_") and live:
                found.add(sub)
    return found


def test_every_exported_layer_has_a_gradient_case():
    exported = _exported_layer_classes()
    assert Dense in exported and Sequential in exported
    missing = sorted(c.__name__ for c in exported if c not in LAYER_CASES)
    assert not missing, f"layers without an entry in LAYER_CASES: {missing}"


def test_every_layer_defined_in_purenn_layers_has_a_gradient_case():
    missing = sorted(c.__name__ for c in _defined_layer_classes() if c not in LAYER_CASES)
    assert not missing, (
        f"layers without an entry in LAYER_CASES (add one here or in gradcases_conv.py): {missing}"
    )


# ---------------------------------------------------------------- the loss registry


@st.composite
def mse_case(draw: st.DrawFn):
    shape, s = draw(shapes), draw(seeds)
    return normal(s, shape), normal(s + 1, shape)


@st.composite
def _logits_and_classes(draw: st.DrawFn):
    batch, classes = draw(sizes), draw(st.integers(1, 5))
    logits = 4 * normal(draw(seeds), (batch, classes))
    labels = np.random.default_rng(draw(seeds)).integers(0, classes, batch)
    return logits, labels, classes


@st.composite
def ce_int_case(draw: st.DrawFn):
    logits, labels, _ = draw(_logits_and_classes())
    return logits, labels


@st.composite
def ce_rows_case(draw: st.DrawFn):
    """One-hot rows, or soft probability rows (label smoothing, distillation)."""
    logits, labels, classes = draw(_logits_and_classes())
    rows = one_hot(labels, classes, dtype=np.float64)
    if draw(st.booleans()):
        soft = np.random.default_rng(draw(seeds)).random(rows.shape)
        rows = soft / soft.sum(axis=1, keepdims=True)
    return logits, rows


@st.composite
def bce_case(draw: st.DrawFn):
    shape, s = draw(shapes), draw(seeds)
    targets = np.random.default_rng(s + 1).random(shape)
    if draw(st.booleans()):
        targets = np.round(targets)
    return 4 * normal(s, shape), targets


LOSS_CASES = {
    "mse": (mse, mse_case()),
    "softmax_cross_entropy[int labels]": (softmax_cross_entropy, ce_int_case()),
    "softmax_cross_entropy[rows]": (softmax_cross_entropy, ce_rows_case()),
    "binary_cross_entropy": (binary_cross_entropy, bce_case()),
}
NOT_LOSSES = {"one_hot", "as_loss"}  # public helpers in purenn.losses that are not (y_pred, y_true) losses


@pytest.mark.parametrize("name", list(LOSS_CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_loss_gradients_match_finite_differences(name, data):
    loss, strategy = LOSS_CASES[name]
    y_pred, y_true = data.draw(strategy, label="(y_pred, y_true)")
    check_loss_gradients(loss, y_pred, y_true)


def test_every_loss_in_purenn_losses_has_a_gradient_case():
    defined = {
        name for name, obj in vars(purenn.losses).items()
        if inspect.isfunction(obj) and obj.__module__ == "purenn.losses" and not name.startswith("_")
    }
    assert {"mse", "softmax_cross_entropy", "binary_cross_entropy"} <= defined
    covered = {loss.__name__ for loss, _ in LOSS_CASES.values()}
    missing = sorted(defined - covered - NOT_LOSSES)
    assert not missing, f"losses without an entry in LOSS_CASES: {missing}"
    assert set(purenn.losses.LOSSES) == defined - NOT_LOSSES, "purenn.losses.LOSSES must name every loss"
    exported = {n for n in purenn.__all__ if getattr(getattr(purenn, n), "__module__", None) == "purenn.losses"}
    assert exported - NOT_LOSSES <= covered


# ---------------------------------------------------------------- the checker catches bugs


@attrs.frozen
class _Linear(Layer):
    """Y = X W with configurable mistakes, to show check_gradients catches each one."""

    dx_scale: float = 1.0
    dw_scale: float = 1.0
    mutate_input: bool = False
    mutate_params: bool = False
    drop_grad: bool = False

    def init(self, rng):
        return {"w": purenn.tree.readonly(rng.standard_normal((3, 2)))}

    def forward(self, params, x):
        x = np.asarray(x)
        y = x @ params["w"]
        if self.mutate_input:
            x *= 1.5
        if self.mutate_params:
            params["w"][0, 0] += 1.0
        return y, x.copy()

    def backward(self, params, x, dy):
        dw = self.dw_scale * x.T @ dy
        return self.dx_scale * dy @ params["w"].T, ({} if self.drop_grad else {"w": dw})


X3 = np.random.default_rng(5).standard_normal((4, 3))


def test_a_correct_hand_written_layer_passes():
    check_gradients(_Linear(), X3)


def test_check_gradients_catches_a_wrong_input_gradient():
    with pytest.raises(GradientCheckError, match=r"_Linear.*gradient for input x disagrees .* at 12 of 12"):
        check_gradients(_Linear(dx_scale=2.0), X3)


def test_check_gradients_catches_a_wrong_param_gradient():
    with pytest.raises(GradientCheckError, match=r"gradient for params\['w'\] disagrees"):
        check_gradients(_Linear(dw_scale=0.5), X3)


def test_check_gradients_catches_a_small_error_in_one_entry():
    @attrs.frozen
    class OffByOne(_Linear):
        def backward(self, params, x, dy):
            dx, grads = super().backward(params, x, dy)
            dx = dx.copy()
            dx[2, 1] *= 1.001
            return dx, grads

    with pytest.raises(GradientCheckError, match=r"at 1 of 12 entries; worst at index \(2, 1\)"):
        check_gradients(OffByOne(), X3)


def test_check_gradients_catches_a_layer_that_mutates_its_input():
    with pytest.raises(GradientCheckError, match="modified its input x"):
        check_gradients(_Linear(mutate_input=True), X3)


def test_check_gradients_catches_a_layer_that_mutates_its_params():
    with pytest.raises(GradientCheckError, match="modified the params"):
        check_gradients(_Linear(mutate_params=True), X3)


def test_check_gradients_catches_grads_that_do_not_match_params():
    with pytest.raises(GradientCheckError, match="grads structure .* differs from params"):
        check_gradients(_Linear(drop_grad=True), X3)


def test_check_loss_gradients_catches_a_wrong_loss_gradient():
    def half_mse(y_pred, y_true):
        value, grad = mse(y_pred, y_true)
        return value, grad / 2

    half_mse.__name__ = "half_mse"
    with pytest.raises(GradientCheckError, match="half_mse: gradient for y_pred disagrees"):
        check_loss_gradients(half_mse, normal(0, (3, 2)), normal(1, (3, 2)))


def test_check_loss_gradients_catches_a_loss_that_mutates_its_input():
    def clipping_mse(y_pred, y_true):
        np.clip(y_pred, -1, 1, out=y_pred)
        return mse(y_pred, y_true)

    with pytest.raises(GradientCheckError, match="clipping_mse: the loss modified its inputs"):
        check_loss_gradients(clipping_mse, 3 * normal(0, (3, 2)), normal(1, (3, 2)))


def test_check_gradients_catches_param_grads_that_differ_from_backward():
    @attrs.frozen
    class Skewed(pn.Dense):
        def backward(self, params, x, dy):  # correct: Dense's own grads
            return np.dot(dy, params["w"].T), pn.Dense.param_grads(self, params, x, dy)

        def param_grads(self, params, x, dy):
            grads = super().param_grads(params, x, dy)
            return {**grads, "b": grads["b"] * 1.5}

    with pytest.raises(GradientCheckError, match="param_grads differs"):
        check_gradients(Skewed(3, 2), np.random.default_rng(0).standard_normal((4, 3)))


def test_check_gradients_catches_a_backward_that_writes_into_dy():
    @attrs.frozen
    class Masked(pn.ReLU):
        def backward(self, params, mask, dy):
            dy *= mask  # in place: the caller's dy changes
            return dy, {}

    with pytest.raises(GradientCheckError, match="backward modified the dy"):
        check_gradients(Masked(), np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]))
