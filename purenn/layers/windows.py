"""Sliding-window helpers shared by Conv2D and the pooling layers (channels-last).

Images are ``(batch, height, width, channels)``. A window of size ``(kh, kw)`` moved with stride
``(sh, sw)`` over a (padded) input of height ``H`` gives ``Ho = (H - kh) // sh + 1`` rows of
outputs (the same for widths).

``im2col`` lays every window out as one row, ``(batch * Ho * Wo, kh * kw * channels)``, in the
order (kernel row, kernel column, channel), so that a convolution is a single matrix product with
the kernel reshaped to ``(kh * kw * in_channels, out_channels)``. ``col2im`` is its adjoint: it
adds each window's gradient back onto the input, looping over the ``kh * kw`` kernel offsets only.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def offset_index(i: int, j: int, ho: int, wo: int, sh: int, sw: int) -> tuple[slice, ...]:
    """Index of the ``(batch, Ho, Wo, C)`` block of inputs that kernel offset ``(i, j)`` sees in
    every window: rows ``i, i + sh, ...`` (Ho of them) and columns ``j, j + sw, ...`` (Wo)."""
    return (slice(None), slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw), slice(None))


def output_size(size: int, window: int, stride: int) -> int:
    """Number of window positions along one axis of length ``size`` (already padded)."""
    return (size - window) // stride + 1


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same": output ``ceil(size / stride)``, padding split evenly, extra at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_view(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Read-only view ``(batch, Ho, Wo, kh, kw, channels)`` of every window of ``xp``; no copy."""
    n, h, w, c = xp.shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    s0, s1, s2, s3 = xp.strides
    return as_strided(
        xp, (n, ho, wo, kh, kw, c), (s0, s1 * sh, s2 * sw, s1, s2, s3), writeable=False
    )


def im2col(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """``(batch, H, W, C)`` -> contiguous ``(batch * Ho * Wo, kh * kw * C)``, one window per row."""
    windows = window_view(xp, kh, kw, sh, sw)
    n, ho, wo = windows.shape[:3]
    return windows.reshape(n * ho * wo, kh * kw * xp.shape[3])  # one copy, straight into C order


def im2col_transposed(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, ones_row: bool = False) -> np.ndarray:
    """The transpose of :func:`im2col`, built directly: contiguous ``(kh * kw * C, batch * Ho * Wo)``.

    Row ``(p * kw + q) * C + c`` holds channel ``c`` at kernel offset ``(p, q)`` of every window.
    For inputs with few channels (a grey-scale image) this is several times faster to build than
    ``im2col``, whose rows would be copied a few floats at a time. ``ones_row``: add a last row
    of ones, so that a bias rides along in the same matrix products.
    """
    n, h, w, c = xp.shape
    ho, wo = output_size(h, kh, sh), output_size(w, kw, sw)
    out = np.empty((kh * kw * c + ones_row, n * ho * wo), dtype=xp.dtype)
    windows = out[: kh * kw * c].reshape(kh, kw, c, n, ho, wo)
    for i in range(kh):
        for j in range(kw):
            windows[i, j] = xp[offset_index(i, j, ho, wo, sh, sw)].transpose(3, 0, 1, 2)
    if ones_row:
        out[-1] = 1
    return out


def col2im(
    dwindows: np.ndarray, padded_shape: tuple[int, ...], sh: int, sw: int
) -> np.ndarray:
    """Adjoint of :func:`window_view`: sum ``(batch, Ho, Wo, kh, kw, C)`` back onto ``padded_shape``.

    Overlapping windows accumulate. The loop runs over the ``kh * kw`` kernel offsets only; each
    step adds a whole ``(batch, Ho, Wo, C)`` block at a strided position.
    """
    _, ho, wo, kh, kw, _ = dwindows.shape
    dxp = np.zeros(padded_shape, dtype=dwindows.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[offset_index(i, j, ho, wo, sh, sw)] += dwindows[:, :, :, i, j, :]
    return dxp
