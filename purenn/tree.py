"""Params trees: nested dicts, tuples and lists whose leaves are NumPy arrays.

A Dense layer's params are ``{"w": array, "b": array}``; a ``Sequential``'s are a tuple with one
entry per child; a layer without parameters has ``{}``. Every array handed out as params is
read-only, so an accidental in-place update raises instead of silently corrupting a model.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from purenn.errors import ArgumentError

__all__ = [
    "tree_map", "tree_leaves", "tree_paths", "freeze", "readonly", "tree_structure", "tree_unflatten",
]


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to matching leaves of one or more trees of the same structure.

    >>> tree_map(lambda p, g: p - 0.1 * g, params, grads)   # the heart of sgd_step
    """
    if isinstance(tree, dict):
        for other in rest:
            if not isinstance(other, dict) or other.keys() != tree.keys():
                raise ArgumentError(
                    f"tree structures differ: dict with keys {sorted(tree)} vs {_describe(other)}"
                )
        return {k: tree_map(fn, v, *(o[k] for o in rest)) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        for other in rest:
            if not isinstance(other, (tuple, list)) or len(other) != len(tree):
                raise ArgumentError(
                    f"tree structures differ: sequence of length {len(tree)} vs {_describe(other)}"
                )
        mapped = [tree_map(fn, v, *(o[i] for o in rest)) for i, v in enumerate(tree)]
        return tuple(mapped) if isinstance(tree, tuple) else mapped
    return fn(tree, *rest)


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        return f"dict with keys {sorted(node)}"
    if isinstance(node, (tuple, list)):
        return f"sequence of length {len(node)}"
    return f"leaf of type {type(node).__name__}"


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in a fixed order (dict keys in insertion order)."""
    out: list[Any] = []
    tree_map(out.append, tree)
    return out


def tree_paths(tree: Any, prefix: str = "") -> list[str]:
    """Where each leaf sits, in :func:`tree_leaves` order: ``["[0]['w']", "[0]['b']", ...]``."""
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in tree_paths(v, f"{prefix}[{k!r}]")]
    if isinstance(tree, (tuple, list)):
        return [p for i, v in enumerate(tree) for p in tree_paths(v, f"{prefix}[{i}]")]
    return [prefix]


def tree_structure(tree: Any) -> Any:
    """The tree with every leaf replaced by ``None`` (for comparing structures)."""
    return tree_map(lambda _: None, tree)


def tree_unflatten(structure: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`tree_leaves`: put ``leaves`` back into ``structure``'s shape."""
    it = iter(leaves)
    try:
        result = tree_map(lambda _: next(it), structure)
    except StopIteration:
        raise ArgumentError(
            f"fewer leaves ({len(leaves)}) than the structure has places for "
            f"({len(tree_leaves(structure))})"
        ) from None
    if next(it, _END) is not _END:
        raise ArgumentError("more leaves than the structure has places for")
    return result


_END = object()


def _freeze_leaf(a: Any) -> np.ndarray:
    a = np.array(a, copy=True) if not isinstance(a, np.ndarray) or a.flags.writeable else a
    a.flags.writeable = False
    return a


def readonly(a: np.ndarray) -> np.ndarray:
    """Mark a freshly computed array read-only in place and return it (no copy)."""
    a.setflags(write=False)
    return a


def freeze(tree: Any) -> Any:
    """Return ``tree`` with every leaf as a read-only array.

    Writable arrays are copied first, so freezing never takes away an array someone else holds.
    Arrays that are already read-only are shared, not copied.
    """
    return tree_map(_freeze_leaf, tree)
