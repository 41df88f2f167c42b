"""The building blocks of every optimizer: gradient transformations, each a few lines of math.

Each is a frozen record (see :mod:`purenn.optim.base` for the contract). Most define only
``leaf``: the math for one parameter array ``p``, its incoming update ``u`` and its state arrays
(``slots``), given this step's scalar ``constants``; the base class lifts it to trees. Formulas
use t = step + 1 (the update being made), and ``lr(t-1)`` for a learning rate or schedule::

    ScaleByLearningRate(lr)           u <- -lr(t-1) * u
    AddDecayedWeights(wd)             u <- u + wd * p
    Trace(momentum, nesterov)         b <- momentum * b + u;  u <- b  (nesterov: u + momentum * b)
    ScaleByAdam(b1, b2, eps)          m <- b1 m + (1-b1) u;  v <- b2 v + (1-b2) u^2
                                      u <- (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
    ScaleByRMS(alpha, eps)            v <- alpha v + (1-alpha) u^2;  u <- u / (sqrt(v) + eps)
    ScaleByStddev(alpha, eps)         as ScaleByRMS, centred: also m <- alpha m + (1-alpha) u,
                                      u <- u / (sqrt(v - m^2) + eps)
    ScaleByAdagrad(eps, initial)      s <- s + u^2 (s starts at ``initial``);  u <- u / (sqrt(s) + eps)
    ClipByGlobalNorm(max_norm)        u <- u * min(1, max_norm / ||u||), ||.|| over every leaf

To add one (Lion, gradient accumulation, ...), subclass :class:`Transformation` under
``@attrs.frozen``, name its ``slots``, and write ``constants`` (if it needs scalars) and ``leaf``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.optim.base import State, Transformation, as_update, map_leaves
from purenn.optim.schedules import Schedule, learning_rate_at, learning_rate_field
from purenn.tree import readonly, tree_leaves, tree_map
from purenn.validation import (
    boolean, check, float_field, non_negative_number, positive_number, to_float, unit_interval,
)

__all__ = [
    "ScaleByLearningRate", "AddDecayedWeights", "Trace", "ScaleByAdam", "ScaleByRMS",
    "ScaleByStddev", "ScaleByAdagrad", "ClipByGlobalNorm", "global_norm", "clip_by_global_norm",
]


@attrs.frozen
class ScaleByLearningRate(Transformation):
    """u <- -lr(t-1) * u: the descent step (a float or a schedule of the step). The only place a
    learning rate lives: every named optimizer ends in one."""

    fresh_updates: ClassVar[bool] = True

    lr: float | Schedule = learning_rate_field()

    def constants(self, step: int) -> dict[str, Any]:
        return {"scale": -learning_rate_at(self.lr, step)}

    def scale_at(self, step: int) -> float | None:
        # ``u * (-lr)`` is this class's own update; a subclass that changes leaf or constants
        # makes another one (unless it says so by overriding scale_at too)
        cls = type(self)
        if cls.leaf is not ScaleByLearningRate.leaf or cls.constants is not ScaleByLearningRate.constants:
            return None
        return -learning_rate_at(self.lr, step)

    def leaf(self, u: np.ndarray, p: np.ndarray, *, scale: float) -> np.ndarray:
        return np.multiply(u, scale)


@attrs.frozen
class AddDecayedWeights(Transformation):
    """u <- u + weight_decay * p. Before a scaling (SGD, Adam) it is L2 regularisation; after
    one, decoupled weight decay (AdamW)."""

    fresh_updates: ClassVar[bool] = True

    weight_decay: float = float_field(non_negative_number)

    def leaf(self, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        out = np.multiply(p, self.weight_decay)
        out += u
        return out


@attrs.frozen
class Trace(Transformation):
    """Momentum with PyTorch's conventions: b <- momentum * b + u (b starts at 0), then u <- b,
    or u <- u + momentum * b with ``nesterov``. Without Nesterov its update is its state's
    array (never written into: ``fresh_updates`` is False then)."""

    slots: ClassVar[tuple[str, ...]] = ("trace",)

    momentum: float = float_field(unit_interval, 0.9)
    nesterov: bool = attrs.field(default=False, validator=boolean)

    @property
    def fresh_updates(self) -> bool:  # type: ignore[override]
        return self.nesterov

    @nesterov.validator
    def _nesterov_needs_momentum(self, attribute: attrs.Attribute, value: bool) -> None:
        if value and self.momentum == 0.0:
            raise ArgumentError("`nesterov=True` needs `momentum` > 0, got momentum=0.0; set e.g. momentum=0.9")

    def leaf(self, u: np.ndarray, p: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = np.multiply(b, self.momentum)
        b += u
        if not self.nesterov:
            return b, b
        out = np.multiply(b, self.momentum)
        out += u
        return out, b


@attrs.frozen
class ScaleByAdam(Transformation):
    """Adam's direction (Kingma & Ba 2015, with bias correction)::

        m <- b1 m + (1-b1) u           v <- b2 v + (1-b2) u^2
        u <- (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)

    Follow it with :class:`ScaleByLearningRate`, as :class:`~purenn.optim.optimizers.Adam` and
    optax do.
    """

    slots: ClassVar[tuple[str, ...]] = ("mu", "nu")
    fresh_updates: ClassVar[bool] = True

    b1: float = float_field(unit_interval, 0.9)
    b2: float = float_field(unit_interval, 0.999)
    eps: float = float_field(positive_number, 1e-8)

    def constants(self, step: int) -> dict[str, Any]:
        t = step + 1
        return {"factor": 1.0 / (1.0 - self.b1**t), "v_scale": 1.0 / math.sqrt(1.0 - self.b2**t),
                "flush": step % FLUSH_EVERY == 0}

    def leaf(self, u: np.ndarray, p: np.ndarray, m: np.ndarray, v: np.ndarray, *,
             factor: float, v_scale: float, flush: bool = True) -> tuple[np.ndarray, ...]:
        """``flush``: set the moments' subnormal values to 0 (see :func:`flush_subnormals`)."""
        if u.size <= _BLOCK:
            return self._block(u, m, v, np.empty_like(m), np.empty_like(v), np.empty_like(m),
                               factor, v_scale, flush)
        # a large array a block at a time: each block's dozen passes then run in the CPU's cache
        # (the same numbers: every operation is element-wise)
        # C order, whatever the params' layout: the outputs' flat views must be views, not copies
        out = np.empty(m.shape, m.dtype), np.empty(v.shape, v.dtype), np.empty(m.shape, m.dtype)
        flat = [np.ravel(a) for a in (u, m, v)] + [a.reshape(-1) for a in out]
        for s in range(0, u.size, _BLOCK):
            ub, mb, vb, m_out, v_out, d_out = (a[s : s + _BLOCK] for a in flat)
            self._block(ub, mb, vb, m_out, v_out, d_out, factor, v_scale, flush)
        m_new, v_new, d = out
        return d, m_new, v_new

    def _block(self, u: np.ndarray, m_old: np.ndarray, v_old: np.ndarray, m: np.ndarray,
               v: np.ndarray, d: np.ndarray, factor: float, v_scale: float,
               flush: bool) -> tuple[np.ndarray, ...]:
        """The update of one block, into ``m``, ``v`` and ``d`` (fresh arrays)."""
        # m + (1 - b1)(u - m) = b1 m + (1 - b1) u (PyTorch's lerp)
        np.subtract(u, m_old, out=m)
        m *= 1.0 - self.b1
        m += m_old
        np.multiply(u, u, out=v)
        v -= v_old
        v *= 1.0 - self.b2
        v += v_old
        if flush:
            flush_subnormals(m)
            flush_subnormals(v)
        np.sqrt(v, out=d)
        d *= v_scale
        d += self.eps
        np.divide(m, d, out=d)
        d *= factor
        return d, m, v


