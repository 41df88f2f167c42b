"""Optimizers as pairs of pure functions, in the spirit of optax's ``GradientTransformation``.

An optimizer is a frozen ``attrs`` record of hyperparameters with two pure methods::

    state = opt.init(params)                                  # a small frozen record
    params, state = opt.update(params, grads, state)          # new values; old ones stay valid

A state holds ``step`` (the number of updates already applied, an int) and trees with the same
structure and dtypes as ``params``. ``update`` never writes into the arrays it is given; every
array in the new params and state is freshly allocated and read-only. Gradients are converted to
each parameter's dtype, so float32 params stay float32.

``lr`` is a positive float or a :mod:`purenn.optim.schedules` schedule; the update that turns state
``step`` into ``step + 1`` uses ``lr(step)`` (so ``lr(0)`` for the first update).

Gradient clipping is a wrapper, so it composes with any optimizer (as ``optax.chain``)::

    opt = ClipByGlobalNorm(Adam(1e-3), max_norm=1.0)

:func:`purenn.sgd_step` remains the simplest case: ``SGD(lr)`` computes exactly ``p - lr * g``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.optim.schedules import Schedule, real_in, to_float
from purenn.tree import readonly, tree_leaves, tree_map, tree_structure, tree_unflatten

__all__ = [
    "Optimizer", "SGD", "SGDState", "Adam", "AdamW", "AdamState", "ClipByGlobalNorm",
    "clip_by_global_norm", "global_norm",
]


def _lr_validator(instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, Schedule):
        return
    if not isinstance(value, float) or not math.isfinite(value) or value <= 0:
        raise (ValueError if isinstance(value, float) else TypeError)(
            f"`lr` must be a positive number or a purenn.optim.schedules.Schedule "
            f"(e.g. CosineDecay(0.1, 1000)), got {value!r}"
        )


def _lr_field(default: Any = attrs.NOTHING) -> Any:
    return attrs.field(default=default, converter=to_float, validator=_lr_validator)


def _beta_field(default: float) -> Any:
    return attrs.field(default=default, converter=to_float, validator=real_in(0.0, 1.0))


def _decay_field(default: float) -> Any:
    return attrs.field(default=default, converter=to_float, validator=real_in(0.0))


def _eps_field() -> Any:
    return attrs.field(default=1e-8, converter=to_float, validator=real_in(0.0, low_open=True))


@attrs.frozen
class Optimizer:
    """Base class: ``init(params) -> state``, ``update(params, grads, state) -> (params, state)``."""

    def init(self, params: Any) -> Any:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define init(params)")

    def update(self, params: Any, grads: Any, state: Any) -> tuple[Any, Any]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define update(params, grads, state)")

    def learning_rate(self, step: int) -> float:
        """The learning rate used by the update that starts from state ``step``."""
        lr = self.lr  # type: ignore[attr-defined]
        return float(lr(step)) if isinstance(lr, Schedule) else lr

    def _check_state(self, state: Any, kind: type) -> None:
        if not isinstance(state, kind):
            raise TypeError(
                f"{self!r}.update needs the {kind.__name__} made by its own init(params), "
                f"got {type(state).__name__}"
            )


def _zeros_like(params: Any) -> Any:
    return tree_map(lambda p: readonly(np.zeros_like(p)), params)


def _aligned(*trees: Any) -> list[tuple]:
    """Matching leaves of trees of the same structure, in the first tree's order."""
    out: list[tuple] = []
    tree_map(lambda *leaves: out.append(leaves), *trees)
    return out


def _grad(opt: Optimizer, p: np.ndarray, g: Any) -> np.ndarray:
    """``g`` in ``p``'s dtype (no copy when it already is), with ``p``'s shape."""
    g = np.asarray(g, dtype=p.dtype)
    if g.shape != p.shape:
        raise ShapeError(f"{opt!r}: gradient of shape {g.shape} for a parameter of shape {p.shape}")
    return g


