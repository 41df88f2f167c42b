"""Training a preset (see :mod:`purenn.recipes.runs`): :func:`train_preset` and the
:class:`TrainedRun` it gives, from the preset's initialisation or from a checkpoint
(:func:`start_from`, :func:`check_start`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.io.checkpoints import Checkpoint
from purenn.io.environment import blas_thread_limit
from purenn.io.records import params_digest
from purenn.layers import Sequential
from purenn.losses import one_hot
from purenn.monitors import EarlyStopping
from purenn.recipes.config import RunConfig
from purenn.recipes.presets import LOSSES, PRESETS
from purenn.training import History, fit
from purenn.training_state import TrainingState

__all__ = ["TrainedRun", "check_start", "model_difference", "start_from", "train_preset"]

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
