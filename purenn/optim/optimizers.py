"""Named optimizers, each one composition of the transformations in :mod:`purenn.optim.transforms`.

An optimizer is a frozen record of the hyperparameters users know (PyTorch's names and defaults)
whose :meth:`~purenn.optim.base.Optimizer.transformation` is a :class:`~purenn.optim.base.Chain`;
``init(params)`` and ``update(grads, state, params) -> (params, state)`` come from the base class,
so ``fit(optimizer=Adam(1e-3))`` works for all of them, and the state is plain data (a tuple
with one :class:`~purenn.optim.base.State` per transformation).

    SGD(lr, momentum, nesterov, weight_decay)   [AddDecayedWeights], [Trace], ScaleByLearningRate
    Adam(lr, b1, b2, eps, weight_decay)         [AddDecayedWeights], ScaleByAdam, ScaleByLearningRate
    AdamW(lr, b1, b2, eps, weight_decay)        ScaleByAdam, AddDecayedWeights, ScaleByLearningRate
    AdamW(..., mask=m) = MaskedAdamW            ScaleByAdam, Masked(AddDecayedWeights, m), ScaleByLearningRate
    RMSProp(lr, alpha, eps, weight_decay,       [AddDecayedWeights], ScaleByRMS or ScaleByStddev,
            momentum, centered)                 [Trace], ScaleByLearningRate
    Adagrad(lr, eps, weight_decay,              [AddDecayedWeights], ScaleByAdagrad,
            initial_accumulator_value)          ScaleByLearningRate

(brackets: only when that hyperparameter is non-zero). Every one ends in the learning rate, the
only place it lives. ``lr`` is a positive float or a :mod:`purenn.optim.schedules` schedule; the
update that turns state step ``s`` into ``s + 1`` uses ``lr(s)``. ``SGD(lr)`` computes exactly
:func:`~purenn.optim.base.sgd_step`'s ``p - lr * g``. Clipping composes with any of them:
``chain(ClipByGlobalNorm(1.0), Adam(1e-3))``.
"""

from __future__ import annotations

from typing import Any

import attrs

from purenn.errors import ArgumentError
from purenn.optim.base import Chain, Optimizer, Transformation
from purenn.optim.masking import Masked, mask_rule, resolve_mask, to_mask
from purenn.optim.schedules import Schedule, learning_rate_field
from purenn.optim.transforms import (
    AddDecayedWeights, ScaleByAdagrad, ScaleByAdam, ScaleByLearningRate, ScaleByRMS, ScaleByStddev,
    Trace,
)
from purenn.validation import boolean, float_field, non_negative_number, positive_number, unit_interval

__all__ = ["SGD", "Adam", "AdamW", "MaskedAdamW", "RMSProp", "Adagrad"]


def _chain(*parts: Transformation | None) -> Chain:
    return Chain(tuple(p for p in parts if p is not None))


def _decay(weight_decay: float) -> AddDecayedWeights | None:
    return AddDecayedWeights(weight_decay) if weight_decay else None


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

    lr: float | Schedule = learning_rate_field()
    momentum: float = float_field(unit_interval, 0.0)
    nesterov: bool = attrs.field(default=False, validator=boolean)
    weight_decay: float = float_field(non_negative_number, 0.0)

    @nesterov.validator
    def _nesterov_needs_momentum(self, attribute: attrs.Attribute, value: bool) -> None:
        if value and self.momentum == 0.0:
            raise ArgumentError("`nesterov=True` needs `momentum` > 0, got momentum=0.0; set e.g. momentum=0.9")

    def transformation(self) -> Chain:
        return _chain(
            _decay(self.weight_decay),
            Trace(self.momentum, self.nesterov) if self.momentum else None,
            ScaleByLearningRate(self.lr),
        )


@attrs.frozen
class _AdamFamily(Optimizer):
    """The hyperparameters Adam and AdamW share (not registered: only the two records are)."""

    lr: float | Schedule = learning_rate_field(1e-3)
    b1: float = float_field(unit_interval, 0.9)
    b2: float = float_field(unit_interval, 0.999)
    eps: float = float_field(positive_number, 1e-8)
    weight_decay: float = float_field(non_negative_number, 0.0)


