"""Every layer and every loss against float64 finite differences, from ONE registry each.

``LAYER_CASES`` maps each layer class to a Hypothesis strategy drawing ``(layer, x)``; the conv,
pooling and dropout entries come from ``gradcases_conv.py`` (a helper shared with
tests/layers/test_conv_layers.py), in the same format. The containers' entries (``Residual``,
``Parallel``) draw from named templates (``CONTAINER_TEMPLATES``: nested Sequentials, BatchNorm
inside, a Residual inside a Parallel and the reverse, convolutions) that are also each checked on
their own, so every nesting is run on every test run. Stateful layers are checked in training mode
by the registry test and in evaluation mode, with a trained state, by a second test
(``STATEFUL_CASES``, drawn from the same strategies). ``LOSS_CASES`` maps a name to
``(loss, strategy)``. The coverage tests fail as soon as a Layer subclass or a loss exists without
a registry entry, so a new one cannot skip the check. The last tests prove the checker itself
catches broken layers.
"""

from __future__ import annotations

import functools
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
    GELU, BatchNorm, Conv2D, Dense, Dropout, Flatten, Identity, Layer, LayerNorm, LeakyReLU,
    Parallel, ReLU, Reshape, Residual, Sequential, Sigmoid, Softmax, Tanh,
)
from purenn.layers.dense import INITIALIZERS
from purenn.losses import binary_cross_entropy, mse, one_hot, softmax_cross_entropy
from purenn.tree import tree_leaves, tree_map, tree_paths, tree_structure, tree_unflatten

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


# ---- normalisation and composition (layers with state: BatchNorm, and containers holding one)

DTYPES = st.sampled_from(["float32", "float64"])


def spread(seed: int, shape: tuple[int, ...], scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Distinct float64 values evenly spaced over [offset - 2 scale, offset + 2 scale], in random
    order: every group of values (a feature's over a batch, a sample's over its features) has a
    spread far above normalisation's eps, so no float32 rounding is blown up by 1/sqrt(var + eps)
    and no finite difference crosses a near-constant group."""
    size = int(np.prod(shape))
    order = np.random.default_rng(seed).permutation(size).reshape(shape)
    return offset + scale * (4.0 * order / max(size - 1, 1) - 2.0)


SCALES, OFFSETS = st.sampled_from([1.0, 0.5, 3.0]), st.sampled_from([0.0, 1.5, -1.0])


@st.composite
def batchnorm_case(draw: st.DrawFn):
    """``(batch, features)`` (after a Dense layer) or ``(batch, h, w, features)`` (after a
    channels-last Conv2D), with at least two values per feature (training needs a variance); a
    4-D batch may be a single image."""
    layer = BatchNorm(draw(sizes), momentum=draw(st.sampled_from([0.1, 0.0, 0.5, 1.0])),
                      eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])), dtype=draw(DTYPES))
    if draw(st.booleans()):
        lead: tuple[int, ...] = (draw(st.integers(2, 5)),)
    else:
        b, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        lead = (b, h, draw(st.integers(2 if b * h == 1 else 1, 3)))
    return layer, spread(draw(seeds), (*lead, layer.features), draw(SCALES), draw(OFFSETS))


@st.composite
def layernorm_case(draw: st.DrawFn):
    """Each sample's features at least ``scale`` apart (a feature-wise step under the spread
    values): LayerNorm over two close values has a dE/dX ~ eps / d^3 that its formula computes
    as a difference of terms ~ 1 / d, where float32 rounding would swamp it."""
    layer = LayerNorm(draw(sizes), eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])), dtype=draw(DTYPES))
    lead = tuple(draw(st.lists(sizes, min_size=1, max_size=2)))  # (batch,) or (batch, sequence)
    scale = draw(SCALES)
    steps = np.random.default_rng(draw(seeds)).permutation(layer.features) * 5.0 * scale
    return layer, spread(draw(seeds), (*lead, layer.features), scale, draw(OFFSETS)) + steps


@st.composite
def identity_case(draw: st.DrawFn):
    return Identity(), normal(draw(seeds), draw(shapes))


ELEMENTWISE_SMOOTH = st.one_of(st.builds(Tanh), st.builds(Sigmoid), st.builds(GELU))


def _dense(draw: st.DrawFn, a: int, b: int, *, bias: bool | None = None) -> Dense:
    use_bias = draw(st.booleans()) if bias is None else bias
    return Dense(a, b, initializer=draw(st.sampled_from(INITIALIZERS)), use_bias=use_bias)


def _mlp(draw: st.DrawFn, a: int, b: int) -> Sequential:
    """Dense, a smooth activation, Dense: a block's usual body (no kinks, see above)."""
    hidden = draw(sizes)
    return Sequential([_dense(draw, a, hidden), draw(SMOOTH_ACTIVATIONS), _dense(draw, hidden, b)])


