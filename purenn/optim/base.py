"""The update contract, stated once: gradient transformations, their composition, optimizers.

**One rule orders every update's arguments: what flows through first (the gradients, or the
updates made from them), then the state, then the params**::

    state = t.init(params)
    updates, state = t.update(updates, state, params)    # a transformation: new updates
    state = opt.init(params)
    params, state = opt.update(grads, state, params)     # an optimizer: new params

A **transformation** is a frozen ``attrs`` record of hyperparameters with those two pure methods,
as optax's ``GradientTransformation``: it turns incoming updates (at first the gradients) into
outgoing ones (scaled by Adam's moments, clipped, decayed, multiplied by ``-lr``); the old state
stays valid. :class:`Chain` runs several in order and :func:`apply_updates` adds the result to
the params. Most transformations act on each parameter array alone: they write only that
per-array math, :meth:`Transformation.leaf`, and this module lifts it to whole trees and keeps
the step count and the per-parameter state arrays (``slots``, e.g. Adam's ``mu`` and ``nu``) in
one :class:`State` record.

An **optimizer** (:class:`Optimizer`: ``SGD``, ``Adam``, ... in :mod:`purenn.optim.optimizers`)
is a named composition of transformations, with the hyperparameters users know; its ``update``
is its composition's, followed by :func:`apply_updates`. :func:`purenn.fit` calls it by keyword
(``update(grads=..., state=..., params=...)``), so an object written for another order fails
loudly instead of swapping its arguments. Any transformation is an optimizer through
:func:`as_optimizer`. :func:`sgd_step` is the tutorial's update on its own: ``p - lr * g``.

**Donated memory** (JAX's ``donate_argnums``, as an explicit contract). A step's gradients are
made by the backward pass and dropped after the update, so the new params may as well live in
memory the step has just written instead of a fresh block: ``apply_updates(..., donate=True)``
writes them into the updates' own arrays. That is safe only when nothing else holds those arrays,
which the pieces declare, and nothing inspects: a layer whose backward returns new arrays that it
keeps nowhere sets ``fresh_grads = True`` (purenn's own layers do; containers when all their
children do), and a transformation whose updates are new arrays, or the very arrays it was given,
and never arrays its state keeps, sets ``fresh_updates = True`` (a momentum trace, whose update
*is* its state, does not). ``fit`` donates only when the model and every transformation say so.
Your own layers and transformations are never written into unless they declare it.
"""

from __future__ import annotations

import inspect
import math
from functools import cached_property, partial
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentTypeError, ShapeError
from purenn.tree import readonly, tree_map, tree_structure, tree_unflatten
from purenn.validation import Rule, check, positive_number, to_float

#: What ``purenn.optim`` (and ``purenn``) re-export from here. The other public names below
#: (``map_leaves``, ``as_update``, ``as_transformation``, ...) are for authors of transformations and
#: purenn's own modules, imported from this module.
__all__ = [
    "State", "Transformation", "Chain", "chain", "Optimizer", "FromTransformation", "as_optimizer",
    "apply_updates", "sgd_step",
]


# --- trees of per-parameter math ---------------------------------------------------------------


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
    if type(u) is not np.ndarray or u.dtype != p.dtype:
        u = np.asarray(u, dtype=p.dtype)
    if u.shape != p.shape:
        raise ShapeError(
            f"{who}: a gradient of shape {u.shape} for a parameter of shape {p.shape}; "
            "backward must return grads shaped like params"
        )
    return u


def _step(scale: float, donate: bool, p: np.ndarray, u: Any) -> np.ndarray:
    """Read-only ``p + scale * u``, computed as ``(u * scale) + p`` (exactly equal): into ``u``
    itself when it is donated and can be written, else into one fresh array (for large layers a
    second temporary costs more than the arithmetic)."""
    if type(u) is not np.ndarray or u.dtype != p.dtype or u.shape != p.shape:
        u = as_update("apply_updates", p, u)
    elif donate and p.ndim:
        try:
            u.setflags(write=True)  # refused for a view of read-only memory: then a fresh array
        except ValueError:
            pass
        else:
            if scale != 1.0:
                np.multiply(u, scale, out=u)
            np.add(u, p, out=u)
            return readonly(u)
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
    return _map_pair(partial(_step, scale, donate), params, updates)


def sgd_step(params: Any, grads: Any, lr: float) -> Any:
    """The tutorial's update: new read-only params ``p - lr * g`` for every leaf.

    The same arithmetic as ``SGD(lr)``; ``params`` stay unchanged.
    """
    if type(lr) is not float or not 0 < lr < math.inf:
        lr = check("lr", lr, positive_number, to_float)
    return apply_updates(params, grads, -lr)


# --- transformations -------------------------------------------------------------------------


