"""Params trees: nested dicts, tuples and lists whose leaves are NumPy arrays.

A Dense layer's params are ``{"w": array, "b": array}``; a ``Sequential``'s are a tuple with one
entry per child; a layer without parameters has ``{}``. Every array handed out as params is
read-only, so an accidental in-place update raises instead of silently corrupting a model.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import numpy as np

from purenn.errors import ArgumentError

__all__ = [
    "tree_map", "tree_leaves", "tree_paths", "freeze", "readonly", "tree_structure", "tree_unflatten",
    "layout", "layout_difference",
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


# --- layouts: what a tree of arrays must look like ----------------------------------------------


def _is_pair(node: Any) -> bool:
    """Whether ``node`` is a ``(shape, dtype)`` leaf of a layout (``param_shapes()``'s)."""
    return (isinstance(node, tuple) and len(node) == 2 and isinstance(node[1], str)
            and isinstance(node[0], (tuple, list)))


def layout(tree: Any) -> Any:
    """``tree`` with each array replaced by its ``(shape, dtype)`` pair, the form of
    ``layer.param_shapes()``; attrs records (an optimizer's ``State``) keep their class, with their
    fields' layouts; ints and other scalars stand for their type."""
    if isinstance(tree, np.ndarray):
        return (tree.shape, tree.dtype.str)
    if isinstance(tree, dict):
        return {k: layout(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(layout(v) for v in tree)
    if attrs.has(type(tree)):
        return _Record(type(tree), {a.name: layout(getattr(tree, a.name)) for a in attrs.fields(type(tree))})
    return type(tree)


@attrs.frozen
class _Record:
    cls: type
    fields: dict[str, Any]


def layout_difference(declared: Any, tree: Any, name: str = "params", path: str = "") -> str | None:
    """What differs first between ``tree`` and the ``declared`` layout (:func:`layout`, or a
    model's ``param_shapes()``/``state_shapes()``), as a phrase naming where (``params[0]['w']
    has shape (3, 2) and dtype float32, but shape (2, 3) and dtype float32 are expected``); None
    when it fits.
    The leaves of ``tree`` are arrays, or anything with a ``shape`` and a ``dtype`` (a file's
    entries, before they are read). This is the one check of a tree's layout: loading
    checkpoints, stateful models and resumed optimizers all use it."""
    where = f"{name}{path}"
    if _is_pair(declared):
        shape, dtype = getattr(tree, "shape", None), getattr(tree, "dtype", None)
        if shape is None or dtype is None or isinstance(tree, (dict, tuple, list)):
            return f"{where} should be an array of shape {tuple(declared[0])}, got {_outline(tree)}"
        want = (tuple(declared[0]), np.dtype(declared[1]))
        if (tuple(shape), np.dtype(dtype)) == want:
            return None
        return (f"{where} has shape {tuple(shape)} and dtype {np.dtype(dtype)}, but shape {want[0]} "
                f"and dtype {want[1]} are expected")
    if isinstance(declared, type):
        if isinstance(tree, declared) and not (isinstance(tree, bool) and declared is not bool):
            return None
        return f"{where} should be {declared.__name__}, got {_outline(tree)}"
    if isinstance(declared, _Record):
        if type(tree) is not declared.cls:
            return f"{where} should be a {declared.cls.__name__}, got {_outline(tree)}"
        pairs = [(d, getattr(tree, k), f"{path}.{k}") for k, d in declared.fields.items()]
    elif isinstance(declared, dict) and isinstance(tree, dict) and tree.keys() == declared.keys():
        pairs = [(declared[k], tree[k], f"{path}[{k!r}]") for k in declared]
    elif (isinstance(declared, (tuple, list)) and isinstance(tree, (tuple, list))
          and len(tree) == len(declared)):
        pairs = [(d, t, f"{path}[{i}]") for i, (d, t) in enumerate(zip(declared, tree))]
    else:
        return f"{where} has the wrong structure ({_outline(tree)}, where {_outline(declared)} is expected)"
    return next((m for m in (layout_difference(d, t, name, p) for d, t, p in pairs) if m is not None), None)


def _outline(node: Any) -> str:
    """A tree with each leaf as its shape, shortened: for messages."""
    text = repr(_shapes(node))
    return text if len(text) <= 120 else text[:117] + "..."


def _shapes(node: Any) -> Any:
    if _is_pair(node):
        return tuple(node[0])
    if isinstance(node, dict):
        return {k: _shapes(v) for k, v in node.items()}
    if isinstance(node, (tuple, list)):
        return type(node)(_shapes(v) for v in node)
    if isinstance(node, _Record):
        return f"{node.cls.__name__}(...)"
    if isinstance(node, type):
        return node.__name__
    shape = getattr(node, "shape", None)
    return tuple(shape) if shape is not None else type(node).__name__
