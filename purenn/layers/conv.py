"""2-D convolution (cross-correlation, as in every deep-learning library), channels-last."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.layers.base import Layer, shape_error
from purenn.layers.windows import col2im, im2col, im2col_transposed, output_size, same_padding
from purenn.tree import readonly
from purenn.validation import (
    Rule, array_size, as_float_array, boolean, float_dtype, one_of, positive_pair, to_int, to_pair,
)

__all__ = ["Conv2D"]

CONV_INITIALIZERS = ("he", "glorot")


def _to_padding(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    return to_pair(value)


_padding = Rule(
    "'valid', 'same', a non-negative int or a pair (pad_height, pad_width)",
    lambda v: True,
    lambda v: v in ("valid", "same") or (positive_pair.kind(v) and min(v) >= 0),
)


@attrs.frozen
class Conv2D(Layer):
    """Y[n, i, j, o] = b[o] + sum over (p, q, c) of Xpad[n, i*sh + p, j*sw + q, c] W[p, q, c, o].

    Layout is channels-last: ``x`` has shape ``(batch, height, width, in_channels)`` and ``y`` has
    shape ``(batch, out_height, out_width, out_channels)``. Params: ``w`` of shape
    ``(kh, kw, in_channels, out_channels)`` and ``b`` of shape ``(out_channels,)``. With this
    layout every window is one contiguous row of the im2col matrix ``C`` of shape
    ``(batch * out_height * out_width, kh * kw * in_channels)`` and, with ``W2 = w.reshape(-1,
    out_channels)``, the layer is a Dense layer on those rows::

        Y = C W2 + b          dE/dW2 = C^T dE/dY      dE/db = sum of dE/dY over rows
        dE/dC = dE/dY W2^T    dE/dX = col2im(dE/dC)   (each window's gradient added back)

    ``padding`` (zeros):
      - ``"valid"`` (default): none; out = (in - k) // stride + 1.
      - ``"same"``: TensorFlow's convention, for any stride: out = ceil(in / stride), with total
        padding max((out - 1) * stride + k - in, 0) split evenly, the odd pixel at the bottom/right.
        For stride 1 the output has the input's size.
      - an int ``p`` or a pair ``(ph, pw)``: that many zero rows/columns on each side;
        out = (in + 2p - k) // stride + 1.
    ``initializer``: ``"he"`` (default; normal, std sqrt(2 / fan_in), for ReLU networks) or
    ``"glorot"`` (uniform, limit sqrt(6 / (fan_in + fan_out))), where fan_in = kh * kw * in_channels
    and fan_out = kh * kw * out_channels; the bias starts at zero.
    ``dtype``: the params' dtype; inputs are converted to it (float32 keeps everything float32).
    """

    fresh_grads: ClassVar[bool] = True

    in_channels: int = attrs.field(converter=to_int, validator=array_size)
    out_channels: int = attrs.field(converter=to_int, validator=array_size)
    kernel_size: tuple[int, int] = attrs.field(converter=to_pair, validator=positive_pair)
    stride: tuple[int, int] = attrs.field(default=(1, 1), converter=to_pair, validator=positive_pair)
    padding: str | tuple[int, int] = attrs.field(
        default="valid", converter=_to_padding, validator=_padding
    )
    use_bias: bool = attrs.field(default=True, validator=boolean)
    initializer: str = attrs.field(default="he", validator=one_of(CONV_INITIALIZERS))
    dtype: str = attrs.field(default="float32", validator=float_dtype)

    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        kh, kw = self.kernel_size
        shape = (kh, kw, self.in_channels, self.out_channels)
        fan_in, fan_out = kh * kw * self.in_channels, kh * kw * self.out_channels
        if self.initializer == "he":
            w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, shape)
        params = {"w": readonly(w.astype(self.dtype))}
        if self.use_bias:
            params["b"] = readonly(np.zeros(self.out_channels, dtype=self.dtype))
        return params

    def param_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``init``'s shapes and dtypes without allocating (see :class:`~purenn.layers.base.Layer`)."""
        kh, kw = self.kernel_size
        shapes: dict[str, tuple[tuple[int, ...], str]] = {
            "w": ((kh, kw, self.in_channels, self.out_channels), self.dtype)
        }
        if self.use_bias:
            shapes["b"] = ((self.out_channels,), self.dtype)
        return shapes

    def pads(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Zero rows (top, bottom) and columns (left, right) added to a ``height x width`` input."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            return (
                same_padding(height, self.kernel_size[0], self.stride[0]),
                same_padding(width, self.kernel_size[1], self.stride[1]),
            )
        ph, pw = cast("tuple[int, int]", self.padding)  # neither string: a pair
        return (ph, ph), (pw, pw)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(batch, height, width, in_channels)`` -> ``(batch, out_height, out_width, out_channels)``."""
        if len(input_shape) != 4 or input_shape[3] != self.in_channels:
            raise shape_error(self, f"(batch, height, width, {self.in_channels})", input_shape)
        n, h, w, _ = input_shape
        (pt, pb), (pl, pr) = self.pads(h, w)
        return (
            n,
            output_size(h + pt + pb, self.kernel_size[0], self.stride[0]),
            output_size(w + pl + pr, self.kernel_size[1], self.stride[1]),
            self.out_channels,
        )

    def forward(self, params: dict[str, np.ndarray], x: Any):
        w = params["w"]
        x = as_float_array(x, self, w.dtype)
        if x.ndim != 4 or x.shape[3] != self.in_channels:
            raise shape_error(self, f"(batch, height, width, {self.in_channels})", x.shape)
        n, h, wd, c = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (pt, pb), (pl, pr) = self.pads(h, wd)
        if h + pt + pb < kh or wd + pl + pr < kw:
            raise ShapeError(
                f"{self!r}: input of height x width {h} x {wd} (padded to {h + pt + pb} x "
                f"{wd + pl + pr}) is smaller than the {kh} x {kw} kernel; use larger inputs, a "
                "smaller kernel or more padding"
            )
        if pt or pb or pl or pr:
            xp = np.zeros((n, h + pt + pb, wd + pl + pr, c), dtype=x.dtype)
            xp[:, pt : pt + h, pl : pl + wd, :] = x
        else:
            xp = x
        w2 = w.reshape(-1, self.out_channels)
        if c < _PER_OFFSET_MIN_CHANNELS:
            # thin input: build C^T, rows of whole images, with a row of ones when there is a
            # bias, which then rides along in the products: Y = [C 1] [W2; b] and, in backward,
            # [C 1]^T dE/dY = [dE/dW2; dE/db] (no separate pass over Y or dE/dY for it)
            cols_t = im2col_transposed(xp, kh, kw, sh, sw, ones_row=self.use_bias)
            if self.use_bias:
                w2 = np.concatenate([w2, params["b"][None]])
            y = cols_t.T @ w2
        else:
            cols_t = im2col(xp, kh, kw, sh, sw).T  # a view: C itself stays C-contiguous
            y = cols_t.T @ w2
            if self.use_bias:
                y += params["b"]
        ho, wo = output_size(xp.shape[1], kh, sh), output_size(xp.shape[2], kw, sw)
        # the backward pass reuses C (as C^T) instead of rebuilding it
        return y.reshape(n, ho, wo, self.out_channels), (cols_t, x.shape, xp.shape, (pt, pl))

    def backward(self, params: dict[str, np.ndarray], cache: tuple, dy: np.ndarray):
        cols_t, x_shape, padded_shape, (pt, pl) = cache
        w = params["w"]
        n, ho, wo, _ = dy.shape
        dy2 = np.asarray(dy, dtype=w.dtype).reshape(-1, self.out_channels)
        grads = self._grads(params, cols_t, dy2)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.in_channels >= _PER_OFFSET_MIN_CHANNELS:
            dxp = _input_gradient_per_offset(dy2, w, (n, ho, wo), padded_shape, sh, sw)
        else:
            dcols = (dy2 @ w.reshape(-1, self.out_channels).T).reshape(n, ho, wo, kh, kw, self.in_channels)
            dxp = col2im(dcols, padded_shape, sh, sw)
        if dxp.shape != x_shape:
            dxp = dxp[:, pt : pt + x_shape[1], pl : pl + x_shape[2], :]
        return dxp, grads

    def param_grads(self, params: dict[str, np.ndarray], cache: tuple, dy: np.ndarray):
        """``backward``'s grads alone, without dE/dX: for a model's first conv, whose input is data."""
        dy2 = np.asarray(dy, dtype=params["w"].dtype).reshape(-1, self.out_channels)
        return self._grads(params, cache[0], dy2)

    def _grads(self, params: dict[str, np.ndarray], cols_t: np.ndarray, dy2: np.ndarray):
        """dE/dW = C^T dE/dY (C: the im2col matrix the forward pass kept); dE/db = column sums,
        which a ``C^T`` with a row of ones (thin inputs) gives as the product's last row."""
        g = cols_t @ dy2
        k = params["w"].size // self.out_channels
        if len(g) > k:  # the row of ones: dE/db
            return {"w": g[:k].reshape(params["w"].shape), "b": g[k]}
        grads = {"w": g.reshape(params["w"].shape)}
        if self.use_bias:
            # the same sum as a matrix-vector product: several times faster than dy2.sum(axis=0)
            grads["b"] = np.ones(len(dy2), dtype=dy2.dtype) @ dy2
        return grads


# From this many input channels on, dE/dX is built kernel row by kernel row (below) rather than
# through the full dE/dC matrix and col2im: each step's block is then contiguous, and the
# scattered adds run over whole rows. With 1-3 channels the products are too thin for BLAS and
# col2im wins; the forward pass then builds C^T rather than C (far fewer, longer copies), which
# BLAS multiplies just as fast.
_PER_OFFSET_MIN_CHANNELS = 4


def _input_gradient_per_offset(
    dy2: np.ndarray, w: np.ndarray, out_shape: tuple[int, int, int], padded_shape: tuple, sh: int, sw: int
) -> np.ndarray:
    """dE/dXpad = sum over kernel offsets (p, q) of dE/dY W[p, q]^T, added at that offset's window
    positions: the same sum as ``col2im(dE/dY W2^T)``, a kernel row at a time.

    For kernel row p, one product ``dE/dY W[p]^T`` gives the gradients of all ``kw`` offsets of
    that row, ``(batch, Ho, Wo, kw * C)``; it is added to a buffer ``U`` indexed by input row,
    output column and kernel column (a contiguous block per row). Folding ``U``'s kernel columns
    onto the input's columns (``kw`` strided adds) then gives dE/dXpad: ``kh + kw`` adds in all
    instead of ``kh * kw``, each over contiguous rows."""
    n, ho, wo = out_shape
    kh, kw, c, o = w.shape
    hp = padded_shape[1]
    u = np.zeros((n, hp, wo, kw * c), dtype=dy2.dtype)
    block = np.empty((n, ho, wo, kw * c), dtype=dy2.dtype)
    rows = block.reshape(-1, kw * c)
    for i in range(kh):
        np.matmul(dy2, w[i].reshape(kw * c, o).T, out=rows)
        u[:, i : i + sh * (ho - 1) + 1 : sh] += block
    u5 = u.reshape(n, hp, wo, kw, c)
    dxp = np.zeros(padded_shape, dtype=dy2.dtype)
    for j in range(kw):
        dxp[:, :, j : j + sw * (wo - 1) + 1 : sw, :] += u5[:, :, :, j, :]
    return dxp
