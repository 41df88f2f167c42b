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
from purenn.io.checkpoints import Checkpoint
from purenn.io.datasets import Dataset
from purenn.io.environment import blas_thread_limit, blas_threads
from purenn.io.provenance import dataset_files, file_digests, provenance, samples
from purenn.io.records import DIGEST, make_record, params_digest
from purenn.io.serialize import to_data
from purenn.layers import Sequential
from purenn.losses import one_hot
from purenn.metrics import accuracy
from purenn.monitors import EarlyStopping
from purenn.optim.base import Optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.transforms import ADAM_CHANGED
from purenn.recipes.presets import LOSSES, PRESETS
from purenn.splits import split_fraction, split_indices
from purenn.training import History, fit, predict
from purenn.training_state import TrainingState
from purenn.validation import (
    Rule,
    boolean,
    non_negative_int,
    optional,
    positive_int,
    positive_number,
    thread_count,
)

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

_known_preset = Rule(f"one of the presets {tuple(PRESETS)}", lambda v: isinstance(v, str),
                     lambda v: v in PRESETS)

#: The validation split's seed when none is given: one split for every run seed, so that runs of
#: several seeds differ in initialisation, order and dropout, not in the samples they learn from.
DATA_SEED = 0
#: The longest ``init_from`` (the starting checkpoint's file name) a run records, in characters:
#: file systems allow names of at most 255 bytes. It is only ever shown, never opened.
MAX_INIT_NAME = 255
_file_name = Rule(f"a file name (no folder) of 1 to {MAX_INIT_NAME} printable characters",
                  lambda v: isinstance(v, str),
                  lambda v: 0 < len(v) <= MAX_INIT_NAME and v.isprintable() and v not in (".", "..")
                  and "/" not in v and "\\" not in v)


@attrs.frozen
class RunConfig:
    """One run of a preset: its overrides (``None`` keeps the preset's value), seed and limit,
    and the number of BLAS threads (results differ between thread counts; ``None``: as the BLAS
    is set up, which a recorded run should not leave open). ``patience``: stop early when the
    watched loss has not improved for that many epochs, keeping the best epoch's params.

    ``validation``: hold out this fraction of the (first ``limit``) training samples, stratified
    by label (:func:`split_training_set`): each epoch's metrics and early stopping watch it, and
    the test set is read once, after training. The split's seed is ``data_seed`` (default
    :data:`DATA_SEED`: the same split whatever ``seed`` is), or with ``vary_split`` the pair
    ``(data_seed, seed)`` (:attr:`split_seed`): one split per seed. Both need ``validation``.

    ``init_from``, ``init_digest``: the run starts from a checkpoint's params and state instead
    of the preset's initialisation (:func:`start_from` sets them): the file's name, only shown,
    and the params digest of its params and state, which the run checks the checkpoint it is
    given against. Both or neither. Every field added here defaults to what runs did before it
    existed, so a record without it reads as that default."""

    preset: str = attrs.field(validator=_known_preset)
    seed: int = attrs.field(default=0, validator=non_negative_int)
    epochs: int | None = attrs.field(default=None, validator=optional(positive_int))
    batch_size: int | None = attrs.field(default=None, validator=optional(positive_int))
    lr: float | None = attrs.field(default=None, validator=optional(positive_number))
    limit: int | None = attrs.field(default=None, validator=optional(positive_int))
    dataset: str = attrs.field(default="mnist", validator=Rule("a dataset name", lambda v: isinstance(v, str)))
    threads: int | None = attrs.field(default=None, validator=optional(thread_count))
    patience: int | None = attrs.field(default=None, validator=optional(positive_int))
    validation: float | None = attrs.field(default=None, validator=optional(split_fraction))
    data_seed: int = attrs.field(default=DATA_SEED, validator=non_negative_int)
    vary_split: bool = attrs.field(default=False, validator=boolean)
    init_from: str | None = attrs.field(default=None, validator=optional(_file_name))
    init_digest: str | None = attrs.field(default=None, validator=optional(DIGEST))

    def __attrs_post_init__(self) -> None:
        if self.validation is None and (self.data_seed != DATA_SEED or self.vary_split):
            raise ArgumentError(f"`data_seed` ({self.data_seed}) and `vary_split` ({self.vary_split}) "
                                "choose the validation split: give `validation` too (a fraction of the "
                                "training set, such as 0.1)")
        if (self.init_from is None) != (self.init_digest is None):
            raise ArgumentError("`init_from` and `init_digest` say together which checkpoint the run "
                                f"starts from: give both or neither, got {self.init_from!r:.80} and "
                                f"{self.init_digest!r:.80} (start_from sets both)")

    def resolved(self) -> dict[str, Any]:
        """The settings actually used: the preset's, with this run's overrides applied. A setting
        added after records existed appears only when it is not at its default, so the records
        written before it still compare equal."""
        p = PRESETS[self.preset]
        return {
            "preset": self.preset, "dataset": self.dataset, "seed": self.seed, "limit": self.limit,
            "epochs": p.epochs if self.epochs is None else self.epochs,
            "batch_size": p.batch_size if self.batch_size is None else self.batch_size,
            "lr": p.lr if self.lr is None else self.lr,
            "loss": p.loss, "optimizer": type(p.make_optimizer(1)).__name__.lower(),
            "shuffle": p.shuffle,
            **({} if self.patience is None else {"patience": self.patience}),
            **({} if self.validation is None else {"validation": self.validation, "data_seed": self.data_seed,
                                                   "vary_split": self.vary_split}),
            **({} if self.init_digest is None else {"init_digest": self.init_digest}),
        }

    @property
    def evaluated_on(self) -> str:
        """The set each epoch's ``val_loss`` and ``val_accuracy`` (and early stopping) come from:
        ``"validation"`` with a validation split, else ``"test"``."""
        return "test" if self.validation is None else "validation"

    @property
    def split_seed(self) -> int | tuple[int, int, int]:
        """The seed of the validation split: ``data_seed``; with ``vary_split``,
        ``(data_seed, seed, 1)``: NumPy's seed sequences read trailing zeros as absent, and the
        final 1 keeps every pair apart from every fixed split (``(0, 0)`` would draw what ``0``
        draws)."""
        return (self.data_seed, self.seed, 1) if self.vary_split else self.data_seed

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
    init: Checkpoint | None = None,
    callback: Callable[..., None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    stop: Callable[[], bool] | None = None,
    resume: TrainingState | None = None,
) -> TrainedRun:
    """Train ``config``'s preset on ``(x_train, y_train)`` (integer labels; the first ``limit``
    of them); return the :class:`TrainedRun`. ``validation``: the set each epoch's log and early
    stopping watch (as for :func:`purenn.fit`). Pure given its inputs: the same config gives the
    same params, and a run continued from a saved state (``resume``; ``checkpoint`` and ``stop``
    as for :func:`purenn.fit`) the same as one never interrupted. Each epoch's log carries the
    digest of the params and layer state at its end.

    ``init``: the checkpoint a config made by :func:`start_from` starts from (its digest must be
    the config's ``init_digest``); not needed to resume, whose state holds the params."""
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
        params, state = _starting_point(config, init, init_rng)
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


