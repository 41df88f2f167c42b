"""A learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3; fastai's
``lr_find``): train with a learning rate growing exponentially from ``start`` to ``end``, one step
each, and watch the loss.

    lr_t = start * (end / start) ** (t / (U - 1))    t = 0 .. U - 1 (U updates: ceil(steps / k)
                                                     with k steps per update, MultiSteps)
    s_i  = beta s_{i-1} + (1 - beta) loss_i,  smoothed_i = s_i / (1 - beta ** (i + 1))

The run stops at ``end``, at a non-finite loss, or when the smoothed loss climbs above
``diverge`` times its lowest value so far ("diverged"). **The suggestion** is the learning rate
where the smoothed loss falls fastest against log(lr) (the most negative slope, by central
differences, over the points before the lowest smoothed loss, the first tenth of the run left
out: :data:`SKIP`): a rate that still learns quickly
and is well below the blow-up. The rate at the lowest smoothed loss is given too
(``min_loss_lr``); a tenth of it is the other common rule of thumb. Nothing is trained for real:
the params given are left as they were, as every ``fit`` leaves them.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, TrainingInterrupted
from purenn.losses import Loss, mse
from purenn.optim.base import Optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import Schedule
from purenn.training.history import EpochLog, StepLog
from purenn.training.loop import fit
from purenn.training.updates import accumulation, update_count
from purenn.validation import as_samples, check, positive_int, positive_number, real, to_float, to_int

__all__ = ["MIN_POINTS", "SKIP", "ExponentialRange", "LRRangeResult", "lr_range_test", "suggest"]

#: the fewest points (steps before the lowest smoothed loss) from which a rate is suggested
MIN_POINTS = 3
#: the first 1 / SKIP of the steps are not looked at for the steepest descent: there the moving
#: average is made of few losses and minibatch noise looks like progress (fastai skips 10 of 100)
SKIP = 10

_BETA = attrs.evolve(real(0.0, 1.0, high_open=True), what="a real number in [0, 1)")
_DIVERGE = attrs.evolve(real(1.0, low_open=True), what="a real number > 1")


@attrs.frozen
class ExponentialRange(Schedule):
    """lr(t) = start * (end / start) ** (t / (steps - 1)) for t < steps, then ``end``: from
    ``start`` at the first update to ``end`` at update ``steps - 1``."""

    start: float = attrs.field(converter=to_float, validator=positive_number)
    end: float = attrs.field(converter=to_float, validator=positive_number)
    steps: int = attrs.field(converter=to_int, validator=positive_int)

    def __call__(self, step: int) -> float:
        if self.steps == 1:
            return self.start
        return float(self.start * (self.end / self.start) ** (min(step, self.steps - 1) / (self.steps - 1)))


@attrs.frozen(eq=False)
class LRRangeResult:
    """What :func:`lr_range_test` found: per step taken, its learning rate (``lrs``), its
    batch's loss (``losses``) and the smoothed loss (``smoothed``, NaN once a loss was not
    finite); ``stopped``: ``"end"``, ``"diverged"`` or ``"non-finite loss"``; the suggested rate
    and the rate at the lowest smoothed loss (None when the loss never fell over
    :data:`MIN_POINTS` steps)."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stopped: str
    suggested_lr: float | None
    min_loss_lr: float | None

    @property
    def steps(self) -> int:
        return len(self.lrs)


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float | None, float | None]:
    """``(suggested, min_loss_lr)`` from a range test's rates and smoothed losses (the module's
    docstring has the rule); ``(None, None)`` with fewer than :data:`MIN_POINTS` finite points up
    to the lowest loss."""
    finite = np.isfinite(smoothed)
    if not finite.any():
        return None, None
    lowest = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    first = len(smoothed) // SKIP
    if lowest + 1 - first < MIN_POINTS:
        return None, None
    x, y = np.log(lrs[first : lowest + 1]), smoothed[first : lowest + 1]
    slope = np.gradient(y, x) if np.all(np.diff(x) > 0) else np.gradient(y)
    return float(lrs[first + int(np.argmin(slope))]), float(lrs[lowest])