def _subtract_scaled(p: np.ndarray, d: np.ndarray, lr: float, owned: bool) -> np.ndarray:
    """Read-only ``p - lr * d``, reusing ``d``'s memory when it is a scratch array we own."""
    new = np.multiply(d, -lr, out=d if owned else None)
    new += p
    return readonly(new)


# --- SGD -------------------------------------------------------------------------------------


@attrs.frozen
class SGDState:
    """``step``: updates applied; ``velocity``: momentum buffers like params (None without momentum)."""

    step: int
    velocity: Any


@attrs.frozen
class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's conventions for momentum and Nesterov::

        g_t = grad + weight_decay * p_{t-1}                (L2 added to the gradient)
        b_t = momentum * b_{t-1} + g_t                     (b_0 = 0, so b_1 = g_1)
        d_t = g_t + momentum * b_t   if nesterov   else   b_t   (d_t = g_t without momentum)
        p_t = p_{t-1} - lr(t-1) * d_t

    The learning rate multiplies the buffer rather than living inside it (unlike Sutskever et al.),
    so changing ``lr`` mid-run changes the step size at once. ``SGD(lr)`` is :func:`sgd_step`.
    """

    lr: float | Schedule = _lr_field()
    momentum: float = _beta_field(0.0)
    nesterov: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    weight_decay: float = _decay_field(0.0)

    @nesterov.validator
    def _nesterov_needs_momentum(self, attribute: attrs.Attribute, value: bool) -> None:
        if value and self.momentum == 0.0:
            raise ValueError("`nesterov=True` needs `momentum` > 0, got momentum=0.0; set e.g. momentum=0.9")

    def init(self, params: Any) -> SGDState:
        return SGDState(step=0, velocity=_zeros_like(params) if self.momentum else None)

    def update(self, params: Any, grads: Any, state: SGDState) -> tuple[Any, SGDState]:
        self._check_state(state, SGDState)
        lr, mu, wd = self.learning_rate(state.step), self.momentum, self.weight_decay
        velocity = state.velocity if mu else params  # placeholder tree when there is no momentum
        new_params, new_velocity = [], []
        for p, g, b in _aligned(params, grads, velocity):
            g = _grad(self, p, g)
            d, owned = g, False
            if wd:
                d = np.multiply(p, wd)
                d += g
                owned = True
            if mu:
                b = np.multiply(b, mu)
                b += d
                new_velocity.append(readonly(b))
                if self.nesterov:
                    if owned:
                        d += mu * b
                    else:
                        d = np.multiply(b, mu)
                        d += g
                        owned = True
                else:
                    d, owned = b, False
            new_params.append(_subtract_scaled(p, d, lr, owned))
        structure = tree_structure(params)
        velocity = tree_unflatten(structure, new_velocity) if mu else None
        return tree_unflatten(structure, new_params), SGDState(state.step + 1, velocity)


# --- Adam and AdamW --------------------------------------------------------------------------


@attrs.frozen
class AdamState:
    """``step``: updates applied; ``mu``, ``nu``: first and second moment estimates like params."""

    step: int
    mu: Any
    nu: Any


@attrs.frozen
class _AdamBase(Optimizer):
    """Adam's hyperparameters, state and step (Kingma & Ba, Algorithm 1), shared by :class:`Adam`
    and :class:`AdamW`, which differ only in how ``weight_decay`` enters (``decoupled``) and its
    default. Not registered for serialisation: only the public subclasses are."""

    decoupled: ClassVar[bool] = False

    lr: float | Schedule = _lr_field(1e-3)
    b1: float = _beta_field(0.9)
    b2: float = _beta_field(0.999)
    eps: float = _eps_field()
    weight_decay: float = _decay_field(0.0)

    def init(self, params: Any) -> AdamState:
        return AdamState(step=0, mu=_zeros_like(params), nu=_zeros_like(params))

    def update(self, params: Any, grads: Any, state: AdamState) -> tuple[Any, AdamState]:
        """One step, with L2 folded into the gradient (Adam) or decoupled decay
        ``p <- p * (1 - lr * weight_decay)`` applied before it (AdamW, Loshchilov & Hutter)."""
        self._check_state(state, AdamState)
        l2, decay = (0.0, self.weight_decay) if self.decoupled else (self.weight_decay, 0.0)
        t = state.step + 1
        lr, b1, b2 = self.learning_rate(state.step), self.b1, self.b2
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
        new_params, new_mu, new_nu = [], [], []
        for p, g, m, v in _aligned(params, grads, state.mu, state.nu):
            g = _grad(self, p, g)
            if l2:
                gl = np.multiply(p, l2)
                gl += g
                g = gl
            # m + (1 - b1)(g - m) = b1 m + (1 - b1) g, in place on fresh arrays (PyTorch's lerp)
            m_old, v_old = m, v
            m = np.subtract(g, m_old)
            m *= 1.0 - b1
            m += m_old
            v = np.multiply(g, g)
            v -= v_old
            v *= 1.0 - b2
            v += v_old
            # p - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / bc1 and v_hat = v / bc2
            d = np.sqrt(v)
            d *= 1.0 / math.sqrt(bc2)
            d += self.eps
            np.divide(m, d, out=d)
            d *= -lr / bc1
            if decay:
                d += p * (1.0 - lr * decay)
            else:
                d += p
            new_params.append(readonly(d))
            new_mu.append(readonly(m))
            new_nu.append(readonly(v))
        structure = tree_structure(params)
        return tree_unflatten(structure, new_params), AdamState(
            t, tree_unflatten(structure, new_mu), tree_unflatten(structure, new_nu)
        )


@attrs.frozen
class Adam(_AdamBase):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the gradient,
    as in PyTorch's ``Adam`` (for decoupled decay use :class:`AdamW`)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 m_{t-1} + (1 - b1) g_t            v_t = b2 v_{t-1} + (1 - b2) g_t^2
        m^_t = m_t / (1 - b1^t)                     v^_t = v_t / (1 - b2^t)
        p_t = p_{t-1} - lr(t-1) * m^_t / (sqrt(v^_t) + eps)

    Fields: ``lr`` (default 1e-3), ``b1`` (0.9), ``b2`` (0.999), ``eps`` (1e-8),
    ``weight_decay`` (0.0).
    """


