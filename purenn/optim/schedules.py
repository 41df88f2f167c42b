"""Learning-rate schedules: pure functions of the step, as frozen records.

A schedule is an ``@attrs.frozen`` record with ``__call__(step) -> float``; ``step`` is the
number of optimizer updates already applied (0 for the first update). Being plain records of
numbers, schedules serialise to JSON (``attrs.asdict``) and compare by value. Every optimizer's
``lr`` accepts a float or a schedule; the step counter lives in the optimizer's state.

    Constant(lr)                          lr
    StepDecay(lr, step_size, gamma)       lr * gamma ** (step // step_size)
    ExponentialDecay(lr, gamma, k=1)      lr * gamma ** (step / decay_steps)
    CosineDecay(lr, total, final_lr)      final_lr + (lr - final_lr) * (1 + cos(pi * min(step, total) / total)) / 2
    WarmUp(inner, warmup_steps)           inner(0) * step / warmup_steps  for step < warmup_steps,
                                          inner(step - warmup_steps)      afterwards

To write your own, subclass :class:`Schedule` under ``@attrs.frozen`` and define ``__call__``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from purenn.errors import ArgumentError
from purenn.validation import Rule, non_negative_int, positive_int, positive_number, real, to_float, to_int

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "WarmUp"]


def _step(schedule: object, step: Any) -> int:
    step = to_int(step)
    if not isinstance(step, int) or step < 0:
        raise ArgumentError(f"{schedule!r}: the step must be an integer >= 0, got {step!r}")
    return step


# --- schedules -------------------------------------------------------------------------------


@attrs.frozen
class Schedule:
    """Base class: a learning rate as a pure function of the step (updates already applied)."""

    def __call__(self, step: int) -> float:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__} must define __call__(step) -> float")




@attrs.frozen
class Constant(Schedule):
    """lr(step) = lr."""

    lr: float = attrs.field(converter=to_float, validator=positive_number)

    def __call__(self, step: int) -> float:
        _step(self, step)
        return self.lr


@attrs.frozen
class StepDecay(Schedule):
    """lr(step) = lr * gamma ** (step // step_size): multiplied by ``gamma`` every ``step_size``
    steps (PyTorch's ``StepLR``, counted in updates)."""

    lr: float = attrs.field(converter=to_float, validator=positive_number)
    step_size: int = attrs.field(converter=to_int, validator=positive_int)
    gamma: float = attrs.field(default=0.1, converter=to_float, validator=positive_number)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (_step(self, step) // self.step_size)


@attrs.frozen
class ExponentialDecay(Schedule):
    """lr(step) = lr * gamma ** (step / decay_steps), smooth (``decay_steps=1``: PyTorch's
    ``ExponentialLR`` applied every update)."""

    lr: float = attrs.field(converter=to_float, validator=positive_number)
    gamma: float = attrs.field(converter=to_float, validator=real(0.0, 1.0, low_open=True, high_open=False))
    decay_steps: int = attrs.field(default=1, converter=to_int, validator=positive_int)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (_step(self, step) / self.decay_steps)


@attrs.frozen
class CosineDecay(Schedule):
    """Half a cosine from ``lr`` at step 0 to ``final_lr`` at ``total_steps``, then constant::

        lr(step) = final_lr + (lr - final_lr) * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2
    """

    lr: float = attrs.field(converter=to_float, validator=positive_number)
    total_steps: int = attrs.field(converter=to_int, validator=positive_int)
    final_lr: float = attrs.field(default=0.0, converter=to_float, validator=real(0.0))

    @final_lr.validator
    def _not_above_lr(self, attribute: attrs.Attribute, value: float) -> None:
        if value > self.lr:
            raise ArgumentError(f"`final_lr` ({value}) must not exceed `lr` ({self.lr}) in a decay")

    def __call__(self, step: int) -> float:
        progress = min(_step(self, step), self.total_steps) / self.total_steps
        return self.final_lr + (self.lr - self.final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _as_schedule(value: Any) -> Any:
    value = to_float(value)
    return Constant(value) if isinstance(value, float) else value


_is_schedule = Rule(
    "a positive number or a purenn.optim.schedules.Schedule (e.g. CosineDecay(0.1, 1000))",
    lambda v: isinstance(v, Schedule),
)


@attrs.frozen
class WarmUp(Schedule):
    """Linear warm-up from 0, then hand over to ``schedule`` (a float means :class:`Constant`)::

        lr(step) = schedule(0) * step / warmup_steps     for step < warmup_steps
        lr(step) = schedule(step - warmup_steps)         otherwise

    The inner schedule starts its own clock when warm-up ends (as optax's ``join_schedules``), so
    ``WarmUp(CosineDecay(0.1, 900), 100)`` warms up for 100 steps and then decays over 900. The
    first update (step 0) has lr 0: it only primes the optimizer's state (e.g. Adam's moments).
    """

    schedule: Schedule = attrs.field(converter=_as_schedule, validator=_is_schedule)
    warmup_steps: int = attrs.field(converter=to_int, validator=non_negative_int)

    def __call__(self, step: int) -> float:
        step = _step(self, step)
        if step < self.warmup_steps:
            return self.schedule(0) * step / self.warmup_steps
        return self.schedule(step - self.warmup_steps)


# --- learning rates: a positive number or a schedule ------------------------------------------


def _is_lr(v: Any) -> bool:
    return isinstance(v, Schedule) or (isinstance(v, float) and math.isfinite(v) and v > 0)


LEARNING_RATE = Rule(
    "a positive number or a purenn.optim.schedules.Schedule (e.g. CosineDecay(0.1, 1000))",
    lambda v: isinstance(v, (float, Schedule)), _is_lr,
)


def learning_rate_field(default: Any = attrs.NOTHING) -> Any:
    """An ``lr`` field of a record: a positive number or a schedule of the step."""
    return attrs.field(default=default, converter=to_float, validator=LEARNING_RATE)


def learning_rate_at(lr: float | Schedule, step: int) -> float:
    """``lr`` at ``step`` (the number of updates already applied)."""
    return float(lr(step)) if isinstance(lr, Schedule) else lr