def _conv(draw: st.DrawFn, a: int, b: int, k: int, *, bias: bool | None = None) -> Conv2D:
    return Conv2D(a, b, k, padding="same", use_bias=draw(st.booleans()) if bias is None else bias)


# After a BatchNorm only Tanh or Sigmoid: in evaluation mode the running statistics can put a
# sample deep in GELU's left tail, where float32's derivative (1 + tanh(u) cancelling) is off by
# more than the float32 agreement test's tolerance (seen in CI: 7.7e-05 against 5.96e-05).
AFTER_BATCHNORM = st.sampled_from([Tanh(), Sigmoid()])

# Each template draws (features, ...) -> a container and the input it takes. Normalisation's
# backward divides by the spread of what it normalises, and some of its gradients are zero in exact
# arithmetic (a bias just before a BatchNorm; a Dense weight feeding one from a single input
# feature, by scale invariance) while float32 gives rounding of the size of the terms. So that
# tests/test_float32_agreement.py (same cases) compares what float32 can compute, the templates:
# give stateful cases (with a BatchNorm) batches of 4 to 6 rows (a variance over n >= 4 values of a
# Dense output is never near zero by chance; with n = 2 it is whenever two rows project alike);
# put a Dense or Conv2D before a BatchNorm without a bias (as one does: the shift replaces it) and
# with at least 2 input features; let a LayerNorm after a Dense normalise at least 3 features (over
# 2 it is +-1 whatever the input, its dE/dX almost all rounding); never put a BatchNorm after a
# Softmax or a LayerNorm after a BatchNorm-ed stack. The float64 gradient check is unaffected.


def _vector_input(draw: st.DrawFn, features: int, stateful: bool) -> np.ndarray:
    batch = draw(st.integers(4, 6)) if stateful else draw(sizes)
    return spread(draw(seeds), (batch, features), draw(SCALES), draw(OFFSETS))


def _image_input(draw: st.DrawFn, channels: int) -> np.ndarray:
    shape = (draw(st.integers(1, 2)), draw(st.integers(2, 3)), draw(st.integers(2, 3)), channels)
    return spread(draw(seeds), shape, draw(SCALES))


def _template(stateful: bool, min_features: int = 1):
    """Turn ``build(draw, f) -> layer`` into a strategy drawing ``(layer, x)`` with x of
    ``(batch, f)``."""

    def wrap(build):
        @st.composite
        def case(draw: st.DrawFn):
            f = draw(st.integers(min_features, 4))
            layer = build(draw, f)
            assert layer.stateful == stateful, f"template {build.__name__}: stateful={layer.stateful}"
            return layer, _vector_input(draw, f, stateful)

        return case()

    return wrap


@_template(stateful=False)
def residual_identity_shortcut(draw, f):
    return Residual(draw(st.sampled_from([_mlp(draw, f, f), _dense(draw, f, f)])))


