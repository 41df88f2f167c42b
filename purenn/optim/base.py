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

**One pass.** An optimizer whose transformations are all per-array (none overrides ``update``)
runs them in one walk over the params: each array goes through every part's ``leaf`` and into its
new params before the next array, the same operations on the same numbers as running the parts
one after the other and then :func:`apply_updates` (tests/optim/test_one_pass.py checks every
registered optimizer, bit for bit). A part whose update is ``u * s`` for one number ``s``
(``ScaleByLearningRate``: ``s = -lr``) says so with :meth:`Transformation.scale_at`; when it comes
last, its multiplication is the one the final addition ``(u * s) + p`` makes anyway.
"""

from __future__ import annotations

import inspect
from functools import cached_property, partial
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentTypeError
from purenn.optim.apply import add_scaled, apply_updates, as_update, map_leaves, sgd_step  # noqa: F401 (re-exported)
from purenn.tree import readonly
from purenn.validation import Rule

#: What ``purenn.optim`` (and ``purenn``) re-export from here. The other public names below
#: (``as_transformation``, ``transformation_like``, ...) are for authors of transformations and
#: purenn's own modules, imported from this module; :mod:`purenn.optim.apply` holds the walk that
#: adds updates to params (``apply_updates``, ``map_leaves``, ``as_update``), imported here too.
__all__ = [
    "State", "Transformation", "Chain", "chain", "Optimizer", "FromTransformation", "as_optimizer",
]


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

    def scale_at(self, step: int) -> float | None:
        """``s`` when this transformation's update at ``step`` is ``u * s``, one number for every
        array (``ScaleByLearningRate``: ``-lr``), so that an optimizer ending in it multiplies in
        the pass that adds the params; None (the default) otherwise."""
        return None

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
        self._check_states(state)
        new_states = []
        for t, s in zip(self.transformations, state):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    def _check_states(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != len(self.transformations):
            raise ArgumentTypeError(
                f"{self!r:.200}.update needs the tuple of {len(self.transformations)} states its "
                f"init(params) makes, got {type(state).__name__}"
                + (f" of {len(state)}" if isinstance(state, tuple) else "")
            )

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
        if self._per_array is not None:
            return _update_in_one_pass(self._transformation, self._per_array, grads, state,
                                       params, lr_scale, donate)
        t = self._transformation
        updates, state = t.update(grads, state, params)
        return apply_updates(params, updates, lr_scale, donate=donate and t.fresh_updates), state

    @cached_property
    def _per_array(self) -> tuple[Transformation, ...] | None:
        """The composition's parts when every one is per-array (its ``update`` is the base
        class's), so that one pass over the params runs them all (:func:`_update_in_one_pass`)."""
        t = self._transformation
        parts = t.transformations if isinstance(t, Chain) else (t,)
        if parts and all(type(part).update is Transformation.update for part in parts):
            return parts
        return None


def _update_in_one_pass(t: Transformation, parts: tuple[Transformation, ...], grads: Any,
                        state: Any, params: Any, lr_scale: float, donate: bool) -> tuple[Any, Any]:
    """``t.update`` then ``apply_updates``, for a composition of per-array parts, in one pass:
    each parameter array goes through every part's :meth:`~Transformation.leaf` and into its new
    params before the next array. The same operations on the same numbers, in the same order for
    each array, as running the parts one after the other (a test checks, bit for bit); only the
    walks over the trees and the intermediate trees are saved. When the last part's update is a
    multiplication by one number (:meth:`~Transformation.scale_at`: the learning rate) and
    ``lr_scale`` is 1, that multiplication is the one the final addition makes anyway,
    ``(u * scale) + p``. An update array nothing else holds (donated grads, or a fresh update a
    part has just made) receives the new params."""
    if isinstance(t, Chain):
        t._check_states(state)
        states = state
    else:
        states = (state,)
    for part, s in zip(parts, states):
        part._check_state(s)
    last = parts[-1]
    scale = last.scale_at(states[-1].step) if lr_scale == 1.0 and not last.slots else None
    leaf_parts = parts[:-1] if scale is not None else parts
    slot_trees = [s.slots[name] for part, s in zip(parts, states) for name in part.slots]
    if not leaf_parts:  # a learning rate alone: p + (-lr * g), as sgd_step
        new_params = apply_updates(params, grads, scale, donate=donate)  # type: ignore[arg-type]
    else:
        leaves = [(partial(part.leaf, **part.constants(s.step)), len(part.slots), part)
                  for part, s in zip(leaf_parts, states)]
        per_array = partial(_through_parts, leaves, lr_scale if scale is None else scale, donate,
                            bool(slot_trees))
        if slot_trees:
            new_params, *slot_trees = map_leaves(per_array, params, grads, *slot_trees,
                                                 n_out=1 + len(slot_trees))
        else:
            new_params = map_leaves(per_array, params, grads)
    if not slot_trees:
        new_states = [State(s.step + 1, {}) for s in states]
    else:
        made = iter(slot_trees)
        new_states = [State(s.step + 1, {name: next(made) for name in part.slots})
                      for part, s in zip(parts, states)]
    return new_params, (tuple(new_states) if isinstance(t, Chain) else new_states[0])


def _through_parts(leaves: list[tuple[Any, int, Transformation]], scale: float, donate: bool,
                   with_slots: bool, p: np.ndarray, u: Any, *slots: np.ndarray) -> Any:
    """One parameter array through every part's leaf, then ``p + scale * u``; with slots, the new
    params followed by every part's new slot arrays (read-only), in order."""
    owned, start, made = donate, 0, []
    for leaf, k, part in leaves:
        u = as_update(part, p, u)
        out = leaf(u, p, *slots[start : start + k])
        if k:
            out, *new = out
            made += [readonly(a) for a in new]
            start += k
        # writable only when the part declares fresh updates: a new array it made, or the one it
        # was given (then still only if that one was writable); never an array its state keeps
        owned = part.fresh_updates and (owned or out is not u)
        u = out
    new_p = add_scaled(scale, owned, p, u)
    return (new_p, *made) if with_slots else new_p


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
