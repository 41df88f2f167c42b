"""Plain gradient descent: the tutorial's update  w <- w - lr * dE/dw, as a pure function."""

from __future__ import annotations

from typing import Any

import numpy as np

from purenn.tree import readonly, tree_map


def _descend(p: np.ndarray, g: np.ndarray, lr: float) -> np.ndarray:
    # (-lr * g) + p equals p - lr * g exactly, with one temporary instead of two: for large
    # layers the second allocation costs more than the arithmetic.
    out = np.multiply(g, -lr, dtype=p.dtype)
    np.add(out, p, out=out)
    return readonly(out)


def sgd_step(params: Any, grads: Any, lr: float) -> Any:
    """Return new read-only params ``p - lr * g`` for every leaf; ``params`` stay unchanged."""
    return tree_map(lambda p, g: _descend(p, g, lr), params, grads)
