"""Parameter subsets: a transformation on some parameter arrays only, one per group, frozen ones.

    Masked(inner, mask)             inner on the arrays ``mask`` selects; the others' updates pass
                                    through unchanged (optax's ``masked``)
    Partition(transforms, labels)   each array's update from ``transforms[its label]`` (optax's
                                    ``multi_transform``)
    SetToZero()                     u <- -0.0: the params it covers stay exactly what they are
    decay_mask(params)              True for arrays of two or more dimensions (weights), False for
                                    biases and normalisation scales and shifts

**Masks and labels.** A mask is a tree of ``True``/``False`` shaped like the params, or a prefix of
that shape (one value for a whole subtree: ``(True, False)`` for a two-layer ``Sequential``); the
name of a rule in :data:`MASK_RULES` (the rule's own function, ``decay_mask``, is kept by its name,
``"decay_mask"``); or any function of the params returning such a tree. Labels are the same with
strings for booleans. Either is **resolved at init**: the state keeps the tree (0-d arrays, which a
training checkpoint saves as it saves params) and every update uses that tree, never the function
again. Records keep what they were given; a function is not data (it cannot be serialized, and its
repr names a memory address), so :func:`resolve_masks` (``record.resolved(params)``) replaces each
function by the tree it gives: that is the record to write down (``fit`` records it). Rule names
and trees serialize as they are.

The transformation given a subset sees trees with ``()`` in place of the arrays it does not cover
(its state holds nothing for them): a ``ClipByGlobalNorm`` inside a mask clips by the norm of its
subset.

**Freezing.** Params that must stay bit for bit what they are need :class:`SetToZero` as the last
word on their updates: ``partition({"train": Adam(1e-3), "frozen": SetToZero()}, labels)``, or
``chain(Adam(1e-3), masked(SetToZero(), frozen))``. Its zeros are negative zeros, the identity of
floating-point addition: ``p + -0.0`` is ``p`` for every ``p``, whereas ``+0.0`` would turn a
parameter equal to ``-0.0`` into ``+0.0``. (Followed by a negative scaling, a learning rate, they
would become ``+0.0``.) Not to be confused with :func:`purenn.freeze`, which makes arrays read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.optim.base import (
    Optimizer, State, Transformation, as_transformation, as_update, transformation_like,
)
from purenn.tree import readonly, tree_leaves, tree_map, tree_structure, tree_unflatten

__all__ = [
    "Masked", "masked", "Partition", "partition", "SetToZero", "decay_mask", "MASK_RULES", "resolve_masks",
]


def decay_mask(params: Any) -> Any:
    """``True`` for every parameter array with two or more dimensions (the weights of ``Dense`` and
    ``Conv2D``), ``False`` for the others (biases, normalisation scales and shifts, scalars): the
    params weight decay is usually meant for. ``AdamW(..., mask=decay_mask)``."""
    return tree_map(lambda p: bool(np.ndim(p) >= 2), params)


#: Masks by name: a record given one of these functions keeps its name, which serializes.
MASK_RULES: dict[str, Callable[[Any], Any]] = {"decay_mask": decay_mask}

_MASK_WHAT = (f"True, False or a tree of them shaped like the params (or a prefix of their shape), "
              f"the name of a rule in MASK_RULES {tuple(MASK_RULES)}, or a function of the params "
              "returning such a tree")
_LABELS_WHAT = ("a label (a non-empty string not starting with '$') or a tree of labels shaped like "
                "the params (or a prefix of their shape), or a function of the params returning such "
                "a tree")


# --- masks and labels as records keep them ---------------------------------------------------


def _is_function(value: Any) -> bool:
    return callable(value) and not isinstance(value, (str, type))


def _canonical(tree: Any) -> Any:
    """A tree as records keep it: tuples for lists (as JSON gives them back), Python bools for
    NumPy's; anything else as it is (for the rule to judge)."""
    if isinstance(tree, dict):
        return {k: _canonical(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return tuple(_canonical(v) for v in tree)
    return bool(tree) if isinstance(tree, np.bool_) else tree


def to_mask(value: Any) -> Any:
    """A mask as a record keeps it: a rule's function by its name, a tree in canonical form, any
    other function as it is."""
    if _is_function(value):
        return next((name for name, rule in MASK_RULES.items() if value is rule), value)
    return value if isinstance(value, str) else _canonical(value)


def _first_bad(tree: Any, ok: Callable[[Any], bool], path: str = "") -> tuple[str, Any] | None:
    """Where ``tree`` has a leaf that ``ok`` refuses, or a dict key that is not a string."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if not isinstance(k, str):
                return f"{path} (a key)", k
            bad = _first_bad(v, ok, f"{path}[{k!r}]")
            if bad:
                return bad
        return None
    if isinstance(tree, (tuple, list)):
        return next((b for i, v in enumerate(tree) if (b := _first_bad(v, ok, f"{path}[{i}]"))), None)
    return None if ok(tree) else (path, tree)


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.startswith("$")


def _check_tree(name: str, value: Any, ok: Callable[[Any], bool], what: str) -> None:
    bad = _first_bad(value, ok)
    if bad is not None:
        where, leaf = bad
        raise ArgumentTypeError(f"`{name}` must be {what}; got {leaf!r:.60} of type "
                                f"{type(leaf).__name__}" + (f" at {name}{where}" if where else ""))


def _check_rule_name(name: str, value: str) -> None:
    if value not in MASK_RULES:
        raise ArgumentError(f"`{name}` {value!r:.60} is not a mask rule; the rules are "
                            f"{tuple(MASK_RULES)} (or give a tree of True/False, or a function)")


def mask_rule(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    """The attrs validator of a ``mask`` field (a function is checked when it is resolved)."""
    if isinstance(value, str):
        _check_rule_name(attribute.name, value)
    elif not _is_function(value):
        _check_tree(attribute.name, value, lambda v: type(v) is bool, _MASK_WHAT)


def _labels_rule(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not _is_function(value):
        _check_tree(attribute.name, value, _is_label, _LABELS_WHAT)


# --- resolving: from what was given to a tree shaped like the params ------------------------


def _expand(given: Any, params: Any, ok: Callable[[Any], bool], name: str, path: str = "") -> Any:
    """``given`` (a tree whose shape is a prefix of ``params``') with each leaf copied over the
    subtree of ``params`` it stands for; the containers are the params' own types."""
    if ok(given):
        return tree_map(lambda _: given, params)
    if isinstance(given, dict) and isinstance(params, dict) and given.keys() == params.keys():
        return {k: _expand(given[k], params[k], ok, name, f"{path}[{k!r}]") for k in params}
    if (isinstance(given, (tuple, list)) and isinstance(params, (tuple, list))
            and len(given) == len(params)):
        return type(params)(_expand(g, p, ok, name, f"{path}[{i}]")
                            for i, (g, p) in enumerate(zip(given, params)))
    raise ArgumentError(
        f"`{name}`{path} is {_outline(given)} where the params have {_outline(params)}; "
        f"`{name}` must have the params' structure, or a prefix of it (one value for a whole subtree)"
    )


def _outline(node: Any) -> str:
    if isinstance(node, dict):
        return f"a dict with keys {sorted(node)!r:.80}"
    if isinstance(node, (tuple, list)):
        return f"a {type(node).__name__} of {len(node)}"
    if isinstance(node, np.ndarray):
        return f"an array of shape {node.shape}"
    return f"{node!r:.40} ({type(node).__name__})"


def _given(value: Any, params: Any, name: str, rules: bool) -> tuple[Any, str]:
    """A function's result for ``params`` (with ``rules``, a string names a rule in
    :data:`MASK_RULES`) in canonical form, and the name to use in messages; any other value in
    canonical form."""
    if rules and isinstance(value, str):
        _check_rule_name(name, value)
        value = MASK_RULES[value]
    if not _is_function(value):
        return _canonical(value), name
    return _canonical(value(params)), f"{name} (as {getattr(value, '__name__', value)!s:.60} gives it)"


def resolve_mask(mask: Any, params: Any, name: str = "mask") -> Any:
    """The tree of Python bools, shaped like ``params``, that ``mask`` (a tree, a prefix of one, a
    rule's name or a function; see the module's docstring) stands for."""
    mask, what = _given(mask, params, name, rules=True)
    _check_tree(what, mask, lambda v: type(v) is bool, _MASK_WHAT)
    return _expand(mask, params, lambda v: type(v) is bool, what)


def resolve_labels(labels: Any, params: Any, known: Any = None, name: str = "labels") -> Any:
    """The tree of labels, shaped like ``params``, that ``labels`` stands for; each one of
    ``known`` (when given)."""
    labels, what = _given(labels, params, name, rules=False)
    _check_tree(what, labels, _is_label, _LABELS_WHAT)
    full = _expand(labels, params, _is_label, what)
    if known is not None:
        unknown = sorted(set(tree_leaves(full)) - set(known))
        if unknown:
            raise ArgumentError(f"`{what}` names {unknown!r:.100}, which `transforms` does not have; "
                                f"its labels are {sorted(known)!r:.100}")
    return full


def resolve_masks(record: Any, params: Any) -> Any:
    """``record`` (a transformation or an optimizer) with every mask or labels given as a function,
    at any depth, replaced by the tree it gives for ``params``: a record that serializes and whose
    repr is the same in every process. Itself when it holds no function."""
    resolved = getattr(record, "resolved", None)
    return resolved(params) if callable(resolved) else record


# --- the state: the resolved mask, and the subset the inner transformation sees --------------


def _mask_arrays(full: Any) -> Any:
    """A resolved mask as the state keeps it: read-only 0-d bool arrays."""
    return tree_map(lambda b: readonly(np.array(b, dtype=bool)), full)


def _along(mask: Any, tree: Any, what: str, out: list[Any], path: str = "") -> list[Any]:
    """The nodes of ``tree`` at the places of ``mask``'s leaves, in order; ``tree`` must have the
    mask's structure down to them (below, anything: updates may be array-likes)."""
    if isinstance(mask, np.ndarray):
        out.append(tree)
    elif isinstance(mask, dict):
        if not (isinstance(tree, dict) and tree.keys() == mask.keys()):
            raise _mismatch(what, path, tree, mask)
        for k in mask:
            _along(mask[k], tree[k], what, out, f"{path}[{k!r}]")
    else:
        if not (isinstance(tree, (tuple, list)) and len(tree) == len(mask)):
            raise _mismatch(what, path, tree, mask)
        for i, (m, t) in enumerate(zip(mask, tree)):
            _along(m, t, what, out, f"{path}[{i}]")
    return out


def _mismatch(what: str, path: str, tree: Any, mask: Any) -> ArgumentError:
    return ArgumentError(f"the {what} have {_outline(tree)} at {what}{path}, where the params "
                         f"given to init had {_outline(mask)}; give update() trees shaped like those "
                         "params")


def _subset(mask_leaves: list[bool], structure: Any, nodes: list[Any]) -> Any:
    return tree_unflatten(structure, [n if m else () for m, n in zip(mask_leaves, nodes)])


def _masked_init(inner: Transformation | Optimizer, full: Any, params: Any) -> State:
    mask = _mask_arrays(full)
    selected = [bool(m) for m in tree_leaves(mask)]
    sub_params = _subset(selected, tree_structure(mask), _along(mask, params, "params", []))
    return State(0, {"mask": mask, "inner": as_transformation(inner).init(sub_params)})


def _masked_update(who: object, inner: Transformation | Optimizer, updates: Any, state: State,
                   params: Any) -> tuple[Any, State]:
    """``inner`` on the selected arrays; the others' updates as given (as arrays: a list given as
    an update becomes one)."""
    mask = state.slots["mask"]
    structure = tree_structure(mask)
    selected = [bool(m) for m in tree_leaves(mask)]
    given, ps = _along(mask, updates, "updates", []), _along(mask, params, "params", [])
    sub_updates, sub_params = _subset(selected, structure, given), _subset(selected, structure, ps)
    new, inner_state = as_transformation(inner).update(sub_updates, state.slots["inner"], sub_params)
    made = _along(mask, new, "updates", [])
    out = [n if m else as_update(who, p, u) for m, n, u, p in zip(selected, made, given, ps)]
    return tree_unflatten(structure, out), State(state.step + 1, {"mask": mask, "inner": inner_state})


def _check_state(who: object, state: Any, names: set[str]) -> None:
    if not isinstance(state, State) or state.slots.keys() != names:
        raise ArgumentTypeError(
            f"{who!r:.200}.update needs the state made by its own init(params), got "
            f"{type(state).__name__}" + (f" with slots {sorted(state.slots)}" if isinstance(state, State) else "")
        )


# --- the transformations ---------------------------------------------------------------------


@attrs.frozen
class SetToZero(Transformation):
    """u <- -0.0 (optax's ``set_to_zero``): the params it covers stay bit for bit what they are,
    when its zeros reach them unscaled (see the module's docstring: put it last)."""

    fresh_updates: ClassVar[bool] = True

    def leaf(self, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.full(p.shape, -0.0, p.dtype)


@attrs.frozen
class Masked(Transformation):
    """``inner`` on the parameter arrays ``mask`` selects (optax's ``masked``); the updates of the
    others pass through as they came. The state is ``State(step, {"mask": the resolved mask,
    "inner": inner's state over the subset})``. ``inner`` may be an optimizer (its composition);
    note that unselected arrays then receive the incoming gradients as their updates: to keep
    them fixed, use :class:`Partition` with :class:`SetToZero`."""

    inner: Transformation | Optimizer = attrs.field(validator=transformation_like)
    mask: Any = attrs.field(converter=to_mask, validator=mask_rule)

    @property
    def fresh_updates(self) -> bool:  # type: ignore[override]
        return bool(as_transformation(self.inner).fresh_updates)

    def init(self, params: Any) -> State:
        return _masked_init(self.inner, resolve_mask(self.mask, params), params)

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, State]:
        _check_state(self, state, {"mask", "inner"})
        return _masked_update(self, self.inner, updates, state, params)

    def resolved(self, params: Any) -> Masked:
        inner = self.inner.resolved(params)
        mask = _canonical(resolve_mask(self.mask, params)) if _is_function(self.mask) else self.mask
        return self if inner is self.inner and mask is self.mask else Masked(inner, mask)


def masked(inner: Transformation | Optimizer, mask: Any) -> Masked:
    """``inner`` on the params ``mask`` selects (see :class:`Masked`):
    ``masked(AddDecayedWeights(1e-4), decay_mask)``."""
    return Masked(inner, mask)


def _to_transforms(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _transforms_rule(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise ArgumentTypeError("`transforms` must be a non-empty dict {label: transformation}, e.g. "
                                f"{{'train': Adam(1e-3), 'frozen': SetToZero()}}; got {value!r:.80}")
    for label, t in value.items():
        if not _is_label(label):
            raise ArgumentTypeError(f"`transforms`: labels must be non-empty strings that do not start "
                                    f"with '$', got {label!r:.60}")
        transformation_like.check(f"transforms[{label!r}]", t)


@attrs.frozen
class Partition(Transformation):
    """Each parameter array's update from ``transforms[label]``, its label given by ``labels``
    (optax's ``multi_transform``): ``Partition({"train": Adam(1e-3), "frozen": SetToZero()},
    labels)``. Every array needs a label that ``transforms`` has. The state is
    ``State(step, {label: State(step, {"mask": ..., "inner": ...}) for each label})``: each
    group's transformation sees only its arrays, as in :class:`Masked`."""

    transforms: dict[str, Transformation | Optimizer] = attrs.field(converter=_to_transforms,
                                                                    validator=_transforms_rule)
    labels: Any = attrs.field(converter=lambda v: v if _is_function(v) else _canonical(v),
                              validator=_labels_rule)

    @property
    def fresh_updates(self) -> bool:  # type: ignore[override]
        return all(as_transformation(t).fresh_updates for t in self.transforms.values())

    def init(self, params: Any) -> State:
        full = resolve_labels(self.labels, params, self.transforms)
        return State(0, {label: _masked_init(t, tree_map(lambda x, lb=label: x == lb, full), params)
                         for label, t in self.transforms.items()})

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, State]:
        _check_state(self, state, set(self.transforms))
        slots = {}
        for label, t in self.transforms.items():
            _check_state(self, state.slots[label], {"mask", "inner"})
            updates, slots[label] = _masked_update(self, t, updates, state.slots[label], params)
        return updates, State(state.step + 1, slots)

    def resolved(self, params: Any) -> Partition:
        transforms = {k: t.resolved(params) for k, t in self.transforms.items()}
        labels = self.labels
        if _is_function(labels):
            labels = _canonical(resolve_labels(labels, params, self.transforms))
        same = labels is self.labels and all(transforms[k] is t for k, t in self.transforms.items())
        return self if same else Partition(transforms, labels)


def partition(transforms: dict[str, Transformation | Optimizer], labels: Any) -> Partition:
    """Each parameter array's update from ``transforms[its label]`` (see :class:`Partition`)."""
    return Partition(transforms, labels)