def _starting_point(config: RunConfig, init: Checkpoint | None, rng: np.random.Generator) -> tuple[Any, Any]:
    """The params and state a new run starts from: the preset's initialisation, or ``init``
    (checked to be the checkpoint the config names)."""
    model = PRESETS[config.preset].model
    if config.init_digest is None:
        if init is not None:
            raise ArgumentError("`init` is given, but the config starts from the preset's initialisation: "
                                "make it with start_from(config, checkpoint, name), so that its record "
                                "says where the run started")
        return model.init(rng), model.init_state()
    if init is None:
        raise ArgumentError(f"the run starts from the checkpoint {config.init_from!r} (params digest "
                            f"{config.init_digest[:16]}...): pass it as `init`")
    check_start(config.preset, init, str(config.init_from))
    digest = _epoch_digest(init.params, init.state)
    if digest != config.init_digest:
        raise ArgumentError(f"the checkpoint given as `init` has params digest {digest}, but the run "
                            f"starts from {config.init_from!r}, whose digest is {config.init_digest}: "
                            "give that file")
    return init.params, init.state


def model_difference(found: Any, expected: Any) -> str | None:
    """Where model ``found`` differs from ``expected``, as a phrase (the first differing layer
    of two ``Sequential`` models); None when they are equal."""
    if found == expected:
        return None
    if isinstance(found, Sequential) and isinstance(expected, Sequential):
        if len(found.layers) != len(expected.layers):
            return f"it has {len(found.layers)} layers, the preset's model {len(expected.layers)}"
        for i, (a, b) in enumerate(zip(found.layers, expected.layers)):
            if a != b:
                return f"its layer {i} is {a!r:.120}, the preset's {b!r:.120}"
    return f"it is {found!r:.120}, the preset's model {expected!r:.120}"


