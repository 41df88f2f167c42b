"""Hypothesis strategies giving ``(layer, x)`` gradient-check cases for Conv2D, pooling and Dropout.

Every case is valid by construction (the padded input is at least as large as the kernel) and
small (batch 1-3, height/width 1-9, channels 1-5), with ``x`` in float64. Max pooling inputs are
a random permutation of values spaced 0.01 apart, so no window holds a near-tie that the finite
differences (eps ~ 1e-6) could flip.

The layer registry (tests/registry_layers.py) enters each strategy under its class;
tests/layers/test_conv_layers.py draws from them directly. The registry's helpers stay at the top
of tests/, which tests/conftest.py puts on ``sys.path``: a plain ``from layer_strategies_conv
import ...`` then works from any folder and under any import mode.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from purenn.layers.conv import Conv2D
from purenn.layers.dropout import Dropout
from purenn.layers.pooling import AvgPool2D, MaxPool2D

batches = st.integers(1, 3)
channels = st.integers(1, 5)  # 4+ input channels take Conv2D's per-offset backward path
seeds = st.integers(0, 2**32 - 1)


def _normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def conv_case(draw: st.DrawFn) -> tuple[Conv2D, np.ndarray]:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.integers(0, 2),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
        )
    )
    layer = Conv2D(
        draw(channels), draw(channels), (kh, kw), stride=stride, padding=padding,
        use_bias=draw(st.booleans()), dtype="float64",
    )
    if layer.padding == "same":  # "same" always leaves at least one output
        min_h = min_w = 1
    else:  # fixed padding: the padded input must hold the kernel
        (pt, pb), (pl, pr) = layer.pads(0, 0)
        min_h, min_w = max(1, kh - pt - pb), max(1, kw - pl - pr)
    h, w = draw(st.integers(min_h, 9)), draw(st.integers(min_w, 9))
    x = _normal(draw(seeds), (draw(batches), h, w, layer.in_channels))
    return layer, x


def _pool_geometry(draw: st.DrawFn) -> tuple[tuple[int, int], tuple[int, int] | None, int, int]:
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    return pool, stride, draw(st.integers(pool[0], 9)), draw(st.integers(pool[1], 9))


@st.composite
def maxpool_case(draw: st.DrawFn) -> tuple[MaxPool2D, np.ndarray]:
    pool, stride, h, w = _pool_geometry(draw)
    shape = (draw(batches), h, w, draw(channels))
    rng = np.random.default_rng(draw(seeds))
    size = int(np.prod(shape))
    x = (rng.permutation(size) * 0.01 - 0.005 * size).reshape(shape)  # distinct, 0.01 apart
    return MaxPool2D(pool, stride), x


@st.composite
def avgpool_case(draw: st.DrawFn) -> tuple[AvgPool2D, np.ndarray]:
    pool, stride, h, w = _pool_geometry(draw)
    x = _normal(draw(seeds), (draw(batches), h, w, draw(channels)))
    return AvgPool2D(pool, stride), x


@st.composite
def dropout_case(draw: st.DrawFn) -> tuple[Dropout, np.ndarray]:
    rate = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    return Dropout(rate), _normal(draw(seeds), shape)

