"""Rules that watch a metric epoch by epoch: early stopping and reducing the learning rate on a
plateau. Both are pure: a frozen record of settings with ``init() -> state`` and
``update(state, value, ...) -> state``, the state plain data that a training checkpoint saves.

What counts as better: for a metric that should fall (``mode="min"``: ``val_loss``, ``loss``)
a value below ``best - min_delta``; for one that should rise (``"max"``: ``val_accuracy``) a value
above ``best + min_delta``. The margin is absolute on purpose: a relative one (``best * (1 -
rtol)``) moves the wrong way for negative values, and a plateau rule built on it never fires for a
negative loss (optax's reduce_on_plateau, PR 1767). A NaN is never better. Patience follows Keras:
the rule acts once ``patience`` epochs in a row brought no improvement.
"""

from __future__ import annotations

import math

import attrs

from purenn.validation import (
    non_negative_int,
    non_negative_number,
    one_of,
    optional,
    positive_int,
    real,
    to_float,
    to_int,
)

__all__ = ["METRICS", "EarlyStopping", "EarlyStoppingState", "PlateauState", "ReduceLROnPlateau"]

#: the metrics ``fit`` reports after each epoch, and the direction in which each improves
METRICS = {"val_loss": "min", "val_accuracy": "max", "loss": "min", "accuracy": "max"}

_factor = attrs.evolve(real(0.0, 1.0, low_open=True), what="a real number in (0, 1): the rate is multiplied by it")
_mode = optional(one_of(("min", "max")))


def _better(mode: str, value: float, best: float | None, min_delta: float) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _direction(monitor: str, mode: str | None) -> str:
    return mode if mode is not None else METRICS[monitor]


@attrs.frozen
class EarlyStoppingState:
    """The best value so far, the epoch it came from, and the epochs since (``wait``)."""

    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    stopped: bool = False


@attrs.frozen
class EarlyStopping:
    """Stop training once ``monitor`` has not improved for ``patience`` epochs in a row. ``fit``
    returns the params (and layer state) of the best epoch, not the last, whether it stopped
    early or ran all its epochs (``History.best_epoch`` says which).

    ``monitor``: ``"val_loss"`` (default), ``"val_accuracy"`` (both need ``fit``'s validation
    set), ``"loss"`` or ``"accuracy"`` (the epoch's training loss and accuracy). ``min_delta``:
    the least change that counts as an improvement. ``mode``: ``"min"`` or ``"max"``; by default
    the metric's own direction.
    """

    patience: int = attrs.field(default=3, converter=to_int, validator=positive_int)
    monitor: str = attrs.field(default="val_loss", validator=one_of(tuple(METRICS)))
    min_delta: float = attrs.field(default=0.0, converter=to_float, validator=non_negative_number)
    mode: str | None = attrs.field(default=None, validator=_mode)

    def init(self) -> EarlyStoppingState:
        return EarlyStoppingState()

    def update(self, state: EarlyStoppingState, value: float, epoch: int) -> EarlyStoppingState:
        """The state after ``epoch`` gave ``value``; ``stopped`` once patience has run out."""
        if _better(_direction(self.monitor, self.mode), value, state.best, self.min_delta):
            return EarlyStoppingState(float(value), epoch, 0, False)
        wait = state.wait + 1
        return attrs.evolve(state, wait=wait, stopped=wait >= self.patience)


@attrs.frozen
class PlateauState:
    """The best value so far, epochs without improvement, cooldown epochs left, and the factor
    the learning rate is multiplied by now."""

    best: float | None = None
    wait: int = 0
    cooldown: int = 0
    scale: float = 1.0


@attrs.frozen
class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` once ``monitor`` has not improved for
    ``patience`` epochs in a row; then wait ``cooldown`` epochs before counting again. The
    multiplier never falls below ``min_scale``. ``fit(..., plateau=ReduceLROnPlateau())`` applies
    it to the optimizer's learning rate (``Optimizer.update(..., lr_scale=state.scale)``).
    ``monitor``, ``min_delta`` and ``mode`` as for :class:`EarlyStopping`.
    """

    factor: float = attrs.field(default=0.5, converter=to_float, validator=_factor)
    patience: int = attrs.field(default=2, converter=to_int, validator=positive_int)
    monitor: str = attrs.field(default="val_loss", validator=one_of(tuple(METRICS)))
    min_delta: float = attrs.field(default=0.0, converter=to_float, validator=non_negative_number)
    mode: str | None = attrs.field(default=None, validator=_mode)
    cooldown: int = attrs.field(default=0, converter=to_int, validator=non_negative_int)
    min_scale: float = attrs.field(default=0.0, converter=to_float, validator=non_negative_number)

    def init(self) -> PlateauState:
        return PlateauState()

    def update(self, state: PlateauState, value: float) -> PlateauState:
        """The state after an epoch that gave ``value``."""
        cooldown = max(state.cooldown - 1, 0)
        in_cooldown = state.cooldown > 0
        if _better(_direction(self.monitor, self.mode), value, state.best, self.min_delta):
            return PlateauState(float(value), 0, cooldown, state.scale)
        if in_cooldown:
            return attrs.evolve(state, wait=0, cooldown=cooldown)
        wait = state.wait + 1
        if wait < self.patience:
            return attrs.evolve(state, wait=wait)
        return PlateauState(state.best, 0, self.cooldown, max(state.scale * self.factor, self.min_scale))

