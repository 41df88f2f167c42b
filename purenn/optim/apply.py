"""Applying updates to params, array by array: the one walk over trees every update takes.

:func:`apply_updates` adds updates to params (``p + scale * u``, into donated memory when the
caller gives it away: :mod:`purenn.optim.base`, "donated memory"); :func:`map_leaves` lifts a
transformation's per-array math to trees; :func:`sgd_step` is the tutorial's update on its own.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from purenn.errors import ShapeError
from purenn.tree import readonly, tree_map, tree_structure, tree_unflatten
from purenn.validation import check, positive_number, to_float

#: What ``purenn.optim`` (and ``purenn``) re-export from here; ``map_leaves``, ``as_update`` and
#: ``add_scaled`` are for authors of transformations and purenn's own modules.
__all__ = ["apply_updates", "sgd_step"]


def map_leaves(fn: Any, first: Any, *rest: Any, n_out: int = 1) -> Any:
    """Apply the per-array ``fn`` to matching leaves of trees shaped like ``first``.

    ``fn(*leaves)`` returns one array (``n_out=1``) or a tuple of ``n_out`` arrays; the result is
    one tree, or a tuple of ``n_out`` trees, shaped like ``first``. This is the only place where
    the optimizers walk trees.
    """
    if n_out == 1 and len(rest) == 1:
        return _map_pair(fn, first, rest[0])
    return _map_any(fn, (first, *rest), n_out)


def _map_any(fn: Any, trees: tuple[Any, ...], n_out: int) -> Any:
    """``map_leaves`` for any trees, through tree_map (whose errors name mismatched structures)."""
    leaves: list[Any] = []
    tree_map(lambda *ls: leaves.append(fn(*ls)), *trees)
    structure = tree_structure(trees[0])
    if n_out == 1:
        return tree_unflatten(structure, leaves)
    return tuple(tree_unflatten(structure, [out[i] for out in leaves]) for i in range(n_out))


def _map_pair(fn: Any, a: Any, b: Any) -> Any:
    """``map_leaves`` over two trees with one output: the per-step walk of every update, so the
    usual nodes (tuples of dicts of arrays) are handled without tree_map's generality."""
    kind = type(a)
    if kind is dict and type(b) is dict and a.keys() == b.keys():
        return {k: fn(v, b[k]) if type(v) is np.ndarray else _map_pair(fn, v, b[k])
                for k, v in a.items()}
    if kind is tuple and type(b) is tuple and len(a) == len(b):
        return tuple([fn(v, w) if type(v) is np.ndarray else _map_pair(fn, v, w)
                      for v, w in zip(a, b)])
    if kind is np.ndarray:
        return fn(a, b)
    return _map_any(fn, (a, b), 1)


def as_update(who: object, p: np.ndarray, u: Any) -> np.ndarray:
    """``u`` as an array in ``p``'s dtype (no copy when it already is), with ``p``'s shape."""
    if type(u) is not np.ndarray or (u.dtype is not p.dtype and u.dtype != p.dtype):
        u = np.asarray(u, dtype=p.dtype)
    if u.shape != p.shape:
        raise ShapeError(
            f"{who}: a gradient of shape {u.shape} for a parameter of shape {p.shape}; "
            "backward must return grads shaped like params"
        )
    return u


def add_scaled(scale: float, donate: bool, p: np.ndarray, u: Any) -> np.ndarray:
    """Read-only ``p + scale * u``, computed as ``(u * scale) + p`` (exactly equal): into ``u``
    itself when it is donated and can be written, else into one fresh array (for large layers a
    second temporary costs more than the arithmetic)."""
    # `is` first: comparing dtypes with != costs more than the arithmetic of a small array
    if type(u) is not np.ndarray or (u.dtype is not p.dtype and u.dtype != p.dtype) or u.shape != p.shape:
        u = as_update("apply_updates", p, u)
    elif donate and p.ndim:
        try:
            u.setflags(write=True)  # refused for a view of read-only memory: then a fresh array
        except ValueError:
            pass
        else:
            if scale != 1.0:
                np.multiply(u, scale, out=u)
            u += p
            u.setflags(write=False)  # cheaper than readonly(u)'s flags object
            return u
    if not p.ndim:  # u * scale would be a NumPy scalar, not an array
        out = np.multiply(u, scale, out=np.empty((), p.dtype))
        out += p
    elif scale == 1.0:
        out = np.add(u, p)  # one pass; (u * 1.0) + p would be the same numbers in two
    else:
        out = u * scale
        out += p
    return readonly(out)


def apply_updates(params: Any, updates: Any, scale: float = 1.0, *, donate: bool = False) -> Any:
    """New read-only params ``p + scale * u`` for every leaf; ``params`` stay unchanged.

    ``scale`` folds a final multiplication into the same pass: ``apply_updates(p, g, -lr)`` is
    plain gradient descent, bit for bit ``p + (-lr * g)``. ``donate=True``: the caller gives the
    update arrays away (nothing else holds them, and it will not read them again; see the
    module's docstring), so the new params are written into them, the same numbers.
    """
    return _map_pair(partial(add_scaled, scale, donate), params, updates)


def sgd_step(params: Any, grads: Any, lr: float) -> Any:
    """The tutorial's update: new read-only params ``p - lr * g`` for every leaf.

    The same arithmetic as ``SGD(lr)``; ``params`` stay unchanged.
    """
    if type(lr) is not float or not 0 < lr < math.inf:
        lr = check("lr", lr, positive_number, to_float)
    return apply_updates(params, grads, -lr)