@attrs.frozen
class State:
    """A transformation's state: ``step`` (updates applied so far) and ``slots``, named trees: for a
    per-array transformation one tree shaped like params per name in its ``slots`` (e.g.
    ``{"mu": ..., "nu": ...}``); for a combinator its parts' states and what it resolved at init
    (``Masked``: ``{"mask": ..., "inner": ...}``). Trees of arrays and ``State`` records only, so
    that a training checkpoint saves any state as it saves params."""

    step: int
    slots: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Transformation:
    """Base class. A per-array transformation declares ``slots`` (names of its state arrays,
    zeros at the start unless :meth:`init_slot` says otherwise) and defines :meth:`leaf`;
    :meth:`init` and :meth:`update` lift it to trees. Others override ``init``/``update``."""

    slots: ClassVar[tuple[str, ...]] = ()
    #: whether its updates are new arrays (or the very arrays it was given) and never arrays its
    #: state keeps, so that fit may write the new params into them (the module's docstring)
    fresh_updates: ClassVar[bool] = False

    def init(self, params: Any) -> Any:
        """The state before the first update."""
        return State(0, {name: map_leaves(lambda p: readonly(self.init_slot(name, p)), params)
                         for name in self.slots})

    def init_slot(self, name: str, p: np.ndarray) -> np.ndarray:
        """The initial value of slot ``name`` for parameter ``p``: zeros of its shape and dtype."""
        return np.zeros_like(p)

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, Any]:
        """``leaf`` applied to every parameter array, with this step's :meth:`constants`."""
        self._check_state(state)
        constants = self.constants(state.step)
        names = self.slots
        # params lead the walk: grads may be array-likes (lists), converted leaf by leaf
        if not names:
            new = map_leaves(lambda p, u: readonly(self.leaf(as_update(self, p, u), p, **constants)),
                             params, updates)
            return new, State(state.step + 1, {})

        def per_leaf(p: np.ndarray, u: Any, *slots: np.ndarray) -> tuple[np.ndarray, ...]:
            out = self.leaf(as_update(self, p, u), p, *slots, **constants)
            return tuple(readonly(a) for a in out)

        new, *slots = map_leaves(per_leaf, params, updates, *(state.slots[n] for n in names),
                                 n_out=1 + len(names))
        return new, State(state.step + 1, dict(zip(names, slots)))

    def constants(self, step: int) -> dict[str, Any]:
        """Scalars the per-array math needs at ``step`` (a learning rate, a bias correction)."""
        return {}

    def resolved(self, params: Any) -> Transformation:
        """This record with every mask or labels given as a function replaced by the tree it gives
        for ``params`` (see :func:`purenn.optim.masking.resolve_masks`); itself when it has none."""
        return self

    def leaf(self, *args: Any, **kwargs: Any) -> Any:
        """``leaf(u, p, *slots, **constants)``, the per-array math: the new update (and, with
        slots, the new slot arrays, in order), as fresh arrays, which the base class marks
        read-only."""
        raise NotImplementedError(f"{type(self).__name__} must define leaf() or update()")

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, State) or state.slots.keys() != set(self.slots):
            raise ArgumentTypeError(
                f"{self!r}.update needs the state made by its own init(params), got "
                f"{type(state).__name__}"
                + (f" with slots {sorted(state.slots)}" if isinstance(state, State) else "")
            )


def _to_transformations(value: Any) -> tuple[Transformation, ...]:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    items = tuple(part for t in items for part in _parts(t))
    for i, t in enumerate(items):
        if not isinstance(t, Transformation):
            raise ArgumentTypeError(
                f"Chain: item {i} ({t!r:.80}) is not a transformation; give records such as "
                "ScaleByAdam() or ScaleByLearningRate(1e-3), or optimizers such as Adam(1e-3)"
            )
    return items


def _parts(item: Any) -> tuple[Any, ...]:
    """An optimizer given to a chain stands for the transformations of its composition."""
    if not isinstance(item, Optimizer):
        return (item,)
    t = item.transformation()
    return t.transformations if isinstance(t, Chain) else (t,)


@attrs.frozen
class Chain(Transformation):
    """Run ``transformations`` in order, each on the previous one's output (optax's ``chain``).
    The state is a tuple with one entry per transformation. :func:`chain` builds one; an
    optimizer given among them stands for the transformations of its composition
    (``chain(ClipByGlobalNorm(1.0), Adam(1e-3))`` has three)."""

    transformations: tuple[Transformation, ...] = attrs.field(converter=_to_transformations)

    @property
    def fresh_updates(self) -> bool:  # type: ignore[override]
        return all(t.fresh_updates for t in self.transformations)

    def init(self, params: Any) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in self.transformations)

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, tuple[Any, ...]]:
        if not isinstance(state, tuple) or len(state) != len(self.transformations):
            raise ArgumentTypeError(
                f"{self!r:.200}.update needs the tuple of {len(self.transformations)} states its "
                f"init(params) makes, got {type(state).__name__}"
                + (f" of {len(state)}" if isinstance(state, tuple) else "")
            )
        new_states = []
        for t, s in zip(self.transformations, state):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)


    def resolved(self, params: Any) -> Chain:
        parts = tuple(t.resolved(params) for t in self.transformations)
        return self if all(a is b for a, b in zip(parts, self.transformations)) else Chain(parts)


