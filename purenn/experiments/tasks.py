"""One seed's run, as a function a worker process (local or on a Dask cluster) can call:
``task(arg, report) -> result``, ``arg`` plain data, the result plain JSON data.

- :func:`mnist_run`: a preset run (:class:`~purenn.recipes.runs.RunConfig`) with its test
  evaluation; returns the run record, the same as ``purenn mnist --record`` writes.
- :func:`xor_run`: the tutorial's XOR network from one seed; returns whether it solved XOR.

The worker loads the data itself (from ``data_dir``, else ``$PURENN_DATA`` or the cache, as on
the command line), once per process.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import attrs
import numpy as np

from purenn.io.datasets import Dataset, load_mnist
from purenn.io.environment import blas_thread_limit
from purenn.io.records import params_digest
from purenn.losses import mse
from purenn.metrics import accuracy
from purenn.recipes.runs import RunConfig, run_record, train_preset
from purenn.recipes.xor import XOR_INPUTS, XOR_TARGETS, xor_network, xor_solved
from purenn.training import fit, predict
from purenn.validation import non_negative_int, optional, positive_int, positive_number, thread_count

__all__ = ["MnistTask", "XorTask", "mnist_run", "xor_run"]

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


def mnist_run(task: MnistTask, report: Report) -> dict[str, Any]:
    """Train ``task.config`` and evaluate it on the test set; the run record."""
    config = task.config
    data = _data(task.data_dir, config.dataset)
    assert data.train is not None and data.test is not None
    x, y, x_test, y_test = data.train.images, data.train.labels, data.test.images, data.test.labels
    n = len(x) if config.limit is None else min(len(x), config.limit)
    on_batch, on_epoch = _progress(report)
    start = time.perf_counter()
    trained = train_preset(config, x, y, validation=(x_test, y_test), callback=on_epoch, on_batch=on_batch)
    seconds = time.perf_counter() - start
    with blas_thread_limit(config.threads):
        test_accuracy = accuracy(predict(trained.model, trained.params, x_test, state=trained.state), y_test)
    return run_record(config, trained, n, {"test_accuracy": test_accuracy, "train_seconds": seconds})


@attrs.frozen
class XorTask:
    """The tutorial's XOR run from one seed (see ``purenn xor``)."""

    seed: int = attrs.field(validator=non_negative_int)
    epochs: int = attrs.field(default=1000, validator=positive_int)
    lr: float = attrs.field(default=0.1, validator=positive_number)
    hidden: int = attrs.field(default=3, validator=positive_int)
    batch_size: int = attrs.field(default=1, validator=positive_int)
    threads: int | None = attrs.field(default=None, validator=optional(thread_count))


def xor_run(task: XorTask, report: Report) -> dict[str, Any]:
    """Train the XOR network from ``task.seed``; its outputs, whether they solve XOR, the loss
    per epoch and the params digest."""
    model = xor_network(task.hidden)
    params = model.init(np.random.default_rng(task.seed))
    on_batch, on_epoch = _progress(report)
    start = time.perf_counter()
    with blas_thread_limit(task.threads):
        params, history = fit(model, params, XOR_INPUTS, XOR_TARGETS, loss=mse, epochs=task.epochs,
                              lr=task.lr, batch_size=task.batch_size, shuffle=False,
                              callback=_every(task.epochs, on_epoch))
        outputs = predict(model, params, XOR_INPUTS)
    return {
        "seed": task.seed, "solved": xor_solved(outputs), "outputs": outputs.ravel().tolist(),
        "loss": history.loss[-1], "train_seconds": time.perf_counter() - start,
        "history": [{"epoch": e.epoch, "loss": e.loss} for e in history.epochs],
        "digest": params_digest(params),
    }


def _every(epochs: int, report_epoch: Callable[[Any], None]) -> Callable[[Any], None]:
    """An epoch callback that reports about 20 of ``epochs`` epochs (XOR has a thousand)."""
    stride = max(1, epochs // 20)

    def callback(log: Any) -> None:
        if log.epoch % stride == 0 or log.epoch == epochs:
            report_epoch(log)

    return callback
