"""Max and average pooling over 2-D windows, channels-last, without padding.

Input ``(batch, height, width, channels)``, output ``(batch, out_height, out_width, channels)``
with ``out = (in - pool) // stride + 1`` per axis (rows/columns that no window reaches are ignored
and get zero gradient). Both layers loop over the ``ph * pw`` offsets inside a window, never over
samples or pixels; each step works on a strided ``(batch, out_height, out_width, channels)`` slice
of the input, whose innermost axis (channels) stays contiguous.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.layers.base import Layer, shape_error
from purenn.layers.windows import offset_index, output_size
from purenn.validation import as_float_array, optional, positive_pair, to_pair

__all__ = ["AvgPool2D", "MaxPool2D"]


@attrs.frozen
class _Pool2D(Layer):
    fresh_grads: ClassVar[bool] = True

    pool_size: tuple[int, int] = attrs.field(default=(2, 2), converter=to_pair, validator=positive_pair)
    stride: tuple[int, int] | None = attrs.field(
        default=None, converter=to_pair, validator=optional(positive_pair)
    )

    @property
    def strides(self) -> tuple[int, int]:
        """The stride actually used: ``stride``, or ``pool_size`` when it is None."""
        return self.pool_size if self.stride is None else self.stride

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(batch, height, width, channels)`` -> ``(batch, out_height, out_width, channels)``."""
        if len(input_shape) != 4 or input_shape[1] < self.pool_size[0] or input_shape[2] < self.pool_size[1]:
            raise shape_error(self, f"(batch, height, width, channels), at least the {self.pool_size} window",
                              input_shape)
        n, h, w, c = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return (n, output_size(h, ph, sh), output_size(w, pw, sw), c)

    def _check(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self)
        if x.ndim != 4:
            raise shape_error(self, "(batch, height, width, channels)", x.shape)
        ph, pw = self.pool_size
        if x.shape[1] < ph or x.shape[2] < pw:
            raise ShapeError(
                f"{self!r}: input of height x width {x.shape[1]} x {x.shape[2]} is smaller than "
                f"the {ph} x {pw} pooling window; use a smaller pool_size or larger inputs"
            )
        return x

    def _slices(self, ho: int, wo: int):
        """(k, i, j, index) for every offset (i, j) of the window, in row-major order."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        for i in range(ph):
            for j in range(pw):
                yield i * pw + j, offset_index(i, j, ho, wo, sh, sw)

    @property
    def _disjoint(self) -> bool:
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return sh >= ph and sw >= pw


@attrs.frozen
class MaxPool2D(_Pool2D):
    """Y[n, i, j, c] = max over the window at (i * sh, j * sw) of X[n, ., ., c].

    ``pool_size``: int or (ph, pw), default 2; ``stride``: int or (sh, sw), default ``pool_size``
    (non-overlapping windows). Overlapping windows (stride < pool_size) are allowed: an input that
    is the maximum of several windows receives the sum of their gradients.

    Ties: each window sends its gradient to exactly one input, the first maximum in row-major
    window order (topmost row, then leftmost column) -- the one ``argmax`` of the flattened
    ``(ph, pw)`` window would pick. So a window of equal values (e.g. zeros after a ReLU) passes
    dE/dY to its top-left element only; the sum of dE/dX over a window always equals dE/dY.
    """

    def forward(self, params: Any, x: Any):
        x = self._check(x)
        n, h, w, c = x.shape
        _, ho, wo, _ = self.output_shape(x.shape)
        y = np.empty((n, ho, wo, c), dtype=x.dtype)
        idx_dtype = np.dtype(np.uint8 if self.pool_size[0] * self.pool_size[1] <= 256 else np.intp)
        idx = np.empty(y.shape, dtype=idx_dtype)
        for rows in _chunks(x):
            self._forward_into(x[rows], y[rows], idx[rows])
        return y, (idx, x.shape, x.dtype)

    def _forward_into(self, x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> None:
        slices = self._slices(*y.shape[1:3])
        _, first = next(slices)
        np.copyto(y, x[first])
        idx.fill(0)
        better = np.empty(y.shape, dtype=bool)
        step = np.empty(y.shape, dtype=idx.dtype)
        for k, where in slices:
            v = x[where]
            np.greater(v, y, out=better)  # strict: the earlier offset wins ties
            np.maximum(y, v, out=y)
            # offsets come in increasing k, so "idx = k where better" is a maximum, which is
            # branch-free and much faster than a masked assignment on random masks
            np.multiply(better, idx.dtype.type(k), out=step)
            np.maximum(idx, step, out=idx)

    def backward(self, params: Any, cache: tuple, dy: np.ndarray):
        idx, x_shape, dtype = cache
        dy = np.asarray(dy, dtype=dtype)
        dx = (np.empty if self._covers(x_shape) else np.zeros)(x_shape, dtype=dtype)
        disjoint = self._disjoint
        for rows in _chunks(dx):
            self._backward_into(idx[rows], dy[rows], dx[rows], disjoint)
        return dx, {}

    def _backward_into(self, idx: np.ndarray, dy: np.ndarray, dx: np.ndarray, disjoint: bool) -> None:
        for k, where in self._slices(*dy.shape[1:3]):
            if disjoint:  # each input in at most one window: write, do not accumulate
                np.multiply(dy, idx == k, out=dx[where])
            else:
                dx[where] += dy * (idx == k)

    def _covers(self, x_shape: tuple[int, ...]) -> bool:
        """Whether disjoint windows write every input (no rows or columns left over), so that
        the backward pass need not zero dE/dX first."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        _, h, w, _ = x_shape
        return self._disjoint and (ph, pw) == (sh, sw) and h % ph == 0 and w % pw == 0


