"""Strategies of containers (Residual, Parallel, Sequential with state), as named templates.

Each template draws ``(layer, x)``: nested Sequentials, BatchNorm inside, a Residual inside a
Parallel and the reverse, convolutions. The registry entries of ``Residual``, ``Parallel`` and
``Sequential`` (tests/registry_layers.py) draw from them through :func:`templates`, and
tests/test_gradients.py checks every template on its own, so every nesting is run on every test
run.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from purenn.layers import (
    BatchNorm, Conv2D, Dense, Dropout, Identity, LayerNorm, Parallel, Residual, Sequential, Sigmoid, Tanh,
)
from purenn.layers.dense import INITIALIZERS

from layer_strategies import OFFSETS, SCALES, SMOOTH_ACTIVATIONS, seeds, sizes, spread


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


# name -> (stateful, strategy); tests/test_gradients.py checks every template on its own, and the
# registry entries of Residual, Parallel and Sequential draw from them.
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




def templates(prefix: str, stateful: bool | None = None) -> st.SearchStrategy:
    """One of the templates whose name starts with ``prefix`` (and, if given, of that statefulness)."""
    return st.one_of(*[s for name, (sf, s) in CONTAINER_TEMPLATES.items()
                       if name.startswith(prefix) and stateful in (None, sf)])