@attrs.frozen
class Adam(_AdamFamily):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is L2 added to the gradient,
    as in PyTorch's ``Adam`` (for decoupled decay use :class:`AdamW`)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 m_{t-1} + (1 - b1) g_t            v_t = b2 v_{t-1} + (1 - b2) g_t^2
        m^_t = m_t / (1 - b1^t)                     v^_t = v_t / (1 - b2^t)
        p_t = p_{t-1} - lr(t-1) * m^_t / (sqrt(v^_t) + eps)

    Fields: ``lr`` (default 1e-3), ``b1`` (0.9), ``b2`` (0.999), ``eps`` (1e-8),
    ``weight_decay`` (0.0).
    """

    def transformation(self) -> Chain:
        return _chain(_decay(self.weight_decay), ScaleByAdam(self.b1, self.b2, self.eps),
                      ScaleByLearningRate(self.lr))


# AdamW() without a mask must keep its record (repr, serialized fields, and so digests) as it was,
# and a serialized record holds every field its class has: so a mask makes a record of its own
# class, MaskedAdamW, which AdamW(..., mask=m) builds (__new__ picks the class, __init__ takes
# the mask=None that leaves AdamW as it is).
@attrs.frozen(init=False)
class AdamW(_AdamFamily):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019; PyTorch's ``AdamW``)::

        m_t, v_t, m^_t, v^_t as in Adam, from the raw gradient
        p_t = p_{t-1} - lr(t-1) * (m^_t / (sqrt(v^_t) + eps) + weight_decay * p_{t-1})

    The decay is scaled by the (scheduled) learning rate, as PyTorch does. Fields as
    :class:`Adam`'s, except that ``weight_decay`` defaults to 0.01. ``mask=`` (optax's): decay
    only the params it selects, e.g. ``AdamW(1e-3, mask=decay_mask)`` decays the weights and not
    the biases or normalisation scales; that makes a :class:`MaskedAdamW`.
    """

    weight_decay: float = float_field(non_negative_number, 0.01)

    def __new__(  # noqa: PYI034 - AdamW(..., mask=m) is a MaskedAdamW, not of cls
        cls, lr: Any = 1e-3, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, weight_decay: Any = 0.01,
        *, mask: Any = None,
    ) -> AdamW:
        return super().__new__(MaskedAdamW if mask is not None and cls is AdamW else cls)

    def __init__(self, *args: Any, mask: None = None, **kwargs: Any) -> None:
        self.__attrs_init__(*args, **kwargs)

    def transformation(self) -> Chain:
        return _chain(ScaleByAdam(self.b1, self.b2, self.eps), _decay(self.weight_decay),
                      ScaleByLearningRate(self.lr))


@attrs.frozen
class MaskedAdamW(AdamW):
    """AdamW whose weight decay applies only to the params ``mask`` selects (a tree of booleans,
    a rule's name such as ``"decay_mask"``, or a function of the params: see
    :mod:`purenn.optim.masking`); what ``AdamW(..., mask=m)`` makes::

        p_t = p_{t-1} - lr(t-1) * (m^_t / (sqrt(v^_t) + eps) + mask * weight_decay * p_{t-1})

    PyTorch's ``AdamW`` with two parameter groups, the unselected params' with ``weight_decay=0``.
    """

    mask: Any = attrs.field(kw_only=True, converter=to_mask, validator=mask_rule)

    def transformation(self) -> Chain:
        decay = Masked(AddDecayedWeights(self.weight_decay), self.mask) if self.weight_decay else None
        return _chain(ScaleByAdam(self.b1, self.b2, self.eps), decay, ScaleByLearningRate(self.lr))

    def resolved(self, params: Any) -> MaskedAdamW:
        if not callable(self.mask):
            return self
        return attrs.evolve(self, mask=resolve_mask(self.mask, params))


@attrs.frozen
class RMSProp(Optimizer):
    """RMSProp with PyTorch's ``RMSprop`` conventions and defaults::

        g_t = grad + weight_decay * p_{t-1}
        v_t = alpha v_{t-1} + (1 - alpha) g_t^2                       (v_0 = 0)
        centered: m_t = alpha m_{t-1} + (1 - alpha) g_t, and v_t - m_t^2 replaces v_t below
        d_t = g_t / (sqrt(v_t) + eps)
        momentum: b_t = momentum b_{t-1} + d_t, and b_t replaces d_t
        p_t = p_{t-1} - lr(t-1) * d_t

    Fields: ``lr`` (0.01), ``alpha`` (0.99), ``eps`` (1e-8), ``weight_decay`` (0),
    ``momentum`` (0), ``centered`` (False).
    """

    lr: float | Schedule = learning_rate_field(0.01)
    alpha: float = float_field(unit_interval, 0.99)
    eps: float = float_field(positive_number, 1e-8)
    weight_decay: float = float_field(non_negative_number, 0.0)
    momentum: float = float_field(unit_interval, 0.0)
    centered: bool = attrs.field(default=False, validator=boolean)

    def transformation(self) -> Chain:
        scale = (ScaleByStddev if self.centered else ScaleByRMS)(self.alpha, self.eps)
        return _chain(_decay(self.weight_decay), scale,
                      Trace(self.momentum) if self.momentum else None, ScaleByLearningRate(self.lr))


@attrs.frozen
class Adagrad(Optimizer):
    """Adagrad with PyTorch's ``Adagrad`` conventions and defaults (without ``lr_decay``: use a
    schedule for ``lr``)::

        g_t = grad + weight_decay * p_{t-1}
        s_t = s_{t-1} + g_t^2                             (s_0 = initial_accumulator_value)
        p_t = p_{t-1} - lr(t-1) * g_t / (sqrt(s_t) + eps)

    Fields: ``lr`` (0.01), ``eps`` (1e-10), ``weight_decay`` (0), ``initial_accumulator_value`` (0).
    """

    lr: float | Schedule = learning_rate_field(0.01)
    eps: float = float_field(positive_number, 1e-10)
    weight_decay: float = float_field(non_negative_number, 0.0)
    initial_accumulator_value: float = float_field(non_negative_number, 0.0)

    def transformation(self) -> Chain:
        return _chain(_decay(self.weight_decay),
                      ScaleByAdagrad(self.eps, self.initial_accumulator_value),
                      ScaleByLearningRate(self.lr))
