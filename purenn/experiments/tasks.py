"""One seed's run, as a function a worker process (local or on a Dask cluster) can call:
``task(arg, report) -> result``, ``arg`` plain data, the result plain JSON data.

- :func:`mnist_run`: a preset run (:class:`~purenn.recipes.runs.RunConfig`) with its test
  evaluation (:func:`~purenn.recipes.runs.run_preset`); returns the run record, the same as
  ``purenn mnist --record`` writes.
- :func:`xor_run`: the tutorial's XOR network from one seed (:func:`train_xor`, as ``purenn xor``
  trains it); returns whether it solved XOR.

The worker loads the data itself (from ``data_dir``, else ``$PURENN_DATA`` or the cache, as on
the command line), once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.experiments.runner import default_jobs
from purenn.io.datasets import Dataset, load_mnist
from purenn.io.environment import blas_thread_limit
from purenn.io.records import params_digest
from purenn.losses import mse
from purenn.recipes.runs import RunConfig, run_preset
from purenn.recipes.xor import XOR_INPUTS, XOR_TARGETS, xor_network, xor_solved
from purenn.training import EpochLog, History, fit, predict
from purenn.validation import non_negative_int, optional, positive_int, positive_number, thread_count

__all__ = ["MnistTask", "XorResult", "XorTask", "mnist_run", "threads_per_run", "train_xor", "xor_run"]

Report = Callable[..., None]
_DATA: dict[tuple[str | None, str], Dataset] = {}  # per worker process: loaded once


@attrs.frozen
class MnistTask:
    """One preset run of an experiment, and where its worker finds the data."""

    config: RunConfig
    data_dir: str | None = None


def _data(data_dir: str | None, dataset: str) -> Dataset:
    key = (data_dir, dataset)
    if key not in _DATA:
        _DATA[key] = load_mnist(data_dir, dataset=dataset)
    return _DATA[key]


def _progress(report: Report) -> tuple[Callable[[int, int], None], Callable[[Any], None]]:
    """``on_batch`` and ``callback`` for fit that report steps (about 50 an epoch) and epochs."""

    def on_batch(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            report("step", done=done, total=total)

    def on_epoch(log: Any) -> None:
        report("epoch", epoch=log.epoch, epochs=log.epochs, loss=log.loss, accuracy=log.val_accuracy)

    return on_batch, on_epoch


def threads_per_run(threads: int | None, jobs: int, scheduler: str | None) -> int:
    """BLAS threads for each run of an experiment (each record keeps the count): ``threads`` when
    given, else this machine's cores shared out between the ``jobs`` runs at a time; 1 on a Dask
    cluster (``scheduler``), whose workers' cores purenn does not know."""
    if threads is not None:
        return threads
    if scheduler is not None:
        return 1
    return max(1, default_jobs(1 << 30) // jobs)


def mnist_run(task: MnistTask, report: Report) -> dict[str, Any]:
    """Train ``task.config`` and test it (:func:`~purenn.recipes.runs.run_preset`, as
    ``purenn mnist`` does); the run record."""
    on_batch, on_epoch = _progress(report)
    data = _data(task.data_dir, task.config.dataset)
    return run_preset(task.config, data, callback=on_epoch, on_batch=on_batch).record()


@attrs.frozen
class XorTask:
    """The tutorial's XOR run from one seed (see ``purenn xor``)."""

    seed: int = attrs.field(validator=non_negative_int)
    epochs: int = attrs.field(default=1000, validator=positive_int)
    lr: float = attrs.field(default=0.1, validator=positive_number)
    hidden: int = attrs.field(default=3, validator=positive_int)
    batch_size: int = attrs.field(default=1, validator=positive_int)
    threads: int | None = attrs.field(default=None, validator=optional(thread_count))


@attrs.frozen(eq=False)
class XorResult:
    """The XOR network trained: its params, its outputs on the four inputs (``(4, 1)``), the
    history, and the seconds the training and the outputs took."""

    params: Any
    outputs: np.ndarray
    history: History
    train_seconds: float

    @property
    def solved(self) -> bool:
        return xor_solved(self.outputs)


def train_xor(task: XorTask, *, callback: Callable[[EpochLog], None] | None = None) -> XorResult:
    """The tutorial's XOR run: the network of ``task.hidden`` units from ``task.seed``, plain
    SGD on the four samples in order, under ``task.threads``; ``callback`` as for
    :func:`purenn.fit` (``purenn xor`` and :func:`xor_run` both train through here)."""
    model = xor_network(task.hidden)
    params = model.init(np.random.default_rng(task.seed))
    start = time.perf_counter()
    with blas_thread_limit(task.threads):
        params, history = fit(model, params, XOR_INPUTS, XOR_TARGETS, loss=mse, epochs=task.epochs,
                              lr=task.lr, batch_size=task.batch_size, shuffle=False, callback=callback)
        outputs = predict(model, params, XOR_INPUTS)
    return XorResult(params, outputs, history, time.perf_counter() - start)


def xor_run(task: XorTask, report: Report) -> dict[str, Any]:
    """Train the XOR network from ``task.seed``; its outputs, whether they solve XOR, the loss
    per epoch and the params digest."""
    _, on_epoch = _progress(report)
    result = train_xor(task, callback=_every(task.epochs, on_epoch))
    history = result.history
    return {
        "seed": task.seed, "solved": result.solved, "outputs": result.outputs.ravel().tolist(),
        "loss": history.loss[-1], "train_seconds": result.train_seconds,
        "history": [{"epoch": e.epoch, "loss": e.loss} for e in history.epochs],
        "digest": params_digest(result.params),
    }


def _every(epochs: int, report_epoch: Callable[[Any], None]) -> Callable[[Any], None]:
    """An epoch callback that reports about 20 of ``epochs`` epochs (XOR has a thousand)."""
    stride = max(1, epochs // 20)

    def callback(log: Any) -> None:
        if log.epoch % stride == 0 or log.epoch == epochs:
            report_epoch(log)

    return callback
