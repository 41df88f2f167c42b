"""purenn's own run functions for experiments, called as any run function is:
``fn(seed, **settings)`` returning the run's metrics (see :func:`purenn.experiments.run`).

- :func:`mnist_trial`: a preset run (the settings are :class:`~purenn.recipes.runs.RunConfig`'s
  fields but the seed) with its test evaluation (:func:`~purenn.recipes.runs.run_preset`, as
  ``purenn mnist`` runs it); besides its metrics it returns its run record (``run_record``), which
  the experiment writes beside its own. With a checkpoint folder (``run(checkpoint_dir=...)``)
  it keeps its training state there after every epoch and continues from it when run again.
- :func:`xor_trial`: the tutorial's XOR network from one seed (:func:`train_xor`, as ``purenn xor``
  trains it); whether it solved XOR.

The worker loads the data itself (from the experiment's ``options["data_dir"]``, else
``$PURENN_DATA`` or the cache, as on the command line), once per process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.experiments.context import RunContext, current_run, report
from purenn.experiments.runner import default_jobs
from purenn.io.datasets import Dataset, load_mnist
from purenn.io.environment import blas_thread_limit
from purenn.io.records import params_digest
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.losses import mse
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import RunConfig, run_preset
from purenn.recipes.xor import XOR_INPUTS, XOR_TARGETS, xor_network, xor_solved
from purenn.training import EpochLog, History, fit, predict
from purenn.training_state import TrainingState
from purenn.validation import non_negative_int, optional, positive_int, positive_number, thread_count

__all__ = [
    "MNIST_FUNCTION",
    "STATE_FILE",
    "XOR_FUNCTION",
    "XorResult",
    "XorTask",
    "mnist_trial",
    "threads_per_run",
    "train_xor",
    "xor_trial",
]

#: The run functions of purenn's own experiment kinds, as experiment records name them.
MNIST_FUNCTION = "purenn.experiments.tasks:mnist_trial"
XOR_FUNCTION = "purenn.experiments.tasks:xor_trial"
#: The training state's file in a run's checkpoint folder.
STATE_FILE = "training.npz"
_DATA: dict[tuple[str | None, str], Dataset] = {}  # per worker process: loaded once


def _data(data_dir: str | None, dataset: str) -> Dataset:
    key = (data_dir, dataset)
    if key not in _DATA:
        _DATA[key] = load_mnist(data_dir, dataset=dataset)
    return _DATA[key]


def _progress() -> tuple[Callable[[int, int], None], Callable[[Any], None]]:
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


def mnist_trial(seed: int, **settings: Any) -> dict[str, Any]:
    """Train the preset run ``RunConfig(seed=seed, **settings)`` and test it
    (:func:`~purenn.recipes.runs.run_preset`, as ``purenn mnist`` does): its test accuracy, last
    epoch's training loss and training time, its history (loss, test accuracy and params digest
    per epoch), its params digest and its run record (``run_record``)."""
    config = RunConfig(seed=seed, **settings)
    run = current_run()
    data = _data(run.options.get("data_dir") if run else None, config.dataset)
    on_batch, on_epoch = _progress()
    checkpoint, resume = _kept_state(run, config)
    result = run_preset(config, data, callback=on_epoch, on_batch=on_batch, checkpoint=checkpoint,
                        resume=resume)
    record = result.record()
    history = [{"epoch": h["epoch"], "loss": h["loss"], "val_accuracy": h.get("val_accuracy"),
                "digest": h.get("digest")} for h in record["history"]]
    return {"test_accuracy": result.test_accuracy, "loss": history[-1]["loss"],
            "train_seconds": result.train_seconds, "history": history, "digest": record["digest"],
            "run_record": record}


def _kept_state(run: RunContext | None, config: RunConfig) -> tuple[Any, TrainingState | None]:
    """With a checkpoint folder: the callback saving the training state there (with the run's
    settings) and the state it holds from an earlier try of this run (None: none). A state of
    another run is refused."""
    if run is None or run.checkpoint_dir is None:
        return None, None
    path = os.path.join(run.checkpoint_dir, STATE_FILE)
    settings = attrs.asdict(config)
    model = PRESETS[config.preset].model

    def save(state: TrainingState) -> None:
        save_training_state(path, model, state, metadata={"run": settings})

    if not os.path.exists(path):
        return save, None
    saved = load_training_state(path)
    if saved.metadata.get("run") != settings:
        raise ArgumentError(f"{path} holds the training state of another run ({saved.metadata.get('run')!r:.200}), "
                            f"not of {settings!r:.200}; give the experiment another checkpoint folder")
    return save, saved.state


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


def xor_trial(seed: int, **settings: Any) -> dict[str, Any]:
    """Train the XOR network of ``XorTask(seed, **settings)``: whether it solves XOR, its last
    loss, its training time, the loss per epoch and the params digest."""
    _, on_epoch = _progress()
    task = XorTask(seed, **settings)
    result = train_xor(task, callback=_every(task.epochs, on_epoch))
    history = result.history
    return {
        "solved": result.solved, "loss": history.loss[-1], "train_seconds": result.train_seconds,
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
