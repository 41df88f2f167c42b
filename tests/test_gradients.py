"""Every layer and every loss against float64 finite differences, from the registries.

Each layer class's strategy in tests/registry_layers.py is drawn from, and the layer checked at
random params (BatchNorm's and LayerNorm's scale start at ones and shift at zeros, where a
backward that forgets the scale would still pass): in training mode, and, when the draw carries
state (BatchNorm, a container holding one), in evaluation mode with a trained state, whose backward
differs (dE/dX = dE/dY * scale / sqrt(running_var + eps) for BatchNorm). The container templates
(tests/layer_strategies_blocks.py) are also each checked on their own, so every nesting runs on
every test run. Every case of tests/registry_losses.py is checked the same way. The last tests
prove the checker itself catches broken layers.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn
import purenn as pn
import purenn.losses
from purenn.gradcheck import GradientCheckError, check_gradients, check_loss_gradients
from purenn.layers import BatchNorm, Conv2D, Dropout, Layer, Parallel, Residual, Sequential
from purenn.losses import mse
from purenn.tree import tree_leaves

from layer_strategies import normal, random_params, seeds, trained_state
from layer_strategies_blocks import CONTAINER_TEMPLATES
from registry_layers import LAYERS
from registry_losses import LOSS_CASES

# ---------------------------------------------------------------- every layer


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_layer_gradients_match_finite_differences(cls, data):
    layer, x = data.draw(LAYERS[cls].cases, label="(layer, x)")
    assert type(layer) is cls, f"the registry entry for {cls.__name__} drew a {type(layer).__name__}"
    assert np.asarray(x).dtype == np.float64
    seed = data.draw(seeds, label="seed")
    params = random_params(layer, seed)
    check_gradients(layer, x, params, rng_seed=0)
    if layer.stateful:  # evaluation mode: the state's statistics as constants
        state = trained_state(layer, params, x, seed)
        initial = layer.init_state()
        assert not all(np.allclose(a, b) for a, b in zip(tree_leaves(state), tree_leaves(initial)))
        check_gradients(layer, x, params, rng_seed=0, state=state, training=False)


# ---------------------------------------------------------------- every container template


@pytest.mark.parametrize("name", list(CONTAINER_TEMPLATES))
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_every_container_template_gradients(name, data):
    """Each nesting on its own (the registry draws one template per example, so a template could
    go unchecked in a run): training mode and, for stateful ones, evaluation mode."""
    stateful, strategy = CONTAINER_TEMPLATES[name]
    layer, x = data.draw(strategy, label="(layer, x)")
    assert layer.stateful == stateful
    seed = data.draw(seeds, label="seed")
    params = random_params(layer, seed)
    check_gradients(layer, x, params, rng_seed=0)
    if stateful:
        check_gradients(layer, x, params, rng_seed=0, state=trained_state(layer, params, x, seed),
                        training=False)


def test_the_templates_cover_every_nesting_asked_for():
    """The nestings the templates promise, found by walking the simplest draw of each (so editing
    a template cannot silently drop one)."""
    from hypothesis import find

    found: set[tuple[Any, ...]] = set()

    def walk(layer: Any, outer: tuple[type, ...]) -> None:
        found.update((type(layer), container) for container in outer)
        if isinstance(layer, Residual):
            found.add(("shortcut", "identity" if layer.projection is None else "projection"))
        if isinstance(layer, Parallel):
            found.add(("merge", layer.merge))
        for child in getattr(layer, "layers", None) or getattr(layer, "children", ()):
            walk(child, (*outer, type(layer)))

    for _, strategy in CONTAINER_TEMPLATES.values():
        layer, _ = find(strategy, lambda case: True)
        walk(layer, ())
    wanted = {(Sequential, Residual), (BatchNorm, Residual), (Residual, Parallel), (Parallel, Residual),
              (Parallel, Parallel), (BatchNorm, Parallel), (Conv2D, Residual), (Conv2D, Parallel),
              (Residual, Sequential), (BatchNorm, Sequential), (Dropout, Residual), (Dropout, Parallel),
              ("shortcut", "identity"), ("shortcut", "projection"), ("merge", "concat"), ("merge", "sum")}
    assert wanted <= found, f"no template has {wanted - found}"


# ---------------------------------------------------------------- every loss


@pytest.mark.parametrize("name", list(LOSS_CASES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_loss_gradients_match_finite_differences(name, data):
    loss, strategy = LOSS_CASES[name]
    y_pred, y_true, *options = data.draw(strategy, label="(y_pred, y_true[, options])")
    kwargs = options[0] if options else {}
    if kwargs:  # the options drawn are those the case's name says
        assert set(kwargs) == set(name[name.index("[") + 1 : -1].split(", ")) - {"int labels", "rows"}
    check_loss_gradients(functools.partial(loss, **kwargs), y_pred, y_true)


def test_every_option_of_every_loss_has_a_gradient_case():
    """Each keyword option of a built-in loss is named in a case of that loss (``loss[option]``),
    so a new option cannot skip the finite-difference check."""
    named = {(loss.__name__, part) for name, (loss, _) in LOSS_CASES.items() if "[" in name
             for part in name[name.index("[") + 1 : -1].split(", ")}
    for loss in purenn.losses.LOSSES.values():
        options = [p.name for p in inspect.signature(loss).parameters.values() if p.kind is p.KEYWORD_ONLY]
        missing = [o for o in options if (loss.__name__, o) not in named]
        assert not missing, f"{loss.__name__}'s options without a case in LOSS_CASES: {missing}"


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


@attrs.frozen
class _Buffered(Layer):
    """y = a * x, whose backward writes dE/da into a buffer it keeps (so the arrays it returns
    are not fresh) while declaring fresh_grads."""

    fresh_grads = True
    buffer: Any = attrs.field(factory=lambda: np.zeros(()), eq=False)

    def init(self, rng):
        return {"a": pn.freeze(np.ones(()))}

    def forward(self, params, x):
        return params["a"] * x, x

    def backward(self, params, x, dy):
        self.buffer[...] = np.sum(dy * x)
        return params["a"] * dy, {"a": self.buffer}


@attrs.frozen
class _PassesDy(Layer):
    """y = x + b with dE/db = dy itself (the caller's array) while declaring fresh_grads."""

    fresh_grads = True

    def init(self, rng):
        return {"b": pn.freeze(np.zeros(3))}

    def forward(self, params, x):
        return x + params["b"], None

    def backward(self, params, cache, dy):
        return dy * 1.0, {"b": dy[0]}


@pytest.mark.parametrize("layer, x", [(_Buffered(), normal(0, (4, 3))), (_PassesDy(), normal(0, (1, 3)))],
                         ids=["keeps-a-buffer", "returns-dy"])
def test_check_gradients_holds_a_layer_to_its_fresh_grads(layer, x):
    with pytest.raises(GradientCheckError, match="declares fresh_grads, but a grad array from backward "
                                                 "shares memory"):
        check_gradients(layer, x)
