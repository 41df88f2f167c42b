"""One run of a preset: its configuration, the training itself, and the record that describes it.

:class:`RunConfig` is what a run record stores (the preset, its overrides, the seed, the sample
limit, the validation split, the checkpoint it starts from), so the run can be repeated exactly;
:func:`run_preset` trains it and tests it (the one path from a preset to a result: ``purenn
mnist`` and an experiment's runs both take it), on :func:`train_preset`; :func:`describe` and
:func:`run_record` say what it was and what it gave, as plain data for
:func:`purenn.recipes.records.write_run_record`.

Which set a run watches: with ``validation`` (a fraction of the training set, held out by
:func:`purenn.splits.split_indices`), each epoch's ``val_loss``/``val_accuracy`` and early
stopping are the validation set's, and the test set is read once, after training; without it,
as before validation sets existed, they are the test set's (``evaluated_on`` says which). A new
run that would choose its epoch by the test set (``patience`` without ``validation``) is refused
by :func:`check_new_run`; records of such runs made before still repeat.

This module holds :func:`run_preset` and its :class:`RunResult`, and every name of the modules
it is made of: :mod:`.config` (:class:`RunConfig`, the validation split), :mod:`.train`
(:func:`train_preset`, starting from a checkpoint) and :mod:`.repeat` (the run record's data,
and whether this purenn repeats a record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.io.checkpoints import Checkpoint
from purenn.io.datasets import Dataset
from purenn.io.environment import blas_thread_limit
from purenn.io.provenance import dataset_files, file_digests, provenance, samples
from purenn.metrics import accuracy
from purenn.recipes.config import (
    DATA_SEED,
    MAX_INIT_NAME,
    RunConfig,
    check_new_run,
    split_of,
    split_training_set,
)
from purenn.recipes.repeat import (
    arithmetic_change,
    config_from_record,
    describe,
    record_differences,
    repeatable_config,
    run_record,
    same_update,
)
from purenn.recipes.train import (
    TrainedRun,
    check_start,  # noqa: F401 - importable from here, as before the split
    model_difference,
    start_from,
    train_preset,
)
from purenn.training import predict
from purenn.training_state import TrainingState

__all__ = [
    "DATA_SEED",
    "MAX_INIT_NAME",
    "RunConfig",
    "RunResult",
    "TrainedRun",
    "arithmetic_change",
    "check_new_run",
    "config_from_record",
    "data_provenance",
    "describe",
    "model_difference",
    "record_differences",
    "repeatable_config",
    "run_preset",
    "run_record",
    "same_update",
    "split_of",
    "split_training_set",
    "start_from",
    "train_preset",
]


@attrs.frozen(eq=False)
class RunResult:
    """What :func:`run_preset` gives: the run's ``config``, the :class:`TrainedRun`, the number
    of training samples it used (and of validation samples held out, None without), its outputs
    on the test set (one row of class scores per test sample) and its metrics:
    ``test_accuracy``, and ``train_seconds``, the wall-clock time of the training alone (for a
    resumed run, of this session's part); ``provenance``: the data files it read and the samples
    it trained, validated and tested on (:mod:`purenn.io.provenance`)."""

    config: RunConfig
    trained: TrainedRun
    train_samples: int
    test_outputs: np.ndarray
    test_accuracy: float
    train_seconds: float
    validation_samples: int | None = None
    provenance: dict[str, Any] = attrs.field(factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """The run record's metrics: ``{"test_accuracy": ..., "train_seconds": ...}``."""
        return {"test_accuracy": self.test_accuracy, "train_seconds": self.train_seconds}

    def record(self) -> dict[str, Any]:
        """The run record (:func:`run_record`): what ``purenn mnist --record`` writes and an
        experiment keeps for each seed."""
        return run_record(self.config, self.trained, self.train_samples, self.metrics,
                          validation_samples=self.validation_samples, provenance=self.provenance)

    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a checkpoint of the trained model carries: the run's settings (``purenn
        evaluate`` reads its dataset there) and metrics."""
        return {"run": attrs.asdict(self.config), "metrics": self.metrics}


def run_preset(
    config: RunConfig,
    data: Dataset,
    *,
    init: Checkpoint | None = None,
    callback: Callable[..., None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: TrainingState | None = None,
) -> RunResult:
    """Train ``config``'s preset on ``data``'s training split (``config.dataset`` as
    :func:`purenn.load_mnist` loads it) and test it on its test split; the :class:`RunResult`,
    whose :meth:`~RunResult.record` is the run record.

    The one path from a preset to a result: ``purenn mnist`` and an experiment's runs
    (:func:`purenn.experiments.tasks.mnist_run`) both call it, so a run alone and the same run
    inside an experiment give the same record. Everything runs under the config's BLAS thread
    limit (results differ between thread counts); ``train_seconds`` times the training alone.

    With ``config.validation``, the validation set held out of the training split
    (:func:`split_training_set`) gives each epoch's loss and accuracy and is what early stopping
    watches; the test set is read once, after training. Without it (as before validation sets
    existed), the test set plays that part, then is read again for the outputs. ``init``: the
    checkpoint a config of :func:`start_from` starts from. ``callback``, ``on_batch`` report
    progress (as for :func:`purenn.fit`; this function prints nothing); ``checkpoint``,
    ``stop`` and ``resume``: as for :func:`train_preset`."""
    if data.train is None or data.test is None:
        raise ArgumentError("run_preset needs the dataset's train and test splits: load it with "
                            "splits=('train', 'test')")
    (x, y), held_out = split_training_set(config, data.train.images, data.train.labels)
    x_test, y_test = data.test.images, data.test.labels
    watched = (x_test, y_test) if held_out is None else held_out
    split = split_of(config, data.train.labels)
    origin = data_provenance(data, train=np.arange(len(x)) if split is None else split[0],
                             validation=None if split is None else split[1], test=np.arange(len(x_test)))
    with blas_thread_limit(config.threads):
        start = time.perf_counter()
        trained = train_preset(config, x, y, validation=watched, init=init, callback=callback,
                               on_batch=on_batch, checkpoint=checkpoint, stop=stop, resume=resume)
        seconds = time.perf_counter() - start
        outputs = predict(trained.model, trained.params, x_test, state=trained.state)
    return RunResult(config, trained, len(x), outputs, accuracy(outputs, y_test), seconds,
                     None if held_out is None else len(held_out[0]), origin)


def data_provenance(data: Dataset, **indices: Any) -> dict[str, Any]:
    """The provenance of a run on ``data`` (:func:`purenn.io.provenance.provenance`): the SHA-256
    of each file it was loaded from, and the digests of the sample ``indices`` of each split
    (``train=``, ``validation=``, ``test=``) the run used."""
    return provenance(data_files=file_digests(dataset_files(data)), sample_indices=samples(**indices))