@_template(stateful=False)
def residual_projection(draw, f):
    g = draw(st.integers(3, 4))
    projection = draw(st.sampled_from([
        _dense(draw, f, g), Sequential([_dense(draw, f, g), LayerNorm(g)]),
    ]))
    return Residual(Sequential([_dense(draw, f, g), draw(SMOOTH_ACTIVATIONS)]), projection=projection)


@_template(stateful=True, min_features=2)
def residual_batchnorm_block(draw, f):
    """Pre-activation (BatchNorm, activation, Dense), BatchNorm alone, or a Dense then BatchNorm."""
    return Residual(draw(st.sampled_from([
        Sequential([BatchNorm(f), draw(AFTER_BATCHNORM), _dense(draw, f, f)]),
        BatchNorm(f, momentum=0.5),
        Sequential([_dense(draw, f, f, bias=False), BatchNorm(f)]),
    ])))


@_template(stateful=True, min_features=2)
def residual_batchnorm_projection(draw, f):
    """A BatchNorm in the block and another in the projection: two states to thread."""
    g = draw(sizes)
    return Residual(Sequential([BatchNorm(f), draw(AFTER_BATCHNORM), _dense(draw, f, g)]),
                    projection=Sequential([_dense(draw, f, g, bias=False), BatchNorm(g)]))


@_template(stateful=False)
def residual_of_parallel(draw, f):
    """A Parallel inside a Residual: a sum of branches, or a concat that gives f features back."""
    if f >= 2 and draw(st.booleans()):
        a = draw(st.integers(1, f - 1))
        return Residual(Parallel([_dense(draw, f, a), _mlp(draw, f, f - a)]))
    return Residual(Parallel([_dense(draw, f, f), _mlp(draw, f, f), Identity()], merge="sum"))


@_template(stateful=True)
def residual_of_parallel_with_batchnorm(draw, f):
    return Residual(Parallel([BatchNorm(f), _mlp(draw, f, f)], merge="sum"))


@_template(stateful=False)
def residual_nested(draw, f):
    """A Residual inside a Sequential inside a Residual."""
    return Residual(Sequential([Residual(_mlp(draw, f, f)), draw(SMOOTH_ACTIVATIONS), _dense(draw, f, f)]))


@_template(stateful=True)
def residual_with_dropout_and_batchnorm(draw, f):
    """Stochastic and stateful: the gradient check fixes the mask with rng_seed."""
    rate = draw(st.sampled_from([0.2, 0.5]))
    return Residual(Sequential([BatchNorm(f), Dropout(rate), _dense(draw, f, f)]))


@st.composite
def residual_conv(draw: st.DrawFn):
    """A ResNet basic block, channels-last: BatchNorm, activation, a 'same' Conv2D; with a 1x1
    Conv2D projection when the channels change."""
    c, c2 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    block = Sequential([BatchNorm(c), draw(AFTER_BATCHNORM), _conv(draw, c, c2, draw(st.integers(1, 3)))])
    layer = Residual(block, projection=None if c == c2 else Conv2D(c, c2, 1))
    return layer, _image_input(draw, c)


@_template(stateful=False)
def parallel_identity_concat(draw, f):
    """DenseNet-style: the input itself beside a transformed copy."""
    return Parallel([Identity(), Sequential([_dense(draw, f, draw(sizes)), draw(SMOOTH_ACTIVATIONS)])])


@_template(stateful=False)
def parallel_sum(draw, f):
    g = draw(sizes)
    return Parallel([_dense(draw, f, g), _dense(draw, f, g), _mlp(draw, f, g)], merge="sum")


@_template(stateful=False)
def parallel_single_branch(draw, f):
    return Parallel([_mlp(draw, f, draw(sizes))], merge=draw(st.sampled_from(["concat", "sum"])))


