"""Plain gradient descent: the tutorial's update  w <- w - lr * dE/dw, as a pure function."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from purenn.errors import ShapeError
from purenn.tree import tree_map


def _descend(p: np.ndarray, g: Any, lr: float) -> np.ndarray:
    """A new read-only ``p - lr * g``, computed as ``(-lr * g) + p`` (exactly equal) with one
    temporary instead of two: for large layers the second allocation costs more than the math."""
    g = np.asarray(g)
    if g.shape != p.shape:
        raise ShapeError(
            f"sgd_step: a gradient of shape {g.shape} for a parameter of shape {p.shape}; "
            "backward must return grads shaped like params"
        )
    out = np.multiply(g, -lr, out=np.empty(p.shape, p.dtype))
    out += p
    out.setflags(write=False)
    return out


class _Unusual(Exception):
    """A tree the fast walk does not handle; :func:`tree_map` takes over."""


def _descend_tree(p: Any, g: Any, lr: float) -> Any:
    # The usual trees (tuples of dicts of arrays) without tree_map's generality: for a small
    # network the walk costs as much as the arithmetic otherwise.
    if type(p) is tuple and type(g) is tuple and len(p) == len(g):
        return tuple([_descend_tree(a, b, lr) for a, b in zip(p, g)])
    if type(p) is dict and type(g) is dict and p.keys() == g.keys():
        new = {}
        for k, a in p.items():
            b = g[k]
            same = type(a) is np.ndarray and type(b) is np.ndarray
            if same and b.dtype == a.dtype and b.shape == a.shape:
                # _descend's common case, inlined: a small network's step is mostly calls
                out = b * -lr
                out += a
                out.setflags(write=False)
                new[k] = out
            else:
                new[k] = _descend(a, b, lr) if type(a) is np.ndarray else _descend_tree(a, b, lr)
        return new
    if type(p) is np.ndarray:
        return _descend(p, g, lr)
    raise _Unusual


def learning_rate(lr: Any) -> float:
    """``lr`` as a float, or a clear error if it is not a positive finite number."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"`lr` must be a positive number, got {lr!r}")
    if not 0 < lr < math.inf:
        raise ValueError(f"`lr` must be a positive number, got {lr!r}")
    return float(lr)


def sgd_step(params: Any, grads: Any, lr: float) -> Any:
    """Return new read-only params ``p - lr * g`` for every leaf; ``params`` stay unchanged."""
    if type(lr) is not float or not 0 < lr < math.inf:
        lr = learning_rate(lr)
    try:
        return _descend_tree(params, grads, lr)
    except _Unusual:
        return tree_map(lambda p, g: _descend(p, g, lr), params, grads)