class _Watch:
    """fit's callback and stop rule: records each step's loss, asks to stop at the end, at a
    non-finite loss or on divergence."""

    def __init__(self, steps: int, schedule: ExponentialRange, every: int, beta: float, diverge: float):
        self.steps, self.schedule, self.every, self.beta, self.diverge = steps, schedule, every, beta, diverge
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.average, self.best, self.stopped = 0.0, math.inf, "end"

    def on_step(self, log: StepLog) -> None:
        i = len(self.losses)
        self.lrs.append(self.schedule(i // self.every))
        self.losses.append(log.loss)
        if not math.isfinite(log.loss):
            self.smoothed.append(math.nan)
            self.stopped = "non-finite loss"
            return
        self.average = self.beta * self.average + (1 - self.beta) * log.loss
        value = self.average / (1 - self.beta ** (i + 1))
        self.smoothed.append(value)
        if value > self.diverge * self.best:
            self.stopped = "diverged"
        self.best = min(self.best, value)

    def __call__(self, log: EpochLog) -> None:
        pass

    def stop(self) -> bool:
        return self.stopped != "end" or len(self.losses) >= self.steps


def lr_range_test(
    model: Any, params: Any, x: Any, y: Any, *, loss: Loss | str = mse, optimizer: Any = None,
    start: float = 1e-7, end: float = 10.0, steps: int = 100, batch_size: int = 32,
    shuffle: bool = True, seed: int | np.random.Generator | None = 0, state: Any = None,
    smoothing: float = 0.9, diverge: float = 4.0,
) -> LRRangeResult:
    """Train ``model`` from ``params`` for at most ``steps`` steps of ``batch_size`` rows (as
    many epochs over ``(x, y)`` as that takes) with a learning rate growing exponentially from
    ``start`` to ``end``; return the :class:`LRRangeResult` (the module's docstring has the
    formulas and the rule of the suggestion).

    ``optimizer``: None (``SGD``); an optimizer record with an ``lr`` field (``Adam(1e-3)``: its
    ``lr`` is replaced); or a function of the learning rate (a schedule) returning an optimizer,
    e.g. ``lambda lr: pn.chain(pn.ClipByGlobalNorm(1.0), pn.Adam(lr))``. With gradient
    accumulation (``MultiSteps``) the rate grows per update. ``smoothing``: the beta of the
    loss's moving average, in [0, 1) (fastai's 0.98 lags about 50 steps behind the loss, half of
    a 100-step test, which moves the curve and the suggestion to higher rates; 0.9 lags about
    10); ``diverge``: stop once the smoothed loss exceeds this
    multiple (> 1) of its lowest. ``loss``, ``shuffle``, ``seed`` and ``state``: as for
    :func:`purenn.fit`."""
    start = check("start", start, positive_number, to_float)
    end = check("end", end, positive_number, to_float)
    if not end > start:
        raise ArgumentError(f"lr_range_test: `end` ({end:g}) must be above `start` ({start:g})")
    steps = check("steps", steps, positive_int, to_int)
    batch_size = check("batch_size", batch_size, positive_int, to_int)
    x, y = as_samples(x, y, "lr_range_test")
    smoothing = check("smoothing", smoothing, _BETA, to_float)
    diverge = check("diverge", diverge, _DIVERGE, to_float)
    make = _factory(optimizer)
    every = accumulation(make(start))
    schedule = ExponentialRange(start, end, max(update_count(make(start), steps), 1))
    watch = _Watch(steps, schedule, every, smoothing, diverge)
    epochs = math.ceil(steps / max(math.ceil(len(x) / batch_size), 1))
    try:
        fit(model, params, x, y, loss=loss, optimizer=make(schedule), epochs=epochs, batch_size=batch_size,
            shuffle=shuffle, seed=seed, state=state, callback=watch, stop=watch.stop,
            stop_on_divergence=False)
    except TrainingInterrupted:
        pass  # stopped by watch.stop: the losses are in watch
    lrs, smoothed = np.array(watch.lrs), np.array(watch.smoothed)
    suggested, lowest = suggest(lrs, smoothed)
    return LRRangeResult(lrs, np.array(watch.losses), smoothed, watch.stopped, suggested, lowest)


def _factory(optimizer: Any) -> Any:
    """A function of the learning rate returning the optimizer to test."""
    if optimizer is None:
        return SGD
    if isinstance(optimizer, Optimizer) and attrs.has(type(optimizer)) and \
            "lr" in attrs.fields_dict(type(optimizer)):
        return lambda lr: attrs.evolve(optimizer, lr=lr)  # type: ignore[call-arg]
    if callable(optimizer) and not isinstance(optimizer, Optimizer):
        return optimizer
    raise ArgumentTypeError(f"lr_range_test: `optimizer` must be None (SGD), an optimizer with an `lr` "
                            f"field such as Adam(1e-3), or a function of the learning rate returning "
                            f"an optimizer; got {optimizer!r:.80}")
