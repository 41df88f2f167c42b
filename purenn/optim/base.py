"""The update contract, stated once: gradient transformations, their composition, applying updates.

A **transformation** is a frozen ``attrs`` record of hyperparameters with two pure methods, as in
optax's ``GradientTransformation``::

    state = t.init(params)                                 # plain data: ints and read-only arrays
    updates, state = t.update(updates, state, params)      # new values; the old ones stay valid

It turns incoming updates (at first the gradients) into outgoing ones: scaled by Adam's moments,
clipped, decayed, multiplied by ``-lr``. :class:`Chain` runs several in order, and
:func:`apply_updates` adds the result to the params. Most transformations act on each parameter
array alone; they only write that per-array math, in :meth:`Transformation.leaf`, and this
module lifts it to whole trees (:func:`map_leaves`), keeps the step count and the per-parameter
state arrays (``slots``, e.g. Adam's ``mu`` and ``nu``) in one :class:`State` record.

An **optimizer** (:class:`Optimizer`: ``SGD``, ``Adam``, ... in :mod:`purenn.optim.optimizers`)
is a named composition with the two methods :func:`purenn.fit` calls::

    state = opt.init(params)
    params, state = opt.update(params, grads, state)

:func:`sgd_step` is the tutorial's update on its own: ``p - lr * g`` for every leaf.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentTypeError, ShapeError
from purenn.optim.schedules import Schedule
from purenn.tree import readonly, tree_map, tree_structure, tree_unflatten
from purenn.validation import Rule, check, positive_number, to_float

__all__ = [
    "State", "Transformation", "Chain", "chain", "Optimizer", "FromTransformation", "as_optimizer",
    "map_leaves", "apply_updates", "sgd_step", "learning_rate_field", "LEARNING_RATE",
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


def _step_into(scale: float, p: np.ndarray, u: Any) -> np.ndarray:
    """Read-only ``p + scale * u``, computed as ``(u * scale) + p`` (exactly equal) in one fresh
    array: for large layers a second temporary costs more than the arithmetic."""
    if type(u) is not np.ndarray or (u.dtype is not p.dtype and u.dtype != p.dtype) or u.shape != p.shape:
        u = as_update("apply_updates", p, u)
    if not p.ndim:  # u * scale would be a NumPy scalar, not an array
        out = np.multiply(u, scale, out=np.empty((), p.dtype))
        out += p
    elif scale == 1.0:
        out = np.add(u, p)  # one pass; (u * 1.0) + p would be the same numbers in two
    else:
        out = u * scale
        out += p
    out.setflags(write=False)  # cheaper than out.flags.writeable = False, which builds a flags object
    return out


def _step_reusing(scale: float, p: np.ndarray, u: Any) -> np.ndarray:
    """:func:`_step_into`'s numbers, written into ``u`` itself when nothing but its grads dict
    holds ``u`` (its reference count says so, as NumPy's own temporary elision decides) and ``u``
    is an array that owns its memory, of ``p``'s dtype and shape. The new params then
    live in memory the backward pass has just written (still in the CPU's caches) instead of a
    fresh block each step. An array held anywhere else (twice in the grads, viewed by another
    array, kept by a layer) gets a fresh array, as in :meth:`Optimizer.update`."""
    if (type(u) is np.ndarray and sys.getrefcount(u) == _UNSHARED_REFS and u.base is None
            and u.dtype is p.dtype and u.shape == p.shape and p.ndim):
        u.setflags(write=True)  # allowed: u owns its memory (a transformation's output is read-only)
        if scale != 1.0:
            np.multiply(u, scale, out=u)
        u += p
        u.setflags(write=False)
        return u
    return _step_into(scale, p, u)


def _apply(params: Any, updates: Any, scale: float, step: Any = _step_into) -> Any:
    """:func:`apply_updates` with each leaf through ``step`` (:func:`_step_into` or
    :func:`_step_reusing`), on the walk every update takes (:func:`_map_pair`)."""
    return _map_pair(functools.partial(step, scale), params, updates)


def _refs_when_unshared() -> int:
    """The reference count :func:`_step_reusing` sees for an array held only by its dict."""
    seen = []

    def probe(scale: float, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        seen.append(sys.getrefcount(u))
        return p

    _apply({"w": np.zeros(1)}, {"w": np.zeros(1)}, 1.0, probe)
    return seen[0]


_UNSHARED_REFS = _refs_when_unshared()


def apply_updates(params: Any, updates: Any, scale: float = 1.0) -> Any:
    """New read-only params ``p + scale * u`` for every leaf; ``params`` stay unchanged.

    ``scale`` folds a final multiplication into the same pass: ``apply_updates(p, g, -lr)`` is
    plain gradient descent, bit for bit ``p + (-lr * g)``.
    """
    return _apply(params, updates, scale)


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
    """A transformation's state: ``step`` (updates applied so far) and ``slots``, one tree shaped
    like params per name in the transformation's ``slots`` (e.g. ``{"mu": ..., "nu": ...}``)."""

    step: int
    slots: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Transformation:
    """Base class. A per-array transformation declares ``slots`` (names of its state arrays,
    zeros at the start unless :meth:`init_slot` says otherwise) and defines :meth:`leaf`;
    :meth:`init` and :meth:`update` lift it to trees. Others override ``init``/``update``."""

    slots: ClassVar[tuple[str, ...]] = ()

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
    for i, t in enumerate(items):
        if not isinstance(t, Transformation):
            raise ArgumentTypeError(
                f"Chain: item {i} ({t!r:.80}) is not a transformation; give records such as "
                "ScaleByAdam() or ScaleByLearningRate(1e-3)"
            )
    return items


@attrs.frozen
class Chain(Transformation):
    """Run ``transformations`` in order, each on the previous one's output (optax's ``chain``).
    The state is a tuple with one entry per transformation. :func:`chain` builds one."""

    transformations: tuple[Transformation, ...] = attrs.field(converter=_to_transformations)

    def init(self, params: Any) -> tuple[Any, ...]:
        return tuple(t.init(params) for t in self.transformations)

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, tuple[Any, ...]]:
        self._check_states(state, len(self.transformations))
        new_states = []
        for t, s in zip(self.transformations, state):
            updates, s = t.update(updates, s, params)
            new_states.append(s)
        return updates, tuple(new_states)

    def _check_states(self, state: Any, n: int) -> None:
        if not isinstance(state, tuple) or len(state) != n:
            raise ArgumentTypeError(
                f"{self!r:.200}.update needs the tuple of {n} states its init(params) makes, "
                f"got {type(state).__name__}"
            )


def chain(*transformations: Transformation) -> Chain:
    """``Chain`` of the given transformations, run in order: ``chain(ClipToGlobalNorm(1.0),
    ScaleByAdam(), ScaleByLearningRate(1e-3))`` is Adam with clipping."""
    return Chain(transformations)


# --- learning rates --------------------------------------------------------------------------


def _is_lr(v: Any) -> bool:
    return isinstance(v, Schedule) or (isinstance(v, float) and math.isfinite(v) and v > 0)


LEARNING_RATE = Rule(
    "a positive number or a purenn.optim.schedules.Schedule (e.g. CosineDecay(0.1, 1000))",
    lambda v: isinstance(v, (float, Schedule)), _is_lr,
)


def learning_rate_field(default: Any = attrs.NOTHING) -> Any:
    """An ``lr`` field: a positive number or a schedule of the step."""
    return attrs.field(default=default, converter=to_float, validator=LEARNING_RATE)


def learning_rate_at(lr: float | Schedule, step: int) -> float:
    """``lr`` at ``step`` (the number of updates already applied)."""
    return float(lr(step)) if isinstance(lr, Schedule) else lr


# --- optimizers ------------------------------------------------------------------------------


@attrs.frozen
class Optimizer:
    """Base class of named optimizers: a record of hyperparameters whose :meth:`transformation`
    is a composition of transformations; ``init``/``update`` apply it to params.

    When the composition ends in :class:`~purenn.optim.transforms.ScaleByLearningRate`, that last
    multiplication is folded into :func:`apply_updates`' pass (same numbers, one walk fewer).
    """

    def transformation(self) -> Transformation:  # pragma: no cover
        """The composition this optimizer stands for."""
        raise NotImplementedError(f"{type(self).__name__} must define transformation()")

    @functools.cached_property
    def _plan(self) -> tuple[Any, Any]:
        """``(Chain of all but a final ScaleByLearningRate, that one)``, or ``(the whole
        transformation, None)`` when it does not end in one."""
        from purenn.optim.transforms import ScaleByLearningRate

        t = self.transformation()
        if isinstance(t, Chain) and t.transformations and isinstance(t.transformations[-1], ScaleByLearningRate):
            return Chain(t.transformations[:-1]), t.transformations[-1]
        return t, None

    def init(self, params: Any) -> Any:
        """The optimizer's state for ``params``: that of its transformation."""
        return self.transformation().init(params)

    def update(self, params: Any, grads: Any, state: Any, *, lr_scale: float = 1.0) -> tuple[Any, Any]:
        """One step: new read-only params and the new state; the old ones stay valid.

        ``lr_scale`` multiplies the learning rate (a plateau rule's factor); for a composition
        that does not end in a learning rate, it multiplies the final updates."""
        return self._update(params, grads, state, lr_scale, _step_into)

    def update_reusing_grads(self, params: Any, grads: Any, state: Any, *, lr_scale: float = 1.0) -> tuple[Any, Any]:
        """:meth:`update`, bit for bit, for a caller that owns ``grads`` and drops them after the
        call: the new params are written into the final updates' arrays (the gradients themselves
        for plain descent) when no other reference to the array exists, and are then read-only.
        An array the optimizer's state also holds (a momentum buffer that is the update too) is
        never written. The reference count sees only references to the array itself, not to a
        dict or tuple holding it that someone else keeps: :func:`purenn.fit` uses this only when
        the model, its layers and the optimizer's transformations are all purenn's own, which
        neither keep their outputs nor return one tree as both update and state."""
        return self._update(params, grads, state, lr_scale, _step_reusing)

    def _update(self, params: Any, grads: Any, state: Any, lr_scale: float, step: Any) -> tuple[Any, Any]:
        head, last = self._plan
        if last is None:
            updates, state = head.update(grads, state, params)
            return _apply(params, updates, lr_scale, step), state
        head._check_states(state, len(head.transformations) + 1)
        if head.transformations:
            grads, inner = head.update(grads, state[:-1], params)
        else:
            inner = ()
        lr_state = state[-1]
        last._check_state(lr_state)
        lr = learning_rate_at(last.lr, lr_state.step)
        new_params = _apply(params, grads, -lr if lr_scale == 1.0 else -lr * lr_scale, step)
        return new_params, (*inner, State(lr_state.step + 1, {}))


@attrs.frozen
class FromTransformation(Optimizer):
    """Any transformation used as an optimizer: ``updates = t.update(grads)``, then
    ``params + updates``. ``fit(optimizer=Chain(...))`` wraps a transformation in this."""

    transform: Transformation = attrs.field(
        validator=Rule("a Transformation", lambda v: isinstance(v, Transformation))
    )

    def transformation(self) -> Transformation:
        return self.transform


def as_optimizer(value: Any) -> Optimizer:
    """``value`` as something with ``init(params)`` and ``update(params, grads, state)``: an
    optimizer as it is, a transformation wrapped in :class:`FromTransformation`."""
    if isinstance(value, Transformation):
        return FromTransformation(value)
    if callable(getattr(value, "init", None)) and callable(getattr(value, "update", None)):
        return value
    raise ArgumentTypeError(
        "`optimizer` must have init(params) and update(params, grads, state), or be a "
        f"transformation; e.g. purenn.Adam(1e-3); got {value!r:.80}"
    )