@attrs.frozen
class AdamW(_AdamBase):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019; PyTorch's ``AdamW``)::

        m_t, v_t, m^_t, v^_t as in Adam, from the raw gradient
        p_t = p_{t-1} - lr(t-1) * (m^_t / (sqrt(v^_t) + eps) + weight_decay * p_{t-1})

    The decay is scaled by the (scheduled) learning rate, as PyTorch does. Fields as
    :class:`Adam`'s, except that ``weight_decay`` defaults to 0.01.
    """

    decoupled: ClassVar[bool] = True

    weight_decay: float = _decay_field(0.01)


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
    if not max_norm > 0:
        raise ValueError(f"`max_norm` must be > 0, got {max_norm!r}")
    norm = global_norm(grads)
    if norm <= max_norm:
        return grads
    scale = float(max_norm) / norm
    return tree_map(lambda g: readonly(np.multiply(g, scale)), grads)


@attrs.frozen
class ClipByGlobalNorm(Optimizer):
    """Clip the gradients to global norm ``max_norm`` (:func:`clip_by_global_norm`), then apply
    ``optimizer``. The state is the wrapped optimizer's; wrappers nest."""

    optimizer: Optimizer = attrs.field(validator=attrs.validators.instance_of(Optimizer))
    max_norm: float = attrs.field(converter=to_float, validator=real_in(0.0, low_open=True))

    def init(self, params: Any) -> Any:
        return self.optimizer.init(params)

    def update(self, params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
        return self.optimizer.update(params, clip_by_global_norm(grads, self.max_norm), state)

    def learning_rate(self, step: int) -> float:
        return self.optimizer.learning_rate(step)
