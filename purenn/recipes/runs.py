"""One run of a preset: its configuration, the training itself, and the record that describes it.

:class:`RunConfig` is what a run record stores (the preset, its overrides, the seed, the sample
limit), so the run can be repeated exactly; :func:`run_preset` trains it and tests it (the one
path from a preset to a result: ``purenn mnist`` and an experiment's runs both take it), on
:func:`train_preset`; :func:`describe` and :func:`run_record` say what it was and what it gave,
as plain data for :func:`purenn.recipes.records.write_run_record`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, RecordError
from purenn.io.datasets import Dataset
from purenn.io.environment import blas_thread_limit, blas_threads
from purenn.io.provenance import dataset_files, file_digests, provenance, samples
from purenn.io.records import make_record, params_digest
from purenn.io.serialize import to_data
from purenn.layers import Sequential
from purenn.losses import one_hot
from purenn.metrics import accuracy
from purenn.monitors import EarlyStopping
from purenn.optim.base import Optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.transforms import ADAM_CHANGED
from purenn.recipes.presets import LOSSES, PRESETS
from purenn.training import History, fit, predict
from purenn.training_state import TrainingState
from purenn.validation import (
    Rule,
    non_negative_int,
    optional,
    positive_int,
    positive_number,
    thread_count,
)

__all__ = [
    "RunConfig",
    "RunResult",
    "TrainedRun",
    "arithmetic_change",
    "config_from_record",
    "data_provenance",
    "describe",
    "record_differences",
    "repeatable_config",
    "run_preset",
    "run_record",
    "same_update",
    "train_preset",
]

_known_preset = Rule(f"one of the presets {tuple(PRESETS)}", lambda v: isinstance(v, str),
                     lambda v: v in PRESETS)


@attrs.frozen
class RunConfig:
    """One run of a preset: its overrides (``None`` keeps the preset's value), seed and limit,
    and the number of BLAS threads (results differ between thread counts; ``None``: as the BLAS
    is set up, which a recorded run should not leave open). ``patience``: stop early when the
    validation loss has not improved for that many epochs, keeping the best epoch's params."""

    preset: str = attrs.field(validator=_known_preset)
    seed: int = attrs.field(default=0, validator=non_negative_int)
    epochs: int | None = attrs.field(default=None, validator=optional(positive_int))
    batch_size: int | None = attrs.field(default=None, validator=optional(positive_int))
    lr: float | None = attrs.field(default=None, validator=optional(positive_number))
    limit: int | None = attrs.field(default=None, validator=optional(positive_int))
    dataset: str = attrs.field(default="mnist", validator=Rule("a dataset name", lambda v: isinstance(v, str)))
    threads: int | None = attrs.field(default=None, validator=optional(thread_count))
    patience: int | None = attrs.field(default=None, validator=optional(positive_int))

    def resolved(self) -> dict[str, Any]:
        """The settings actually used: the preset's, with this run's overrides applied."""
        p = PRESETS[self.preset]
        return {
            "preset": self.preset, "dataset": self.dataset, "seed": self.seed, "limit": self.limit,
            "epochs": p.epochs if self.epochs is None else self.epochs,
            "batch_size": p.batch_size if self.batch_size is None else self.batch_size,
            "lr": p.lr if self.lr is None else self.lr,
            "loss": p.loss, "optimizer": type(p.make_optimizer(1)).__name__.lower(),
            "shuffle": p.shuffle,
            # only when set: records written before early stopping existed stay repeatable
            **({} if self.patience is None else {"patience": self.patience}),
        }

    def with_threads_in_use(self) -> RunConfig:
        """This config, its ``threads`` the BLAS's thread count now when it names none (still
        None when that count is unknown): its record then says how many threads the run used,
        so that the run can be repeated with them."""
        if self.threads is not None:
            return self
        return attrs.evolve(self, threads=blas_threads() or None)

    def optimizer(self, n_train: int) -> Optimizer:
        """The optimizer for ``n_train`` training samples (schedules count the run's steps)."""
        s = self.resolved()
        steps = s["epochs"] * math.ceil(n_train / s["batch_size"])
        return PRESETS[self.preset].make_optimizer(steps, s["lr"])


@attrs.frozen
class TrainedRun:
    """What training a preset gives: the model, its params and state (BatchNorm's running
    statistics; ``{}`` entries for a model without any), and the history."""

    model: Sequential
    params: Any
    state: Any
    history: History

    @property
    def digest(self) -> str:
        """The params digest of the run record (covering the state when the model has one)."""
        return params_digest(self.params, state=self.state)


def train_preset(
    config: RunConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    callback: Callable[..., None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: TrainingState | None = None,
) -> TrainedRun:
    """Train ``config``'s preset on ``(x_train, y_train)`` (integer labels); return the
    :class:`TrainedRun`. Pure given its inputs: the same config gives the same params, and a run
    continued from a saved state (``resume``; ``checkpoint`` and ``stop`` as for
    :func:`purenn.fit`) the same as one never interrupted. Each epoch's log carries the digest
    of the params and layer state at its end."""
    preset = PRESETS[config.preset]
    s = config.resolved()
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    targets = one_hot(y_train, 10) if preset.one_hot_targets else y_train
    if validation is not None and preset.one_hot_targets:
        validation = (validation[0], one_hot(validation[1], 10))
    if config.patience is not None and validation is None:
        raise ArgumentError("early stopping (patience) watches the validation loss: give a validation set")
    init_rng, train_rng = np.random.default_rng(config.seed).spawn(2)
    params: Any = None
    state: Any = None
    if resume is None:
        params, state = preset.model.init(init_rng), preset.model.init_state()
    early = None if config.patience is None else EarlyStopping(config.patience, monitor="val_loss")
    with blas_thread_limit(config.threads):
        params, state, history = fit(
            preset.model, params, x_train, targets, loss=LOSSES[preset.loss], epochs=s["epochs"],
            batch_size=s["batch_size"], shuffle=preset.shuffle, seed=train_rng,
            validation=validation, callback=callback, on_batch=on_batch,
            optimizer=config.optimizer(len(x_train)), state=state, early_stopping=early,
            checkpoint=checkpoint, stop=stop, resume=resume, digest=_epoch_digest,
        )
    return TrainedRun(preset.model, params, state, history)


def _epoch_digest(params: Any, state: Any) -> str:
    return params_digest(params, state=state)


@attrs.frozen(eq=False)
class RunResult:
    """What :func:`run_preset` gives: the run's ``config``, the :class:`TrainedRun`, the number
    of training samples it used, its outputs on the test set (one row of class scores per test
    sample) and its metrics: ``test_accuracy``, and ``train_seconds``, the wall-clock time of the
    training alone (for a resumed run, of this session's part); ``provenance``: the data files
    it read and the samples it trained and tested on (:mod:`purenn.io.provenance`)."""

    config: RunConfig
    trained: TrainedRun
    train_samples: int
    test_outputs: np.ndarray
    test_accuracy: float
    train_seconds: float
    provenance: dict[str, Any] = attrs.field(factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """The run record's metrics: ``{"test_accuracy": ..., "train_seconds": ...}``."""
        return {"test_accuracy": self.test_accuracy, "train_seconds": self.train_seconds}

    def record(self) -> dict[str, Any]:
        """The run record (:func:`run_record`): what ``purenn mnist --record`` writes and an
        experiment keeps for each seed."""
        return run_record(self.config, self.trained, self.train_samples, self.metrics,
                          provenance=self.provenance)

    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a checkpoint of the trained model carries: the run's settings (``purenn
        evaluate`` reads its dataset there) and metrics."""
        return {"run": attrs.asdict(self.config), "metrics": self.metrics}


def run_preset(
    config: RunConfig,
    data: Dataset,
    *,
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
    The test set is the validation set: each epoch's log has its loss and accuracy, and early
    stopping (``config.patience``) watches its loss. ``callback``, ``on_batch`` report progress
    (as for :func:`purenn.fit`; this function prints nothing); ``checkpoint``, ``stop`` and
    ``resume``: as for :func:`train_preset`."""
    if data.train is None or data.test is None:
        raise ArgumentError("run_preset needs the dataset's train and test splits: load it with "
                            "splits=('train', 'test')")
    x, y, x_test, y_test = data.train.images, data.train.labels, data.test.images, data.test.labels
    n = len(x) if config.limit is None else min(len(x), config.limit)
    origin = data_provenance(data, train=np.arange(n), test=np.arange(len(x_test)))
    with blas_thread_limit(config.threads):
        start = time.perf_counter()
        trained = train_preset(config, x, y, validation=(x_test, y_test), callback=callback,
                               on_batch=on_batch, checkpoint=checkpoint, stop=stop, resume=resume)
        seconds = time.perf_counter() - start
        outputs = predict(trained.model, trained.params, x_test, state=trained.state)
    return RunResult(config, trained, n, outputs, accuracy(outputs, y_test), seconds, origin)


def data_provenance(data: Dataset, **indices: Any) -> dict[str, Any]:
    """The provenance of a run on ``data`` (:func:`purenn.io.provenance.provenance`): the SHA-256
    of each file it was loaded from, and the digests of the sample ``indices`` of each split
    (``train=``, ``test=``) the run used."""
    return provenance(data_files=file_digests(dataset_files(data)), sample_indices=samples(**indices))


def describe(config: RunConfig, n_train: int) -> dict[str, Any]:
    """The run's full configuration as JSON data: overrides, resolved settings, model, optimizer."""
    return {
        "run": attrs.asdict(config),
        "resolved": config.resolved(),
        "model": to_data(PRESETS[config.preset].model),
        "update": to_data(config.optimizer(n_train)),
        "train_samples": n_train,
    }


def run_record(config: RunConfig, trained: TrainedRun, n_train: int,
               metrics: dict[str, Any], *, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run record: configuration, seed, versions, history, metrics, params digest (which
    covers the layers' state too when the model has any), and ``provenance`` when given (what
    the run read: :mod:`purenn.io.provenance`). ``versions`` is read with the run's BLAS thread
    limit in force, so ``blas_threads`` is the count the run used."""
    extra: dict[str, Any] = {} if not provenance else {"provenance": provenance}
    if config.patience is not None:
        extra["early_stopping"] = {"monitor": "val_loss", "patience": config.patience,
                                   "stopped_early": trained.history.stopped_early,
                                   "best_epoch": trained.history.best_epoch}
    with blas_thread_limit(config.threads):
        return make_record(
            config=describe(config, n_train),
            seed=config.seed,
            digest=trained.digest,
            history=[attrs.asdict(e) for e in trained.history.epochs],
            **extra,
            metrics=metrics,
        )


def config_from_record(record: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` a run record (as :func:`purenn.recipes.records.read_run_record` returns it)
    was made with; :class:`~purenn.errors.RecordError` if it holds none."""
    try:
        return RunConfig(**record["config"]["run"])
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"not a purenn mnist run record ({e})") from None


def repeatable_config(record: dict[str, Any]) -> RunConfig:
    """The :class:`RunConfig` that repeats a run record here, or a
    :class:`~purenn.errors.RecordError` saying why this purenn cannot: the arithmetic of its
    update rule changed since the purenn that made it (:func:`arithmetic_change`), or the
    preset is no longer what the record describes (:func:`record_differences`)."""
    config = config_from_record(record)
    made_by = record.get("versions", {}).get("purenn", "?")
    change = arithmetic_change(record)
    if change is not None:
        raise RecordError(f"the record was made by purenn {made_by}, and {change}; reproduce it "
                          f"with purenn {made_by}")
    changed = record_differences(record, config)
    if changed:
        raise RecordError(f"the record's {' and '.join(changed)} differ from this purenn's "
                          f"{config.preset!r} preset (recorded with purenn {made_by}); reproduce "
                          "it with that version")
    return config


def arithmetic_change(record: dict[str, Any]) -> str | None:
    """What this purenn computes differently for the record's update rule than the version that
    made it (from ``versions.purenn``), or None: Adam's arithmetic changed in
    :data:`~purenn.optim.transforms.ADAM_CHANGED`'s version."""
    since, what = ADAM_CHANGED
    made_by = _version(record.get("versions", {}).get("purenn"))
    if made_by is not None and made_by >= _version(since):  # type: ignore[operator]
        return None
    if not _uses_old_adam(record.get("config", {}).get("update")):
        return None
    return f"purenn {since} changed Adam's arithmetic: {what}"


def _version(text: Any) -> tuple[int, ...] | None:
    """``"0.2.0"`` -> ``(0, 2, 0)``; None for anything else (an unknown version counts as old)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def _uses_old_adam(data: Any) -> bool:
    """Whether encoded optimizer data holds an ``Adam`` record, or a ``ScaleByAdam`` with the
    learning rate folded in (which it no longer takes)."""
    if isinstance(data, dict):
        fields = data.get("fields")
        if data.get("type") == "Adam" or (data.get("type") == "ScaleByAdam" and isinstance(fields, dict)
                                          and fields.get("lr") is not None):
            return True
        return any(_uses_old_adam(v) for v in data.values())
    if isinstance(data, list):
        return any(_uses_old_adam(v) for v in data)
    return False


def record_differences(record: dict[str, Any], config: RunConfig) -> list[str]:
    """The parts of a record's configuration (``resolved`` settings, ``model``, ``update``) that
    this purenn would run differently for ``config``: empty when the run can be repeated."""
    recorded = record["config"]
    current = describe(config, recorded.get("train_samples", 0))
    changed = [k for k in ("resolved", "model") if k in recorded and recorded[k] != current[k]]
    if "update" in recorded and not same_update(recorded["update"], current["update"]):
        changed.append("update")
    return changed


def same_update(recorded: Any, current: Any) -> bool:
    """Whether a record's ``update`` describes ``current``'s. Records written before optimizers
    became transformations stored plain SGD as ``{"sgd_step": {"lr": x}}``: that is ``SGD(x)``."""
    if isinstance(recorded, dict) and recorded.keys() == {"sgd_step"}:
        lr = recorded["sgd_step"].get("lr") if isinstance(recorded["sgd_step"], dict) else None
        try:
            recorded = to_data(SGD(lr))  # type: ignore[arg-type]  # SGD checks it
        except (TypeError, ValueError):
            return False
    return bool(recorded == current)