def chain(*transformations: Any) -> Chain:
    """``Chain`` of the given transformations (or optimizers), run in order:
    ``chain(ClipByGlobalNorm(1.0), Adam(1e-3))`` is Adam with clipping."""
    return Chain(transformations)


# --- optimizers ------------------------------------------------------------------------------


@attrs.frozen
class Optimizer:
    """Base class of named optimizers: a record of hyperparameters whose :meth:`transformation`
    is a composition of transformations; ``init``/``update`` apply it to params."""

    def transformation(self) -> Transformation:  # pragma: no cover
        """The composition this optimizer stands for."""
        raise NotImplementedError(f"{type(self).__name__} must define transformation()")

    @cached_property
    def _transformation(self) -> Transformation:
        return self.transformation()

    @property
    def fresh_updates(self) -> bool:
        """Whether its composition's updates may be written into (the module's docstring)."""
        return bool(self._transformation.fresh_updates)

    def resolved(self, params: Any) -> Optimizer:
        """This record with every mask given as a function replaced by the tree it gives for
        ``params`` (:func:`purenn.optim.masking.resolve_masks`); itself when it has none."""
        return self

    def init(self, params: Any) -> Any:
        """The optimizer's state for ``params``: that of its transformation."""
        return self._transformation.init(params)

    def update(self, grads: Any, state: Any, params: Any, *, lr_scale: float = 1.0,
               donate: bool = False) -> tuple[Any, Any]:
        """One step: new read-only params and the new state; the old ones stay valid.

        ``lr_scale`` multiplies the final updates (a plateau rule's factor: for a composition
        that ends in the learning rate, as every named optimizer does, it scales the learning
        rate). ``donate=True``: the caller gives ``grads`` away, as :func:`purenn.fit` does when
        the model declares fresh grads; the new params may then be written into the updates'
        memory (see the module's docstring), the same numbers."""
        t = self._transformation
        updates, state = t.update(grads, state, params)
        return apply_updates(params, updates, lr_scale, donate=donate and t.fresh_updates), state


@attrs.frozen
class FromTransformation(Optimizer):
    """Any transformation used as an optimizer: ``updates = t.update(grads)``, then
    ``params + updates``. ``fit(optimizer=chain(...))`` wraps a transformation in this."""

    transform: Transformation = attrs.field(
        validator=Rule("a Transformation", lambda v: isinstance(v, Transformation))
    )

    def transformation(self) -> Transformation:
        return self.transform

    def resolved(self, params: Any) -> FromTransformation:
        t = self.transform.resolved(params)
        return self if t is self.transform else FromTransformation(t)


#: A field's rule for a part of a combinator: a transformation, or an optimizer (which stands for
#: its composition, as in :func:`chain`).
transformation_like = Rule("a transformation (e.g. ScaleByAdam()) or an optimizer (e.g. Adam(1e-3))",
                           lambda v: isinstance(v, (Transformation, Optimizer)))


def as_transformation(value: Transformation | Optimizer) -> Transformation:
    """A transformation as it is; an optimizer's composition (its ``transformation()``)."""
    return value._transformation if isinstance(value, Optimizer) else value


def as_optimizer(value: Any) -> Any:
    """``value`` as something with ``init(params)`` and ``update(grads, state, params)``: an
    optimizer as it is, a transformation wrapped in :class:`FromTransformation`."""
    if isinstance(value, Transformation):
        return FromTransformation(value)
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        raise ArgumentTypeError(
            "`optimizer` must have init(params) and update(grads, state, params), or be a "
            f"transformation; e.g. purenn.Adam(1e-3); got {value!r:.80}"
        )
    try:
        inspect.signature(value.update).bind(grads=None, state=None, params=None)
    except TypeError:
        raise ArgumentTypeError(
            f"`optimizer`: {type(value).__name__}.update{_signature(value.update)} cannot be called "
            "as update(grads=..., state=..., params=...), which is how fit calls it (by keyword, so "
            "that no argument is ever taken for another); name its arguments grads, state, params"
        ) from None
    except ValueError:  # a builtin without a signature: take it as it is
        pass
    return value


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"