# Large batches are pooled a slice of samples at a time, each slice's input about this many bytes:
# the window offsets' passes then reread it from the CPU's cache instead of main memory (the
# 24 x 24 x 32 maps of the cnn preset: 2.6 -> 1.8 ms forward at batch 128, one core).
_CHUNK_BYTES = 1 << 19


def _chunks(x: np.ndarray):
    """Slices of ``x``'s first axis covering it, each about :data:`_CHUNK_BYTES` of ``x``."""
    n = x.shape[0]
    per_sample = max(x[:1].nbytes, 1)
    rows = max(1, _CHUNK_BYTES // per_sample)
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


@attrs.frozen
class AvgPool2D(_Pool2D):
    """Y[n, i, j, c] = mean over the window at (i * sh, j * sw) of X[n, ., ., c].

    Backward: every input in a window gets dE/dY / (ph * pw) from it (summed over overlapping
    windows). ``pool_size`` and ``stride`` as for :class:`MaxPool2D`. With stride == pool_size
    (the default) both passes are reshapes and axis sums, with no loop at all.
    """

    def forward(self, params: Any, x: Any):
        x = self._check(x)
        n, h, w, c = x.shape
        _, ho, wo, _ = self.output_shape(x.shape)
        (ph, pw), scale = self.pool_size, 1.0 / (self.pool_size[0] * self.pool_size[1])
        if self.strides == self.pool_size:
            # fast path: sum over window rows (long contiguous runs), then over window columns
            xc = x[:, : ho * ph, : wo * pw, :]
            rows = xc.reshape(n, ho, ph, wo * pw * c).sum(axis=2)
            y = rows.reshape(n, ho, wo, pw, c).sum(axis=3)
        else:
            y = np.zeros((n, ho, wo, c), dtype=x.dtype)
            for _, where in self._slices(ho, wo):
                y += x[where]
        y *= scale
        return y, x.shape

    def backward(self, params: Any, x_shape: tuple[int, ...], dy: np.ndarray):
        n, h, w, c = x_shape
        _, ho, wo, _ = dy.shape
        (ph, pw), scale = self.pool_size, 1.0 / (self.pool_size[0] * self.pool_size[1])
        g = dy * scale
        if self.strides == self.pool_size:
            spread = np.broadcast_to(g[:, :, None, :, None, :], (n, ho, ph, wo, pw, c))
            dxc = spread.reshape(n, ho * ph, wo * pw, c)
            if (ho * ph, wo * pw) == (h, w):
                return dxc, {}
            dx = np.zeros(x_shape, dtype=dxc.dtype)
            dx[:, : ho * ph, : wo * pw, :] = dxc
            return dx, {}
        dx = np.zeros(x_shape, dtype=g.dtype)
        for _, where in self._slices(ho, wo):
            dx[where] += g
        return dx, {}