#: The purenn version that gave Adam this arithmetic, and what changed then. Runs made by an
#: earlier version cannot be repeated bit for bit: ``purenn reproduce`` says so, and their training
#: states (whose Adam state had another layout) are refused with this reason.
ADAM_CHANGED = ("0.2.0", "the learning rate is applied on its own, by ScaleByLearningRate after "
                "Adam's bias correction (before, lr / (1 - b1^t) was one factor), so the last bits "
                "of every Adam step differ, and Adam's state holds one entry more")


def flush_subnormals(a: np.ndarray) -> None:
    """Set the subnormal values of ``a`` (nonzero, below the dtype's smallest normal number) to 0,
    in place.

    A moment that a parameter's zero gradients keep decaying (an MNIST border pixel's weights, a
    dead ReLU's) sinks below 1e-38 in float32 after a few hundred steps of Adam's b1 = 0.9, and
    the CPU then works on it tens of times slower (measured: a multiplication of 400k floats,
    11% of them subnormal, 0.12 -> 1.56 ms; Adam's step on the mlp preset's first layer 0.9 ->
    3.4 ms by its 1500th step). NumPy cannot set the CPU's flush-to-zero mode, so the moments are
    flushed here, every :data:`FLUSH_EVERY` steps (a flush costs two passes; between flushes a
    value stays subnormal for a few steps instead of the ~150 it takes to decay to 0). The update
    they make, at most 1e-38 / eps * lr, is far below any parameter's rounding, so training is
    unchanged in all but its last bits."""
    np.copyto(a, 0, where=np.abs(a) < np.finfo(a.dtype).tiny)


