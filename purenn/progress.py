"""Seeing training from Python: ``fit(..., callback=ProgressBar())`` shows what ``purenn mnist``
shows, a rich progress bar per epoch with its steps, elapsed time and loss, and at each epoch's end
its metrics (training loss and accuracy, validation loss and accuracy, ``fit(metrics=...)``'s).

The library prints nothing unless asked: a :class:`ProgressBar` is that asking. It is a ``fit``
callback object (see :func:`purenn.fit`): ``on_step(StepLog)`` after each step, ``__call__(EpochLog)``
after each epoch, ``close()`` when ``fit`` ends (normally or not), which stops the display. The
bars' layout (:func:`bar_display`) is the command line's too.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from purenn.training.history import EpochLog, StepLog

__all__ = ["ProgressBar", "bar_display", "epoch_status", "format_loss"]

#: how many times a bar is moved in an epoch at most (a step's update costs a few microseconds;
#: the terminal is redrawn 10 times a second whatever the count)
UPDATES_PER_EPOCH = 100


def bar_display(console: Console | None = None, *, transient: bool = False) -> Progress:
    """A rich ``Progress`` with, per task, its description, a bar, ``done/total``, the elapsed
    time and a free ``status`` field: the bars of ``fit``'s :class:`ProgressBar` and of
    ``purenn mnist``."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
    )


def format_loss(value: float, digits: int = 4) -> str:
    """A loss with ``digits`` decimals, in scientific notation from 10000 on, so that a diverging
    run does not stretch the progress bar's line."""
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3e}"


def epoch_status(log: EpochLog) -> str:
    """An epoch's results in one line: ``loss 0.1234  accuracy 96.50%  val_loss ...``."""
    parts = [f"loss {format_loss(log.loss)}"]
    if log.accuracy is not None:
        parts.append(f"accuracy {log.accuracy:.2%}")
    if log.val_loss is not None:
        parts.append(f"val_loss {format_loss(log.val_loss)}")
    if log.val_accuracy is not None:
        parts.append(f"val_accuracy {log.val_accuracy:.2%}")
    parts += [f"{name} {value:.4g}" for name, value in (log.metrics or {}).items()]
    if log.lr_scale is not None and log.lr_scale != 1.0:
        parts.append(f"lr x{log.lr_scale:g}")
    return "  ".join(parts)


class ProgressBar:
    """A ``fit`` callback showing a bar per epoch (``epoch 3/10``) with the steps done, the elapsed
    time and the mean of the epoch's step losses so far, then the epoch's results
    (:func:`epoch_status`). ``console``: where to draw (a ``rich.console.Console``; by default one
    on standard output); ``transient``: remove the bars when training ends. One object serves one
    ``fit`` call at a time; it may be given to the next once that has ended."""

    def __init__(self, console: Console | None = None, *, transient: bool = False) -> None:
        self.console = console if console is not None else Console()
        self.transient = transient
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._epoch, self._first = 0, 1
        self._losses = 0.0

    def on_step(self, log: StepLog) -> None:
        """After a step: start the epoch's bar at its first step seen, move it now and then."""
        if self._progress is None:
            self._progress = bar_display(self.console, transient=self.transient)
            self._progress.start()
        if self._task is None or log.epoch != self._epoch:
            self._epoch, self._losses = log.epoch, 0.0
            self._first = log.step  # a resumed epoch starts past its first step
            self._task = self._progress.add_task(f"epoch {log.epoch}/{log.epochs}", total=log.steps,
                                                 completed=log.step - 1, status="")
        self._losses += log.loss
        every = max(1, log.steps // UPDATES_PER_EPOCH)
        if log.step == log.steps or log.step % every == 0:
            mean = self._losses / (log.step - self._first + 1)
            self._progress.update(self._task, completed=log.step, status=f"loss {format_loss(mean)}")

    def __call__(self, log: EpochLog) -> None:
        """After an epoch: its bar full, its results as its status."""
        if self._progress is None:  # an epoch of no steps of this call (a finished resumed run)
            return
        if self._task is not None:
            self._progress.update(self._task, status=epoch_status(log))
        self._task = None

    def close(self) -> None:
        """When ``fit`` ends: stop drawing (the bars stay on the terminal unless transient)."""
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task = None, None

    def __repr__(self) -> str:
        return f"ProgressBar(transient={self.transient})"
