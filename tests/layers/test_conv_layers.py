"""Conv2D, MaxPool2D, AvgPool2D and Dropout against naive loop references and by their properties.

Gradients against finite differences are checked by the layer registry in tests/test_gradients.py
on the cases in tests/layer_strategies_conv.py; here forward passes are compared with loops over output
pixels (written for clarity, test-only), pooling backward passes with loops over windows, and
dropout with statistics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn.errors import ShapeError
from purenn.gradcheck import check_gradients
from purenn.layers.activations import ReLU
from purenn.layers.conv import Conv2D
from purenn.layers.dropout import Dropout
from purenn.layers.pooling import AvgPool2D, MaxPool2D
from purenn.layers.sequential import Sequential
from purenn.layers.shape import Flatten

from layer_strategies_conv import avgpool_case, conv_case, maxpool_case  # tests/layer_strategies_conv.py

# ---------------------------------------------------------------- naive references (test only)


def naive_conv(x, w, b, stride, pads):
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw, _, co = w.shape
    sh, sw = stride
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, co))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            y[:, i, j, :] = np.einsum("npqc,pqco->no", window, w) + b
    return y


def reference_pads(height, width, kernel, stride, padding):
    """Zero rows (top, bottom) and columns (left, right) from the documented rules, computed here
    and not asked of the layer: "valid" none; an int or pair p: p on both sides; "same"
    (TensorFlow's rule): out = ceil(in / stride), total = max((out - 1) * stride + k - in, 0),
    total // 2 before and the rest (the odd pixel) after, at the bottom/right."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        pads = []
        for size, k, s in zip((height, width), kernel, stride):
            out = math.ceil(size / s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph), (pw, pw)


def naive_conv_backward(x, w, stride, pads, dy):
    """The adjoint of :func:`naive_conv`, window by window: each output's dE/dY sent back to its
    window of the padded input (then the padding cut off) and to the kernel."""
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    kh, kw = w.shape[:2]
    sh, sw = stride
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            dxp[:, rows, cols, :] += np.einsum("no,pqco->npqc", dy[:, i, j, :], w)
            dw += np.einsum("npqc,no->pqco", xp[:, rows, cols, :], dy[:, i, j, :])
    return dxp[:, pt : pt + x.shape[1], pl : pl + x.shape[2], :], dw


def naive_pool(x, pool, stride, reduce):
    (ph, pw), (sh, sw) = pool, stride
    ho, wo = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i in range(ho):
        for j in range(wo):
            y[:, i, j, :] = reduce(x[:, i * sh : i * sh + ph, j * sw : j * sw + pw, :], axis=(1, 2))
    return y


def naive_maxpool_backward(x, pool, stride, dy):
    """Each window's gradient to its first maximum in row-major order (argmax of the window)."""
    (ph, pw), (sh, sw) = pool, stride
    dx = np.zeros_like(x)
    n, ho, wo, c = dy.shape
    for s in range(n):
        for i in range(ho):
            for j in range(wo):
                for ch in range(c):
                    window = x[s, i * sh : i * sh + ph, j * sw : j * sw + pw, ch]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[s, i * sh + p, j * sw + q, ch] += dy[s, i, j, ch]
    return dx


def naive_avgpool_backward(x_shape, pool, stride, dy):
    (ph, pw), (sh, sw) = pool, stride
    dx = np.zeros(x_shape)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            dx[:, i * sh : i * sh + ph, j * sw : j * sw + pw, :] += dy[:, i : i + 1, j : j + 1, :] / (ph * pw)
    return dx


def expected_conv_hw(size, k, s, padding, axis):
    """The output size from the documented formulas, written independently of the layer."""
    if padding == "valid":
        return (size - k) // s + 1
    if padding == "same":
        return math.ceil(size / s)
    p = padding[axis]
    return (size + 2 * p - k) // s + 1


# ---------------------------------------------------------------- Conv2D


@settings(max_examples=60, deadline=None)
@given(conv_case(), st.integers(0, 2**32 - 1))
def test_conv_forward_matches_naive_loops(case, seed):
    layer, x = case
    params = layer.init(np.random.default_rng(seed))
    if layer.use_bias:  # a non-zero bias, so that adding it is tested too
        params = {**params, "b": np.random.default_rng(seed + 1).standard_normal(layer.out_channels)}
    y, _ = layer.forward(params, x)
    b = params.get("b", np.zeros(layer.out_channels))
    pads = reference_pads(x.shape[1], x.shape[2], layer.kernel_size, layer.stride, layer.padding)
    ref = naive_conv(x, params["w"], b, layer.stride, pads)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_conv_output_shape_follows_padding_formulas(case):
    layer, x = case
    y, _ = layer.forward(layer.init(np.random.default_rng(0)), x)
    n, h, w, _ = x.shape
    expected = (
        n,
        expected_conv_hw(h, layer.kernel_size[0], layer.stride[0], layer.padding, 0),
        expected_conv_hw(w, layer.kernel_size[1], layer.stride[1], layer.padding, 1),
        layer.out_channels,
    )
    assert y.shape == expected == layer.output_shape(x.shape)


@pytest.mark.parametrize(
    "kwargs, in_hw, out_hw",
    [
        ({"kernel_size": 5}, (28, 28), (24, 24)),
        ({"kernel_size": 5, "padding": "same"}, (28, 27), (28, 27)),
        ({"kernel_size": 3, "stride": 2, "padding": "same"}, (28, 27), (14, 14)),
        ({"kernel_size": (5, 3), "padding": (2, 1)}, (10, 10), (10, 10)),
        ({"kernel_size": 3, "stride": (2, 3), "padding": 1}, (7, 7), (4, 3)),
        ({"kernel_size": 4, "stride": 2}, (9, 9), (3, 3)),
    ],
)
def test_conv_output_shape_examples(kwargs, in_hw, out_hw):
    layer = Conv2D(2, 3, **kwargs)
    y, _ = layer.forward(layer.init(np.random.default_rng(0)), np.ones((2, *in_hw, 2)))
    assert y.shape == (2, *out_hw, 3)


def test_conv_same_padding_puts_the_odd_pixel_last():
    # TF convention: 28 -> 14 with k=3, s=2 needs one pixel of padding, placed at the bottom/right
    assert Conv2D(1, 1, 3, stride=2, padding="same").pads(28, 28) == ((0, 1), (0, 1))
    assert Conv2D(1, 1, 4, padding="same").pads(5, 5) == ((1, 2), (1, 2))


def test_conv_same_padding_by_hand():
    """A 2x2 kernel of ones, "same", stride 1: total padding 1 per axis, all of it after the
    image, so each output is the sum of the 2x2 block starting at its own pixel (TensorFlow's
    Conv2D gives exactly these numbers). With the pixel before, every value would differ."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1 2 3] [4 5 6] [7 8 9]]
    layer = Conv2D(1, 1, 2, padding="same", dtype="float64")
    params = {"w": np.ones((2, 2, 1, 1)), "b": np.zeros(1)}
    y, cache = layer.forward(params, x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 16, 9], [24, 28, 15], [15, 17, 9]])
    # dE/dX for dE/dY = ones: how many windows each pixel is in (the last row/column: fewer)
    dx, _ = layer.backward(params, cache, np.ones_like(y))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2, 2], [2, 4, 4], [2, 4, 4]])


@pytest.mark.parametrize("kernel, stride, hw", [
    ((2, 2), (1, 1), (5, 6)),    # total 1 on both axes
    ((4, 3), (1, 1), (5, 5)),    # totals 3 and 2
    ((3, 3), (2, 2), (28, 27)),  # totals 1 and 2
    ((1, 4), (3, 2), (7, 9)),    # totals 0 and 3
    ((3, 2), (2, 3), (8, 7)),    # totals 1 and 1
])
def test_conv_same_padding_with_an_odd_total_matches_tensorflows_rule(kernel, stride, hw):
    """Odd total padding: the extra zero row/column goes after the image (bottom/right). The
    forward pass is checked against loops padded by :func:`reference_pads` (computed from the
    rule, not from the layer), the backward pass against the adjoint of those loops."""
    layer = Conv2D(2, 3, kernel, stride=stride, padding="same", dtype="float64")
    pads = reference_pads(*hw, kernel, stride, "same")
    assert any((before + after) % 2 for before, after in pads)  # the case the test is about
    assert layer.pads(*hw) == pads
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((*kernel, 2, 3)), "b": rng.standard_normal(3)}
    x = rng.standard_normal((2, *hw, 2))
    y, cache = layer.forward(params, x)
    np.testing.assert_allclose(y, naive_conv(x, params["w"], params["b"], stride, pads), rtol=1e-12, atol=1e-12)
    assert y.shape[1:3] == (math.ceil(hw[0] / stride[0]), math.ceil(hw[1] / stride[1]))
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, dy)
    dx_ref, dw_ref = naive_conv_backward(x, params["w"], stride, pads, dy)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["w"], dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["b"], dy.sum(axis=(0, 1, 2)), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(conv_case())
def test_conv_batch_equals_per_sample(case):
    layer, x = case
    params = layer.init(np.random.default_rng(0))
    y, _ = layer.forward(params, x)
    for s in range(x.shape[0]):
        np.testing.assert_allclose(layer.forward(params, x[s : s + 1])[0], y[s : s + 1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer", [Conv2D(3, 2, (2, 3), stride=(2, 1), padding=1), MaxPool2D(2, 1), AvgPool2D(2)])
def test_strided_and_reversed_inputs_give_the_same_result(layer):
    # window views are built from the input's own strides: views must work like copies
    base = np.random.default_rng(0).standard_normal((4, 9, 8, 3))
    params = layer.init(np.random.default_rng(1))
    for view in (base[::2, ::-1, 1:], base.transpose(0, 2, 1, 3)):
        y, cache = layer.forward(params, view)
        y_ref, cache_ref = layer.forward(params, np.ascontiguousarray(view))
        np.testing.assert_allclose(y, y_ref, rtol=1e-12)
        dy = np.random.default_rng(2).standard_normal(y.shape)
        np.testing.assert_allclose(layer.backward(params, cache, dy)[0], layer.backward(params, cache_ref, dy)[0], rtol=1e-12)


def test_empty_batch():
    layer = Conv2D(1, 2, 3)
    params = layer.init(np.random.default_rng(0))
    y, cache = layer.forward(params, np.zeros((0, 5, 5, 1)))
    dx, grads = layer.backward(params, cache, y)
    assert y.shape == (0, 3, 3, 2) and dx.shape == (0, 5, 5, 1) and not grads["w"].any()


def test_conv_float32_stays_float32():
    layer = Conv2D(3, 4, 3, padding="same")
    params = layer.init(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 3))  # float64 in: converted to params' dtype
    y, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, np.ones(y.shape))  # float64 dy: no upcast either
    assert y.dtype == dx.dtype == grads["w"].dtype == grads["b"].dtype == np.float32
    assert dx.shape == x.shape and grads["w"].shape == params["w"].shape


def _normal_cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.mark.parametrize("initializer", ["he", "glorot"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_init(initializer, dtype):
    """The documented distributions, checked by their statistics on 18432 weights (sample
    moments within ~1 % of the truth, so 4 % bounds are real checks): he is normal with std
    sqrt(2 / fan_in); glorot is uniform on [-limit, limit], limit = sqrt(6 / (fan_in + fan_out));
    fan_in = kh kw in_channels = 288 and fan_out = kh kw out_channels = 576 differ by 2x, so a
    swapped or wrongly computed fan is off by 20 % or more; the bias starts at zero."""
    layer = Conv2D(32, 64, 3, initializer=initializer, dtype=dtype)
    params = layer.init(np.random.default_rng(0))
    w, b = params["w"], params["b"]
    assert w.shape == (3, 3, 32, 64) and b.shape == (64,)
    assert w.dtype == b.dtype == np.dtype(dtype)
    assert not w.flags.writeable and not b.flags.writeable
    np.testing.assert_array_equal(b, np.zeros(64))
    fan_in, fan_out = 3 * 3 * 32, 3 * 3 * 64
    w = w.astype(np.float64).ravel()
    if initializer == "he":
        std = math.sqrt(2 / fan_in)
        assert abs(w.std() / std - 1) < 0.04
        assert abs(w.mean()) < 0.04 * std
        # normal, not uniform or anything else with that std: 68.3 % within one std, 95.4 % within two
        assert abs(np.mean(np.abs(w) < std) - (2 * _normal_cdf(1) - 1)) < 0.015
        assert abs(np.mean(np.abs(w) < 2 * std) - (2 * _normal_cdf(2) - 1)) < 0.01
        assert np.abs(w).max() > 3 * std
    else:
        limit = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.999 * limit
        assert abs(w.std() / (limit / math.sqrt(3)) - 1) < 0.04
        assert abs(w.mean()) < 0.04 * limit
        # uniform: each tenth of [-limit, limit] holds a tenth of the weights
        counts, _ = np.histogram(w, bins=10, range=(-limit, limit))
        np.testing.assert_allclose(counts / w.size, 0.1, atol=0.01)
    assert "b" not in Conv2D(8, 16, 3, use_bias=False).init(np.random.default_rng(0))
    np.testing.assert_array_equal(params["w"], layer.init(np.random.default_rng(0))["w"])
    assert not np.array_equal(params["w"], layer.init(np.random.default_rng(1))["w"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel_size": 0}, "`kernel_size` must be a positive integer or a pair"),
        ({"kernel_size": (3,)}, r"`kernel_size` .* got \(3,\)"),
        ({"kernel_size": 2.5}, "`kernel_size` .* got 2.5"),
        ({"kernel_size": 3, "stride": 0}, "`stride` must be a positive int"),
        ({"kernel_size": 3, "padding": "full"}, "`padding` must be 'valid', 'same'.* got 'full'"),
        ({"kernel_size": 3, "padding": -1}, r"`padding` .* got \(-1, -1\)"),
        ({"kernel_size": 3, "padding": (1.5, 1)}, r"`padding` .* got \(1.5, 1\)"),
        ({"kernel_size": (2, 2.0)}, r"`kernel_size` .* got \(2, 2.0\)"),
        ({"kernel_size": 3, "initializer": "zeros"}, "`initializer` must be one of"),
        ({"kernel_size": 3, "dtype": "int32"}, "`dtype` must be one of"),
    ],
)
def test_conv_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(1, 2, **kwargs)


def test_conv_rejects_bad_channel_counts():
    with pytest.raises(ValueError, match=r"`in_channels` must be a positive integer below 2\*\*31, got 0"):
        Conv2D(0, 2, 3)


@pytest.mark.parametrize("shape", [(2, 5, 5), (2, 5, 5, 2), (5, 5, 3, 1, 1)])
def test_conv_shape_error_names_layer_and_expected_shape(shape):
    layer = Conv2D(3, 2, 3)
    with pytest.raises(ShapeError, match=r"Conv2D\(in_channels=3.*expected input of shape \(batch, height, width, 3\)"):
        layer.forward(layer.init(np.random.default_rng(0)), np.zeros(shape))


def test_conv_input_smaller_than_kernel():
    layer = Conv2D(1, 2, 5)
    params = layer.init(np.random.default_rng(0))
    with pytest.raises(ShapeError, match=r"height x width 4 x 6 .* smaller than the 5 x 5 kernel"):
        layer.forward(params, np.zeros((1, 4, 6, 1)))
    # enough padding makes it fit
    y, _ = Conv2D(1, 2, 5, padding=1).forward(params, np.zeros((1, 4, 6, 1)))
    assert y.shape == (1, 2, 4, 2)


# ---------------------------------------------------------------- pooling


@settings(max_examples=60, deadline=None)
@given(maxpool_case(), st.integers(0, 2**32 - 1))
def test_maxpool_matches_naive_loops(case, seed):
    layer, x = case
    y, cache = layer.forward({}, x)
    np.testing.assert_array_equal(y, naive_pool(x, layer.pool_size, layer.strides, np.max))
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, grads = layer.backward({}, cache, dy)
    np.testing.assert_allclose(dx, naive_maxpool_backward(x, layer.pool_size, layer.strides, dy), atol=1e-12)
    assert grads == {}


@settings(max_examples=40, deadline=None)
@given(maxpool_case(), st.integers(0, 2**32 - 1))
def test_maxpool_ties_go_to_the_first_maximum_only(case, seed):
    # integer inputs from {0, 1, 2}: windows full of ties, as after a ReLU
    layer, x = case
    x = np.random.default_rng(seed).integers(0, 3, x.shape).astype(np.float64)
    y, cache = layer.forward({}, x)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dx, _ = layer.backward({}, cache, dy)
    np.testing.assert_allclose(dx, naive_maxpool_backward(x, layer.pool_size, layer.strides, dy), atol=1e-12)


def test_maxpool_all_equal_window_sends_gradient_to_top_left():
    x = np.zeros((1, 4, 4, 2), dtype=np.float32)
    layer = MaxPool2D()
    y, cache = layer.forward({}, x)
    dx, _ = layer.backward({}, cache, np.ones(y.shape, dtype=np.float32))
    expected = np.zeros_like(x)
    expected[:, ::2, ::2, :] = 1
    np.testing.assert_array_equal(dx, expected)
    assert dx.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(avgpool_case(), st.integers(0, 2**32 - 1))
def test_avgpool_matches_naive_loops(case, seed):
    layer, x = case
    y, cache = layer.forward({}, x)
    np.testing.assert_allclose(y, naive_pool(x, layer.pool_size, layer.strides, np.mean), rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, _ = layer.backward({}, cache, dy)
    np.testing.assert_allclose(dx, naive_avgpool_backward(x.shape, layer.pool_size, layer.strides, dy), atol=1e-12)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_overlapping_and_default_stride(cls):
    x = np.arange(2 * 7 * 6 * 3, dtype=np.float32).reshape(2, 7, 6, 3) % 11
    reduce = np.max if cls is MaxPool2D else np.mean
    for layer, stride in [(cls(), (2, 2)), (cls(3, 1), (1, 1)), (cls((3, 2), (2, 1)), (2, 1))]:
        assert layer.strides == stride
        y, _ = layer.forward({}, x)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, naive_pool(x, layer.pool_size, stride, reduce), rtol=1e-6)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_errors(cls):
    with pytest.raises(ValueError, match="`pool_size` must be a positive integer or a pair"):
        cls(0)
    with pytest.raises(ValueError, match=r"`stride` .* got \(1, 0\)"):
        cls(2, (1, 0))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, height, width, channels\), got \(4, 4, 1\)"):
        cls().forward({}, np.zeros((4, 4, 1)))
    with pytest.raises(ShapeError, match=r"3 x 5 is smaller than the 4 x 4 pooling window"):
        cls(4).forward({}, np.zeros((1, 3, 5, 1)))


# ---------------------------------------------------------------- Dropout


def test_dropout_without_rng_is_identity():
    x = np.random.default_rng(0).standard_normal((4, 5))
    layer = Dropout(0.5)
    y, cache = layer.forward({}, x)
    np.testing.assert_array_equal(y, x)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward({}, cache, dy)[0], dy)
    assert Dropout.stochastic and layer.init(np.random.default_rng(0)) == {}


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_statistics(rate, dtype):
    n = 200_000
    x = np.ones(n, dtype=dtype)
    y, cache = Dropout(rate).forward({}, x, rng=np.random.default_rng(123))
    assert y.dtype == dtype
    dropped = y == 0
    sigma = math.sqrt(rate * (1 - rate) / n)
    assert abs(dropped.mean() - rate) < 5 * sigma
    # inverted scaling: kept units are 1 / (1 - rate), so the mean stays 1 (std of the mean:
    # sqrt(rate / ((1 - rate) n)))
    np.testing.assert_allclose(y[~dropped], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1) < 5 * math.sqrt(rate / ((1 - rate) * n))
    # backward masks exactly the same units, with the same scale
    dy = np.random.default_rng(7).standard_normal(n).astype(dtype)
    dx, grads = Dropout(rate).backward({}, cache, dy)
    np.testing.assert_array_equal(dx == 0, dropped | (dy == 0))
    np.testing.assert_allclose(dx[~dropped], dy[~dropped] / (1 - rate), rtol=1e-6)
    assert grads == {}


def test_dropout_same_seed_same_mask_and_rate_zero_is_identity():
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    layer = Dropout(0.3)
    y1, _ = layer.forward({}, x, rng=np.random.default_rng(42))
    y2, _ = layer.forward({}, x, rng=np.random.default_rng(42))
    y3, _ = layer.forward({}, x, rng=np.random.default_rng(43))
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    y0, cache = Dropout(0.0).forward({}, x, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(y0, x)
    np.testing.assert_array_equal(Dropout(0.0).backward({}, cache, x)[0], x)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_dropout_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match=r"`rate` must be the probability of dropping a unit, a real number in \[0, 1\), got"):
        Dropout(rate)


# ---------------------------------------------------------------- together


def small_cnn(dtype="float32"):
    return Sequential([
        Conv2D(1, 4, 3, padding="same", dtype=dtype), ReLU(), MaxPool2D(), Dropout(0.5),
        Conv2D(4, 6, 3, dtype=dtype), ReLU(), AvgPool2D(), Flatten(),
    ])


def naive_small_cnn(params, x, keep_scale=None):
    """:func:`small_cnn` from the naive loops, in float64; ``keep_scale`` (the dropout factor,
    0 or 1 / (1 - rate) per unit) in training mode, nothing (the identity) in evaluation."""
    x = x.astype(np.float64)
    (c1, _, _, _, c2, _, _, _) = params
    h = naive_conv(x, c1["w"].astype(np.float64), c1["b"], (1, 1),
                   reference_pads(x.shape[1], x.shape[2], (3, 3), (1, 1), "same"))
    h = naive_pool(np.maximum(h, 0), (2, 2), (2, 2), np.max)
    if keep_scale is not None:
        h = h * keep_scale
    h = naive_conv(h, c2["w"].astype(np.float64), c2["b"], (1, 1), ((0, 0), (0, 0)))
    h = naive_pool(np.maximum(h, 0), (2, 2), (2, 2), np.mean)
    return h.reshape(len(h), -1)


def test_small_cnn_in_sequential():
    """Conv, ReLU, max pooling, dropout, conv, ReLU, average pooling, flatten in one Sequential:
    the outputs are those of the naive loops chained by hand (in evaluation mode, and in training
    mode with the dropout mask the forward pass drew); the backward pass agrees with finite
    differences through the whole stack (float64, a fixed dropout mask)."""
    model = small_cnn()
    rng = np.random.default_rng(0)
    params = model.init(rng)
    params = (  # non-zero biases, so that adding them is checked too
        {**params[0], "b": rng.standard_normal(4).astype(np.float32) * 0.1}, *params[1:4],
        {**params[4], "b": rng.standard_normal(6).astype(np.float32) * 0.1}, *params[5:],
    )
    x = np.random.default_rng(1).random((5, 12, 12, 1)).astype(np.float32)
    y_eval, _ = model.forward(params, x)
    assert y_eval.shape == (5, 2 * 2 * 6) and y_eval.dtype == np.float32
    np.testing.assert_allclose(y_eval, naive_small_cnn(params, x), rtol=1e-5, atol=1e-6)

    y_train, cache = model.forward(params, x, rng=np.random.default_rng(2))
    keep_scale = cache[3]  # dropout's factor: 0 where dropped, 1 / (1 - 0.5) where kept
    assert keep_scale.shape == (5, 6, 6, 4) and set(np.unique(keep_scale)) == {0.0, 2.0}
    assert 0.35 < np.mean(keep_scale == 0) < 0.65
    np.testing.assert_allclose(y_train, naive_small_cnn(params, x, keep_scale), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(y_eval, y_train)

    dx, grads = model.backward(params, cache, np.ones_like(y_train))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert [tree_shapes(g) for g in grads] == [tree_shapes(p) for p in params]
    assert all(g.dtype == np.float32 for g in (grads[0]["w"], grads[0]["b"], grads[4]["w"], grads[4]["b"]))

    model64 = small_cnn("float64")
    params64 = tuple({k: v.astype(np.float64) for k, v in p.items()} for p in params)
    check_gradients(model64, x.astype(np.float64), params=params64, rng_seed=3)


def tree_shapes(tree):
    return {k: v.shape for k, v in tree.items()}