def check_start(preset: str, checkpoint: Checkpoint, name: str) -> None:
    """An :class:`~purenn.errors.ArgumentError` unless ``checkpoint`` (a file named ``name``)
    holds ``preset``'s model, so a run of that preset can start from its params and state
    (whose layout :func:`purenn.read_checkpoint` checked against that model)."""
    difference = model_difference(checkpoint.model, PRESETS[preset].model)
    if difference is not None:
        raise ArgumentError(f"{name!r:.120} holds another model than the {preset!r} preset's "
                            f"({difference}): a run starts from a checkpoint of its own preset's "
                            "model, as a run of that preset saves")


def start_from(config: RunConfig, checkpoint: Checkpoint, name: str) -> RunConfig:
    """``config``, starting from ``checkpoint``'s params and state (fine-tuning, or training on)
    instead of the preset's initialisation: ``init_from`` is ``name`` (the file's name, no
    folder) and ``init_digest`` the params digest of its params and state, which the run record
    keeps (a checkpoint saved by a run has that run record's ``digest``). An
    :class:`~purenn.errors.ArgumentError` if it does not hold the preset's model
    (:func:`check_start`)."""
    check_start(config.preset, checkpoint, name)
    return attrs.evolve(config, init_from=name, init_digest=_epoch_digest(checkpoint.params, checkpoint.state))


def check_new_run(config: RunConfig) -> None:
    """Refuse what a new run must not do, though records of earlier runs may hold it (and
    repeat): early stopping (``patience``) without a validation set would keep the epoch whose
    test loss was lowest, choosing by the test set, whose accuracy would then overstate how the
    model does on new data."""
    if config.patience is not None and config.validation is None:
        raise ArgumentError("early stopping (`patience`) without a validation set would choose the epoch "
                            "to keep by the test set, and the test accuracy would then overstate the "
                            "model's: hold out a validation set too (`validation`, such as 0.1)")


def split_training_set(config: RunConfig, x: np.ndarray, y: np.ndarray) -> tuple[
        tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """``((x_train, y_train), validation)``: what ``config`` trains on, and the validation set
    it holds out (None without ``validation``): :func:`split_of`'s samples, each part in the
    original order."""
    if config.limit is not None:
        x, y = x[: config.limit], y[: config.limit]
    split = split_of(config, y)
    if split is None:
        return (x, y), None
    train, held = split
    return (x[train], y[train]), (x[held], y[held])


def split_of(config: RunConfig, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(train_indices, validation_indices)`` of ``config``'s split of a training set with these
    integer ``labels`` (None without ``validation``): from the first ``limit`` samples,
    ``config.validation`` of them, stratified by label, drawn with ``config.split_seed``
    (:func:`purenn.splits.split_indices`, whose ArgumentError says why a split cannot be made).
    Cheap (labels only): a command can check a run's split before it starts."""
    if config.validation is None:
        return None
    return split_indices(labels[: config.limit], config.validation, seed=config.split_seed)


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


def describe(config: RunConfig, n_train: int, n_validation: int | None = None) -> dict[str, Any]:
    """The run's full configuration as JSON data: overrides, resolved settings, model,
    optimizer, the samples trained on, and ``evaluated_on``, the set each epoch's ``val_*``
    metrics (and early stopping) come from; with a validation split, ``validation_samples``
    (``n_validation``: how many it held out)."""
    described = {
        "run": attrs.asdict(config),
        "resolved": config.resolved(),
        "model": to_data(PRESETS[config.preset].model),
        "update": to_data(config.optimizer(n_train)),
        "train_samples": n_train,
        "evaluated_on": config.evaluated_on,
    }
    if n_validation is not None:
        described["validation_samples"] = n_validation
    return described


def run_record(config: RunConfig, trained: TrainedRun, n_train: int,
               metrics: dict[str, Any], *, validation_samples: int | None = None,
               provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run record: configuration, seed, versions, history, metrics, params digest (which
    covers the layers' state too when the model has any), and ``provenance`` when given (what
    the run read: :mod:`purenn.io.provenance`). ``versions`` is read with the run's BLAS thread
    limit in force, so ``blas_threads`` is the count the run used. ``validation_samples``: how
    many the run held out (with ``config.validation``)."""
    extra: dict[str, Any] = {} if not provenance else {"provenance": provenance}
    if config.patience is not None:
        extra["early_stopping"] = {"monitor": "val_loss", "patience": config.patience,
                                   "stopped_early": trained.history.stopped_early,
                                   "best_epoch": trained.history.best_epoch}
    with blas_thread_limit(config.threads):
        return make_record(
            config=describe(config, n_train, validation_samples),
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
