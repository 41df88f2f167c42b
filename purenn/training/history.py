"""What ``fit`` reports: a :class:`StepLog` after each step (to a callback that asks), an
:class:`EpochLog` after each epoch, the :class:`History` of a run."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen(slots=True)
class StepLog:
    """What ``fit`` hands a callback's ``on_step`` after each step: the epoch in progress (from 1)
    of ``epochs``, the steps done in it of ``steps``, and the step's loss (the batch's mean)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


@attrs.frozen
class EpochLog:
    """What ``fit`` reports after each epoch (``val_*`` are None without a validation set).

    ``loss``: the epoch's mean training loss (weighted by ``fit``'s ``sample_weight`` and
    ``class_weight`` when given); ``accuracy``: the fraction of the epoch's training rows whose
    output (in training mode, before the step's update, as Keras reports it) gave the right class,
    for class targets (None otherwise); ``metrics``: each of ``fit(metrics=...)``'s functions
    averaged over the epoch's training rows, and its ``val_`` value on the validation set (None
    without ``metrics``). ``lr_scale``: the plateau rule's multiplier of the learning rate during
    the epoch (None without one); ``digest``: ``fit(digest=...)``'s digest of the params (and
    layer state) at the epoch's end, ``average_digest`` the same of the averaged params (None
    without one)."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr_scale: float | None = None
    digest: str | None = None
    accuracy: float | None = None
    metrics: dict[str, float] | None = attrs.field(default=None, hash=False)
    average_digest: str | None = None


@attrs.frozen
class History:
    """Per-epoch records of one ``fit`` run; ``loss`` is each epoch's mean training loss.

    With early stopping, ``stopped_early`` says whether it stopped the run and ``best_epoch`` is
    the epoch whose params ``fit`` returned. ``averaged``: with ``fit(average=EMA(...))``, the
    averaged params (a tree shaped like the params, for ``predict``, ``evaluate`` and checkpoints
    as any params; the best epoch's under early stopping), else None."""

    epochs: tuple[EpochLog, ...] = ()
    stopped_early: bool = False
    best_epoch: int | None = None
    averaged: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def loss(self) -> list[float]:
        return [e.loss for e in self.epochs]

    @property
    def accuracy(self) -> list[float | None]:
        return [e.accuracy for e in self.epochs]

    @property
    def val_loss(self) -> list[float | None]:
        return [e.val_loss for e in self.epochs]

    @property
    def val_accuracy(self) -> list[float | None]:
        return [e.val_accuracy for e in self.epochs]

    def metric(self, name: str) -> list[float | None]:
        """Each epoch's value of ``fit(metrics=...)``'s ``name`` (or ``val_`` + name)."""
        return [None if e.metrics is None else e.metrics.get(name) for e in self.epochs]
