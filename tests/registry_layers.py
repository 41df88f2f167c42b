"""The layer registry: every layer class and a Hypothesis strategy of valid examples of it.

``LAYERS[cls]`` is an :class:`Entry`: ``cases``, a strategy drawing ``(layer, x)``, a layer of
exactly that class with varied hyperparameters and a float64 input it takes; and ``rule``, its
forward pass written in plain NumPy (``None`` where the layer's own test file compares it with a
loop). Registering a class here is all a new layer needs to be put through every check that must
know it:

- finite differences of ``backward`` (and ``param_grads``), in training mode at random params and,
  for a stateful draw, in evaluation mode with a trained state (tests/test_gradients.py);
- its float32 path against its float64 path (tests/test_float32_agreement.py);
- its forward pass against ``rule``; ``output_shape``, ``param_shapes`` and ``state_shapes`` against
  what ``forward``, ``init`` and ``init_state`` give; read-only params; non-numeric input refused;
  integer input computed as float32; each sample alone in evaluation mode
  (tests/layers/test_every_layer.py);
- ``summary`` against a forward pass (tests/test_summary.py);
- a JSON round trip through purenn.io.serialize (tests/io/test_serialize.py);
- ``fresh_grads``: ``check_gradients`` refuses grads that share memory with anything else.

tests/test_registries.py fails, naming the class, while a public layer class of purenn.layers has
no entry. Strategies of one layer sit here beside its entry; the shared building blocks are in
tests/layer_strategies.py, convolution and pooling in tests/layer_strategies_conv.py, containers in
tests/layer_strategies_blocks.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

from purenn.layers import (
    GELU, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, Identity, LayerNorm, LeakyReLU,
    MaxPool2D, Parallel, ReLU, Reshape, Residual, Sequential, Sigmoid, Softmax, Tanh,
)
from purenn.layers.dense import INITIALIZERS

from layer_strategies import DTYPES, OFFSETS, SCALES, SMOOTH_ACTIVATIONS, normal, seeds, shapes, sizes, spread
from layer_strategies_blocks import templates
from layer_strategies_conv import avgpool_case, conv_case, dropout_case, maxpool_case

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


@st.composite
def sequential_case(draw: st.DrawFn):
    """A random Dense/activation stack, sometimes behind a Flatten, sometimes with a nested
    Sequential (and a Sequential nested in that)."""
    widths = draw(st.lists(sizes, min_size=2, max_size=4))
    layers: list[Any] = []
    for a, b in itertools.pairwise(widths):
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



# --- forward in plain NumPy, evaluation mode: (layer, params, x) -> y ---------------------------


def dense_rule(layer: Dense, params: Any, x: np.ndarray) -> np.ndarray:
    return x @ params["w"] + (params["b"] if layer.use_bias else 0.0)


def sigmoid_rule(layer: Sigmoid, params: Any, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def leaky_relu_rule(layer: LeakyReLU, params: Any, x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, layer.negative_slope * x)


def gelu_rule(layer: GELU, params: Any, x: np.ndarray) -> np.ndarray:
    """Hendrycks & Gimpel's tanh approximation."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def softmax_rule(layer: Softmax, params: Any, x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / e.sum(axis=layer.axis, keepdims=True)


def layernorm_rule(layer: LayerNorm, params: Any, x: np.ndarray) -> np.ndarray:
    """Ba et al. 2016: each sample's features to mean 0 and variance 1, then scaled and shifted."""
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.eps) * params["scale"] + params["shift"]


class Entry(NamedTuple):
    """A registered layer class: a strategy of its examples, and its forward pass (evaluation
    mode) written in plain NumPy, if given here (convolution, pooling and BatchNorm are compared
    with loops in their own test files; containers are their children composed)."""

    cases: st.SearchStrategy  # draws (layer, x)
    rule: Callable[[Any, Any, np.ndarray], np.ndarray] | None = None


LAYERS: dict[type, Entry] = {
    Dense: Entry(dense_case(), dense_rule),
    Tanh: Entry(activation_case(lambda draw: Tanh()), lambda layer, params, x: np.tanh(x)),
    Sigmoid: Entry(activation_case(lambda draw: Sigmoid()), sigmoid_rule),
    ReLU: Entry(activation_case(lambda draw: ReLU()), lambda layer, params, x: np.maximum(x, 0.0)),
    LeakyReLU: Entry(activation_case(lambda draw: LeakyReLU(draw(slopes))), leaky_relu_rule),
    GELU: Entry(activation_case(lambda draw: GELU()), gelu_rule),
    Softmax: Entry(softmax_case(), softmax_rule),
    Flatten: Entry(flatten_case(), lambda layer, params, x: x.reshape(len(x), -1)),
    Reshape: Entry(reshape_case(), lambda layer, params, x: x.reshape(len(x), *layer.shape)),
    Sequential: Entry(st.one_of(sequential_case(), templates("sequential"))),
    Conv2D: Entry(conv_case()),
    MaxPool2D: Entry(maxpool_case()),
    AvgPool2D: Entry(avgpool_case()),
    Dropout: Entry(dropout_case(), lambda layer, params, x: x),  # evaluation mode: the identity
    BatchNorm: Entry(batchnorm_case()),
    LayerNorm: Entry(layernorm_case(), layernorm_rule),
    Identity: Entry(identity_case(), lambda layer, params, x: x),
    Residual: Entry(templates("residual")),
    Parallel: Entry(templates("parallel")),
}