FLUSH_EVERY = 8


# Element-wise updates of arrays larger than this many elements run block by block, each block's
# arrays (about 1.5 MB for Adam's six float32 ones) small enough to stay in the CPU's cache.
_BLOCK = 1 << 16


@attrs.frozen
class ScaleByRMS(Transformation):
    """RMSProp's scaling (PyTorch's ``RMSprop``, not centred)::

        v <- alpha v + (1-alpha) u^2      (v starts at 0)
        u <- u / (sqrt(v) + eps)
    """

    slots: ClassVar[tuple[str, ...]] = ("nu",)
    fresh_updates: ClassVar[bool] = True

    alpha: float = float_field(unit_interval, 0.99)
    eps: float = float_field(positive_number, 1e-8)

    def leaf(self, u: np.ndarray, p: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.multiply(v, self.alpha)
        v += (1.0 - self.alpha) * (u * u)
        return u / (np.sqrt(v) + self.eps), v


@attrs.frozen
class ScaleByStddev(Transformation):
    """Centred RMSProp (PyTorch's ``RMSprop(centered=True)``): divide by an estimate of the
    gradient's standard deviation instead of its root mean square::

        m <- alpha m + (1-alpha) u        v <- alpha v + (1-alpha) u^2
        u <- u / (sqrt(v - m^2) + eps)
    """

    slots: ClassVar[tuple[str, ...]] = ("mu", "nu")
    fresh_updates: ClassVar[bool] = True

    alpha: float = float_field(unit_interval, 0.99)
    eps: float = float_field(positive_number, 1e-8)

    def leaf(self, u: np.ndarray, p: np.ndarray, m: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
        m = m + (1.0 - self.alpha) * (u - m)
        v = np.multiply(v, self.alpha)
        v += (1.0 - self.alpha) * (u * u)
        return u / (np.sqrt(v - m * m) + self.eps), m, v


@attrs.frozen
class ScaleByAdagrad(Transformation):
    """Adagrad's scaling (PyTorch's ``Adagrad``)::

        s <- s + u^2       (s starts at ``initial_accumulator_value``)
        u <- u / (sqrt(s) + eps)
    """

    slots: ClassVar[tuple[str, ...]] = ("sum_of_squares",)
    fresh_updates: ClassVar[bool] = True

    eps: float = float_field(positive_number, 1e-10)
    initial_accumulator_value: float = float_field(non_negative_number, 0.0)

    def init_slot(self, name: str, p: np.ndarray) -> np.ndarray:
        return np.full_like(p, self.initial_accumulator_value)

    def leaf(self, u: np.ndarray, p: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = s + u * u
        return u / (np.sqrt(s) + self.eps), s


# --- gradient clipping -----------------------------------------------------------------------


def global_norm(tree: Any) -> float:
    """sqrt of the sum of squares of every element of every leaf, accumulated in float64."""
    total = 0.0
    for g in tree_leaves(tree):
        g = np.asarray(g)
        total += float(np.vdot(g, g))
    return math.sqrt(total)


def clip_by_global_norm(grads: Any, max_norm: float) -> Any:
    """Scale ``grads`` by ``max_norm / global_norm(grads)`` when that norm exceeds ``max_norm``.

    The direction is kept; below the bound (zero gradients included) ``grads`` is returned as is.
    Otherwise every leaf is a new read-only array of the same dtype. A non-finite norm gives NaNs,
    as in PyTorch and optax: check the loss first.
    """
    max_norm = check("max_norm", max_norm, positive_number, to_float)
    norm = global_norm(grads)
    if norm <= max_norm:
        return grads
    scale = max_norm / norm
    return tree_map(lambda g: readonly(np.multiply(g, scale)), grads)


@attrs.frozen
class ClipByGlobalNorm(Transformation):
    """u <- u * min(1, max_norm / ||u||), the norm taken over every leaf at once
    (:func:`clip_by_global_norm`); the direction is kept. Below the bound the updates pass
    through as they are (``fresh_updates``: new arrays, or the very ones it was given).
    ``chain(ClipByGlobalNorm(1.0), Adam(1e-3))`` clips Adam's gradients."""

    fresh_updates: ClassVar[bool] = True

    max_norm: float = float_field(positive_number)

    def update(self, updates: Any, state: Any, params: Any) -> tuple[Any, Any]:
        self._check_state(state)
        updates = map_leaves(lambda p, u: as_update(self, p, u), params, updates)  # params lead
        return clip_by_global_norm(updates, self.max_norm), State(state.step + 1)
