"""``--checkpoint-dir``: where a ``purenn mnist`` run keeps its latest training state, and what
``purenn resume`` needs to finish it (the run's settings and the files it was asked to write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from purenn.errors import ArgumentError
from purenn.io.training_checkpoints import TrainingCheckpoint, load_training_state, save_training_state
from purenn.recipes.runs import RunConfig
from purenn.training_state import TrainingState

TRAINING_FILE = "training.npz"


def state_path(folder: Path) -> Path:
    return folder / TRAINING_FILE


def saver(folder: Path, model: Any, config: RunConfig, outputs: dict[str, str | None]) -> Any:
    """The ``checkpoint`` callback of a run: writes each state atomically to the folder's file,
    with the run's settings and outputs as metadata."""
    metadata = {"run": attrs.asdict(config), "outputs": outputs}

    def save(state: TrainingState) -> None:
        save_training_state(state_path(folder), model, state, metadata=metadata)

    return save


def load(folder: Path) -> TrainingCheckpoint:
    return load_training_state(state_path(folder))


def saved_config(checkpoint: TrainingCheckpoint) -> RunConfig:
    """The :class:`RunConfig` the saved run was started with; an ArgumentError when the file
    does not say (it was saved from Python, or by another version of purenn)."""
    run = checkpoint.metadata.get("run")
    try:
        return RunConfig(**run)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ArgumentError(
            "its training state does not hold the settings of a `purenn mnist` run (it was "
            "saved from Python, or by another version of purenn); continue it from Python with "
            "fit(..., resume=load_training_state(path).state)") from None


def config_differences(saved: RunConfig, current: RunConfig) -> list[str]:
    """``"--epochs: 3 in the saved run, 5 now"`` for each setting that differs."""
    old, new = attrs.asdict(saved), attrs.asdict(current)
    return [f"--{k.replace('_', '-')}: {old[k]!r} in the saved run, {new[k]!r} now"
            for k in old if old[k] != new[k]]


def describe_position(state: TrainingState) -> str:
    """``"epoch 2 of 3, step 17"`` or ``"the end of epoch 2 of 3"``."""
    epochs = state.settings.get("epochs", "?")
    if state.step:
        return f"epoch {state.epoch + 1} of {epochs}, after step {state.step}"
    return f"the end of epoch {state.epoch} of {epochs}"
