"""Plain gradient descent: the tutorial's update  w <- w - lr * dE/dw, as a pure function."""

from __future__ import annotations

from typing import Any

from purenn.tree import readonly, tree_map


def sgd_step(params: Any, grads: Any, lr: float) -> Any:
    """Return new read-only params ``p - lr * g`` for every leaf; ``params`` stay unchanged."""
    return tree_map(lambda p, g: readonly(p - lr * g), params, grads)