@_template(stateful=False)
def parallel_of_residuals(draw, f):
    """Residuals inside a Parallel: with the identity shortcut and with a projection."""
    g = draw(sizes)
    if draw(st.booleans()):
        projected = Residual(_dense(draw, f, g), projection=_dense(draw, f, g))
        return Parallel([Residual(_mlp(draw, f, f)), projected])
    return Parallel([Residual(_mlp(draw, f, f)), Residual(_dense(draw, f, f), projection=Identity())],
                    merge="sum")


@_template(stateful=False)
def parallel_nested(draw, f):
    """A Parallel inside a Parallel inside a Sequential branch."""
    g = draw(sizes)
    inner = Parallel([Identity(), _dense(draw, f, g)])
    return Parallel([Sequential([inner, draw(SMOOTH_ACTIVATIONS)]), _dense(draw, f, f + g)],
                    merge="sum")


@_template(stateful=True)
def parallel_normalisations(draw, f):
    return Parallel([BatchNorm(f), LayerNorm(f), Identity()], merge=draw(st.sampled_from(["concat", "sum"])))


@_template(stateful=True, min_features=2)
def parallel_residual_with_batchnorm(draw, f):
    """A stateful Residual inside a Parallel, beside a stateless branch."""
    g = draw(sizes)
    return Parallel([Residual(Sequential([BatchNorm(f), _dense(draw, f, f)])),
                     Sequential([_dense(draw, f, g, bias=False), BatchNorm(g), draw(AFTER_BATCHNORM)])])


@_template(stateful=False)
def parallel_with_dropout(draw, f):
    return Parallel([Dropout(0.5), _dense(draw, f, f)], merge="sum")


@st.composite
def parallel_conv(draw: st.DrawFn):
    """An Inception-style concat of channels: a 1x1 Conv2D beside a 3x3 one with BatchNorm."""
    c, a, b = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    wide = Sequential([_conv(draw, c, b, 3, bias=False), BatchNorm(b), Tanh()])
    layer = Parallel([_conv(draw, c, a, 1), wide])
    return layer, _image_input(draw, c)


@_template(stateful=True, min_features=2)
def sequential_with_state(draw, f):
    """A model of the new layers: Dense, BatchNorm, activation, a pre-activation residual block,
    a head."""
    h, g = draw(sizes), draw(sizes)
    return Sequential([_dense(draw, f, h, bias=False), BatchNorm(h), draw(AFTER_BATCHNORM),
                       Residual(Sequential([BatchNorm(h), _dense(draw, h, h)])), _dense(draw, h, g)])


# name -> (stateful, strategy); every template is checked on its own below, and the registry
# entries of Residual, Parallel and Sequential draw from them.
CONTAINER_TEMPLATES: dict[str, tuple[bool, st.SearchStrategy]] = {
    "residual_identity_shortcut": (False, residual_identity_shortcut),
    "residual_projection": (False, residual_projection),
    "residual_batchnorm_block": (True, residual_batchnorm_block),
    "residual_batchnorm_projection": (True, residual_batchnorm_projection),
    "residual_of_parallel": (False, residual_of_parallel),
    "residual_of_parallel_with_batchnorm": (True, residual_of_parallel_with_batchnorm),
    "residual_nested": (False, residual_nested),
    "residual_with_dropout_and_batchnorm": (True, residual_with_dropout_and_batchnorm),
    "residual_conv": (True, residual_conv()),
    "parallel_identity_concat": (False, parallel_identity_concat),
    "parallel_sum": (False, parallel_sum),
    "parallel_single_branch": (False, parallel_single_branch),
    "parallel_of_residuals": (False, parallel_of_residuals),
    "parallel_nested": (False, parallel_nested),
    "parallel_normalisations": (True, parallel_normalisations),
    "parallel_residual_with_batchnorm": (True, parallel_residual_with_batchnorm),
    "parallel_with_dropout": (False, parallel_with_dropout),
    "parallel_conv": (True, parallel_conv()),
    "sequential_with_state": (True, sequential_with_state),
}


