"""Everything a ``fit`` run needs to continue where it stopped, as one plain record.

:class:`TrainingState` holds the params, the optimizer's state, the layers' state, both random
generators (shuffling and dropout, via :mod:`purenn.rng`), the position (epochs done, steps done in
the epoch in progress, and that epoch's loss, correct classes and metrics so far), the history, the
weight average's state, the early-stopping and plateau rules' states and the run's settings. ``fit`` hands one to its ``checkpoint`` callback and takes
one as ``resume=``; because a run is a pure function of its inputs, a resumed run gives exactly the
params of one that was never interrupted. :mod:`purenn.io.training_checkpoints` saves it to one
``.npz`` file (arrays) with a JSON header (the rest), never pickled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.monitors import EarlyStoppingState, PlateauState

__all__ = ["TrainingState", "data_fingerprint", "settings_differences"]


@attrs.frozen
class TrainingState:
    """A ``fit`` run between two steps.

    ``epoch``: epochs completed; ``step``: steps completed in the epoch in progress (0 at an epoch
    boundary); ``epoch_loss``: the sum of loss x batch rows over those steps; ``last_loss``: the
    latest step's loss. ``shuffle_rng``: the shuffling generator as it was at the start of the
    epoch in progress (its permutation is drawn again on resume); ``layer_rng``: the generator of
    stochastic layers, as it is now. ``model_state`` is None for a run without layer state;
    ``best_params``/``best_model_state`` are early stopping's best epoch (None without it).
    ``settings``: what the run was asked to do (compared with the resuming call's, field by field).
    ``epoch_loss`` with sample or class weights: the sum of loss x the batch's total weight.
    ``epoch_correct``: the epoch's training rows so far whose output gave the right class (None
    for targets that are not classes); ``epoch_metrics``: for ``fit(metrics=...)``, each metric's
    sum of value x batch rows so far (None without). ``average``: the weight average's state
    (``fit(average=EMA(...))``; None without one); ``best_average``: the averaged params of early
    stopping's best epoch (None without both).
    """

    params: Any
    model_state: Any
    opt_state: Any
    epoch: int
    step: int
    epoch_loss: float
    last_loss: float | None
    shuffle_rng: dict[str, Any]
    layer_rng: dict[str, Any]
    history: tuple[Any, ...]
    settings: Mapping[str, Any] = attrs.field(converter=lambda d: MappingProxyType(dict(d)))
    early_stopping: EarlyStoppingState | None = None
    plateau: PlateauState | None = None
    best_params: Any = None
    best_model_state: Any = None
    epoch_correct: int | None = None
    epoch_metrics: dict[str, float] | None = attrs.field(default=None, hash=False)
    average: Any = None
    best_average: Any = None

    @property
    def at_epoch_end(self) -> bool:
        """Whether this is the state after a whole epoch (and its validation) rather than mid-epoch."""
        return self.step == 0

    @property
    def finished(self) -> bool:
        """Whether the run has done all its epochs or stopped early."""
        stopped = self.early_stopping is not None and self.early_stopping.stopped
        return self.step == 0 and (self.epoch >= self.settings.get("epochs", 0) or stopped)


def data_fingerprint(*arrays: np.ndarray | None) -> str:
    """SHA-256 (hex, first 16 characters) of arrays' dtypes, shapes and bytes: a training set is
    recognised when a run resumes (not a security measure)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
    return h.hexdigest()[:16]


def describe(value: Any) -> str:
    """A setting as text that is the same in every process: an attrs record's repr (its fields),
    for anything else its class (an address in a repr would differ each run)."""
    if attrs.has(type(value)) or value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"field: saved X, now Y"`` for each setting that differs between a saved run and this
    call; long texts are shown from a little before where they start to differ."""
    keys = list(dict.fromkeys([*saved, *current]))
    return [f"{k}: saved {_around(saved.get(k), current.get(k))}, now {_around(current.get(k), saved.get(k))}"
            for k in keys if saved.get(k) != current.get(k)]


def _around(value: Any, other: Any, width: int = 70) -> str:
    text, against = repr(value), repr(other)
    if len(text) <= width:
        return text
    first = next((i for i, (a, b) in enumerate(zip(text, against)) if a != b), min(len(text), len(against)))
    start = max(0, first - 20)
    return ("..." if start else "") + text[start : start + width] + ("..." if start + width < len(text) else "")


def check_resumable(state: Any, current: dict[str, Any]) -> TrainingState:
    """``state`` if it is a :class:`TrainingState` of a run with ``current``'s settings, else an
    :class:`~purenn.errors.ArgumentError` naming the first setting that differs."""
    if not isinstance(state, TrainingState):
        inner = getattr(state, "state", None)
        hint = "; pass its .state" if isinstance(inner, TrainingState) else ""
        raise ArgumentError(f"`resume` must be a TrainingState (from fit's checkpoint callback or "
                            f"load_training_state(path).state), got {type(state).__name__}{hint}")
    differences = settings_differences(state.settings, current)
    if differences:
        raise ArgumentError(
            f"cannot resume: this call's settings differ from the saved run's ({'; '.join(differences)}); "
            "resume with the same model, data and settings, or start a new run"
        )
    steps = -(-int(current.get("samples", 0)) // max(int(current.get("batch_size", 1)), 1))
    if not (0 <= state.step < max(steps, 1) and 0 <= state.epoch <= current.get("epochs", 0)):
        raise ArgumentError(
            f"cannot resume: the saved position (epoch {state.epoch}, step {state.step}) is not one of "
            f"a run of {current.get('epochs')} epochs of {steps} steps (a damaged state?)")
    return state
