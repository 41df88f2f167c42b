"""What ``fit`` reports: an :class:`EpochLog` after each epoch, the :class:`History` of a run."""

from __future__ import annotations

import attrs


@attrs.frozen
class EpochLog:
    """What ``fit`` reports after each epoch (``val_*`` are None without a validation set).

    ``lr_scale``: the plateau rule's multiplier of the learning rate during the epoch (None
    without one); ``digest``: ``fit(digest=...)``'s digest of the params (and layer state) at the
    epoch's end (None without one)."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr_scale: float | None = None
    digest: str | None = None


@attrs.frozen
class History:
    """Per-epoch records of one ``fit`` run; ``loss`` is each epoch's mean training loss.

    With early stopping, ``stopped_early`` says whether it stopped the run and ``best_epoch`` is
    the epoch whose params ``fit`` returned."""

    epochs: tuple[EpochLog, ...] = ()
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def loss(self) -> list[float]:
        return [e.loss for e in self.epochs]

    @property
    def val_loss(self) -> list[float | None]:
        return [e.val_loss for e in self.epochs]

    @property
    def val_accuracy(self) -> list[float | None]:
        return [e.val_accuracy for e in self.epochs]