def _templates(prefix: str, stateful: bool | None = None) -> st.SearchStrategy:
    return st.one_of(*[s for name, (sf, s) in CONTAINER_TEMPLATES.items()
                       if name.startswith(prefix) and stateful in (None, sf)])


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
    Sequential: st.one_of(sequential_case(), _templates("sequential")),
    BatchNorm: batchnorm_case(),
    LayerNorm: layernorm_case(),
    Identity: identity_case(),
    Residual: _templates("residual"),
    Parallel: _templates("parallel"),
    **CONV_CASES,
}

# class -> strategy drawing (layer, x) with layer.stateful: the registry's stateful draws
STATEFUL_CASES: dict[type, st.SearchStrategy] = {
    BatchNorm: batchnorm_case(),
    Sequential: _templates("sequential", stateful=True),
    Residual: _templates("residual", stateful=True),
    Parallel: _templates("parallel", stateful=True),
}


@pytest.mark.parametrize("cls", list(LAYER_CASES), ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_layer_gradients_match_finite_differences(cls, data):
    layer, x = data.draw(LAYER_CASES[cls], label="(layer, x)")
    assert type(layer) is cls, f"the registry entry for {cls.__name__} drew a {type(layer).__name__}"
    assert np.asarray(x).dtype == np.float64
    check_gradients(layer, x, rng_seed=0)


def random_params(layer: Any, seed: int) -> Any:
    """``layer.init`` params moved by random amounts: BatchNorm's and LayerNorm's scale starts at
    ones and shift at zeros, where a backward that forgets the scale would still pass."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: np.asarray(a, dtype=np.float64) + 0.5 * rng.standard_normal(np.shape(a)),
                    layer.init(np.random.default_rng(seed)))


def trained_state(layer: Any, params: Any, x: np.ndarray, seed: int) -> Any:
    """A state far from ``init_state()``: one training step on another batch of x's shape, then
    each running mean moved and each running variance scaled at random (momentum 0 would leave
    the step's state at ``init_state()``)."""
    state = tree_map(lambda a: np.asarray(a, dtype=np.float64), layer.init_state())
    _, _, state = layer.forward(params, 2.0 * np.asarray(x)[::-1] + 0.5, state=state, training=True)
    rng = np.random.default_rng(seed)
    leaves = [a * np.exp(0.5 * rng.standard_normal(a.shape)) if path.endswith("['var']")
              else a + 0.5 * rng.standard_normal(a.shape)
              for path, a in zip(tree_paths(state), tree_leaves(state))]
    return tree_unflatten(tree_structure(state), leaves)


@pytest.mark.parametrize("cls", list(STATEFUL_CASES), ids=lambda c: c.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_stateful_layer_gradients_in_evaluation_mode(cls, data):
    """Evaluation mode uses the state's statistics as constants: a different backward
    (dE/dX = dE/dY * scale / sqrt(running_var + eps) for BatchNorm), checked with a trained state."""
    layer, x = data.draw(STATEFUL_CASES[cls], label="(layer, x)")
    assert type(layer) is cls and layer.stateful
    seed = data.draw(seeds, label="seed")
    params = random_params(layer, seed)
    state = trained_state(layer, params, x, seed)
    initial = layer.init_state()
    assert not all(np.allclose(a, b) for a, b in zip(tree_leaves(state), tree_leaves(initial)))
    check_gradients(layer, x, params, rng_seed=0, state=state, training=False)


NEW_LAYERS = (BatchNorm, LayerNorm, Residual, Parallel)


@pytest.mark.parametrize("cls", NEW_LAYERS, ids=lambda c: c.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_normalisation_and_container_gradients_at_random_params(cls, data):
    """The registry test runs at ``init`` params (scale ones, shift zeros); here at random ones."""
    layer, x = data.draw(LAYER_CASES[cls], label="(layer, x)")
    check_gradients(layer, x, random_params(layer, data.draw(seeds, label="seed")), rng_seed=0)


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
    collector runs, which made this check fail at random on a stale copy of a covered layer.
    A base class that defines no ``forward`` (``ShapePreserving``) is not a layer one can run."""
    for info in pkgutil.iter_modules(purenn.layers.__path__):
        importlib.import_module(f"purenn.layers.{info.name}")
    found, todo = set(), [Layer]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            live = getattr(sys.modules.get(sub.__module__), sub.__name__, None) is sub
            runnable = sub.forward is not Layer.forward
            public = sub.__module__.startswith("purenn.") and not sub.__name__.startswith("_")
            if public and live and runnable:
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


def _row_weights(draw: st.DrawFn, batch: int) -> np.ndarray:
    """Weights >= 0 for ``batch`` rows, some of them 0 now and then, all of them 0 rarely."""
    weights = 3 * np.random.default_rng(draw(seeds)).random(batch)
    zeros = draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    return np.where(zeros, 0.0, weights)


@st.composite
def with_options(draw: st.DrawFn, case: Any, *options: str):
    """A case of a loss, with keyword options drawn for it: ``sample_weight`` (per row),
    ``class_weight`` (per class), ``label_smoothing`` (in [0, 1])."""
    y_pred, y_true = draw(case)
    kwargs: dict[str, Any] = {}
    if "sample_weight" in options:
        kwargs["sample_weight"] = _row_weights(draw, y_pred.shape[0])
    if "class_weight" in options:
        kwargs["class_weight"] = _row_weights(draw, y_pred.shape[1]) + draw(st.sampled_from([0.0, 0.5]))
    if "label_smoothing" in options:
        kwargs["label_smoothing"] = draw(st.sampled_from([0.05, 0.3, 1.0]))
    return y_pred, y_true, kwargs


@st.composite
def rows_case(draw: st.DrawFn):
    """``mse_case`` and ``bce_case`` with a batch axis (per-row weights need one)."""
    shape, s = (draw(sizes), *draw(st.lists(sizes, max_size=2))), draw(seeds)
    targets = np.random.default_rng(s + 1).random(shape)
    return 4 * normal(s, shape), targets


CE = softmax_cross_entropy
LOSS_CASES = {
    "mse": (mse, mse_case()),
    "mse[sample_weight]": (mse, with_options(rows_case(), "sample_weight")),
    "softmax_cross_entropy[int labels]": (CE, ce_int_case()),
    "softmax_cross_entropy[rows]": (CE, ce_rows_case()),
    "softmax_cross_entropy[int labels, label_smoothing]": (CE, with_options(ce_int_case(), "label_smoothing")),
    "softmax_cross_entropy[rows, label_smoothing]": (CE, with_options(ce_rows_case(), "label_smoothing")),
    "softmax_cross_entropy[int labels, class_weight]": (CE, with_options(ce_int_case(), "class_weight")),
    "softmax_cross_entropy[rows, class_weight]": (CE, with_options(ce_rows_case(), "class_weight")),
    "softmax_cross_entropy[int labels, sample_weight]": (CE, with_options(ce_int_case(), "sample_weight")),
    "softmax_cross_entropy[int labels, label_smoothing, class_weight, sample_weight]": (
        CE, with_options(ce_int_case(), "label_smoothing", "class_weight", "sample_weight")),
    "softmax_cross_entropy[rows, label_smoothing, class_weight, sample_weight]": (
        CE, with_options(ce_rows_case(), "label_smoothing", "class_weight", "sample_weight")),
    "binary_cross_entropy": (binary_cross_entropy, bce_case()),
    "binary_cross_entropy[sample_weight]": (binary_cross_entropy, with_options(rows_case(), "sample_weight")),
}
NOT_LOSSES = {"one_hot", "as_loss", "decision_threshold", "accepts"}  # public helpers in purenn.losses that are not (y_pred, y_true) losses


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
