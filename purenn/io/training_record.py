"""The training record of a training checkpoint: the ``"training"`` object of its header (see
:mod:`purenn.io.training_checkpoints`), made from a :class:`~purenn.training_state.TrainingState`
and read back with every field checked for its type, its range and its consistency with the
others, so that a damaged or edited file is refused before a run resumes from it."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs

from purenn.errors import ArgumentError, CheckpointError, PurennError
from purenn.monitors import EarlyStoppingState, PlateauState
from purenn.optim.base import State
from purenn.rng import generator_from_state
from purenn.training import EpochLog
from purenn.training_state import TrainingState

#: The newest version of the training checkpoint format (:mod:`purenn.io.training_checkpoints`,
#: which writes it), whose training record holds every field below.
VERSION = 3
_TRAINING_KEYS = ("epoch", "step", "epoch_loss", "last_loss", "shuffle_rng", "layer_rng",
                  "history", "settings", "early_stopping", "plateau", "epoch_correct", "epoch_metrics")
_SINCE_3 = ("epoch_correct", "epoch_metrics")  # absent (None) in versions 1 and 2
_EPOCH_SINCE_3 = ("accuracy", "metrics", "average_digest")  # and in their history's entries


def training_data(where: str, model: Any, state: TrainingState) -> dict[str, Any]:
    """The record's JSON data, put through the checks loading makes."""
    try:
        data = {
            "epoch": state.epoch, "step": state.step, "epoch_loss": state.epoch_loss,
            "last_loss": state.last_loss, "shuffle_rng": state.shuffle_rng,
            "layer_rng": state.layer_rng, "history": [attrs.asdict(log) for log in state.history],
            "settings": dict(state.settings),
            "early_stopping": None if state.early_stopping is None else attrs.asdict(state.early_stopping),
            "plateau": None if state.plateau is None else attrs.asdict(state.plateau),
            "epoch_correct": state.epoch_correct,
            "epoch_metrics": None if state.epoch_metrics is None else dict(state.epoch_metrics),
        }
        training_from_data(json.loads(json.dumps(data)))
        check_consistency(model, state)
    except (TypeError, ValueError, ArgumentError, attrs.exceptions.NotAnAttrsClassError) as e:
        raise CheckpointError(f"cannot save training state {where!r}: its training record would "
                              f"not load ({reason(e)})") from None
    return data


def training_from_data(data: Any, version: int = VERSION) -> dict[str, Any]:
    """The training record's fields, each checked for its type and range (a damaged or edited
    file is refused here, not in the middle of a resumed run). Versions before 3 lack the fields
    version 3 added (see the module's docstring)."""
    keys = _TRAINING_KEYS if version >= 3 else tuple(k for k in _TRAINING_KEYS if k not in _SINCE_3)
    if not isinstance(data, dict) or set(keys) - data.keys():
        raise CheckpointError(f"the training record needs {list(keys)}")
    unknown = sorted(data.keys() - set(keys))
    if unknown:
        raise CheckpointError(f"the training record has unknown field(s) {unknown[:10]!r:.200}")
    out: dict[str, Any] = {k: data.get(k) for k in _TRAINING_KEYS}
    if not (out["epoch_correct"] is None or _is_count(out["epoch_correct"])):
        raise CheckpointError(f"epoch_correct must be a non-negative int or null, got {out['epoch_correct']!r:.40}")
    if not (out["epoch_metrics"] is None or _KINDS["dict[str, float]"][0](out["epoch_metrics"])):
        raise CheckpointError(f"epoch_metrics must be an object of numbers or null, "
                              f"got {out['epoch_metrics']!r:.60}")
    for name in ("epoch", "step"):
        if not _is_count(out[name]):
            raise CheckpointError(f"{name} must be a non-negative int, got {out[name]!r:.40}")
    if not _is_number(out["epoch_loss"]) or not (out["last_loss"] is None or _is_number(out["last_loss"])):
        raise CheckpointError("epoch_loss and last_loss must be numbers")
    _check_settings(out["settings"])
    for name in ("shuffle_rng", "layer_rng"):
        if not isinstance(out[name], dict):
            raise CheckpointError(f"{name} must be an object, got {type(out[name]).__name__}")
        generator_from_state(out[name])  # refused now if it cannot be rebuilt
    if not isinstance(out["history"], list) or not all(isinstance(h, dict) for h in out["history"]):
        raise CheckpointError("history must be a list of objects")
    lacking = () if version >= 3 else _EPOCH_SINCE_3
    out["history"] = tuple(_record(EpochLog, log, f"history[{i}]", lacking) for i, log in enumerate(out["history"]))
    for name, cls in (("early_stopping", EarlyStoppingState), ("plateau", PlateauState)):
        out[name] = None if out[name] is None else _record(cls, out[name], name)
    return out


def _check_settings(settings: Any) -> None:
    """The run's settings: an object of JSON scalars (compared with a resuming call's), its
    ``epochs`` (which says when the run is finished) a non-negative int."""
    if not isinstance(settings, dict):
        raise CheckpointError(f"settings must be an object, got {type(settings).__name__}")
    for key, value in settings.items():
        if not (value is None or type(value) in (bool, int, float, str)):
            raise CheckpointError(f"settings[{key!r:.40}] must be a number, string, true, false or null, "
                                  f"got {type(value).__name__}")
    if "epochs" in settings and not _is_count(settings["epochs"]):
        raise CheckpointError(f"settings['epochs'] must be a non-negative int, "
                              f"got {settings['epochs']!r:.40}")


# the field types the records declare: what each accepts, and its name in messages
_KINDS = {"int": (lambda v: _is_count(v), "a non-negative int"),
          "float": (lambda v: _is_number(v), "a number"),
          "bool": (lambda v: type(v) is bool, "true or false"),
          "str": (lambda v: type(v) is str, "a string"),
          "None": (lambda v: v is None, "null"),
          "dict[str, float]": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_number(x)
                                                                     for k, x in v.items()),
                               "an object of numbers")}


def _record(cls: type, data: Any, where: str, may_lack: tuple[str, ...] = ()) -> Any:
    """An attrs record (``EpochLog``, a rule's state) from a JSON object holding every field and no
    other, each of its declared type: ``int`` (non-negative), ``float`` (any number), ``bool``,
    ``str``, ``dict[str, float]`` (an object of numbers), or ``X | None``; the fields ``may_lack``
    names may be absent (their defaults)."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} must be an object, got {type(data).__name__}")
    fields = {a.name: str(a.type) for a in attrs.fields(cls) if a.name in data or a.name not in may_lack}
    unknown, missing = sorted(data.keys() - fields.keys()), sorted(fields.keys() - data.keys())
    if unknown or missing:
        raise CheckpointError(f"{where} has unknown field(s) {unknown[:10]!r:.200} or lacks {missing}")
    for name, declared in fields.items():
        kinds = [_KINDS[k.strip()] for k in declared.split("|")]
        if not any(accepts(data[name]) for accepts, _ in kinds):
            raise CheckpointError(f"{where}.{name} must be {' or '.join(w for _, w in kinds)}, "
                                  f"got {data[name]!r:.40}")
    return cls(**data)


def check_consistency(model: Any, state: TrainingState) -> None:
    """What the fields say of each other, as ``fit`` leaves them: one history entry per epoch
    done, numbered from 1; early stopping's best (value, epoch and params) all there or none;
    the layers' state there for a model that has one; the plateau's scale a finite number >= 0
    (0 once factors have underflowed)."""
    if len(state.history) != state.epoch or any(log.epoch != i + 1 for i, log in enumerate(state.history)):
        raise CheckpointError(f"the history must have one entry per epoch done ({state.epoch}), numbered "
                              f"from 1; it has epochs {[log.epoch for log in state.history][:10]}")
    if "epochs" in state.settings and state.epoch > state.settings["epochs"]:
        raise CheckpointError(f"epoch {state.epoch} is past the run's {state.settings['epochs']} epochs")
    early = state.early_stopping
    if early is not None and ((early.best is None) != (early.best_epoch is None)
                              or not (early.best_epoch is None or 1 <= early.best_epoch <= state.epoch)):
        raise CheckpointError(f"early_stopping's best {early.best!r:.40} and best_epoch "
                              f"{early.best_epoch!r:.40} do not agree with each other or the epoch")
    has_best = early is not None and early.best_epoch is not None
    if has_best != (state.best_params is not None):
        raise CheckpointError("best_params must be there exactly when early stopping has a best epoch")
    if getattr(model, "stateful", False) and state.model_state is None:
        raise CheckpointError("the model has layers with state (BatchNorm) but the file holds no model_state")
    if (state.best_model_state is not None) != (has_best and state.model_state is not None):
        raise CheckpointError("best_model_state must be there exactly when best_params and model_state are")
    if state.plateau is not None and not (math.isfinite(state.plateau.scale) and state.plateau.scale >= 0):
        raise CheckpointError(f"plateau.scale must be a finite number >= 0, got {state.plateau.scale!r:.40}")
    _check_counts(state)


def _check_counts(state: TrainingState) -> None:
    """The weight average there exactly when the settings name one (and its best with the best
    params); the epoch's counts within the rows done, its metrics those the settings name."""
    averaging = state.settings.get("average") is not None
    if averaging != (state.average is not None) or not (state.average is None or isinstance(state.average, State)):
        raise CheckpointError(f"the weight average's state must be there exactly when the settings name an "
                              f"average ({state.settings.get('average')!r:.60})")
    if (state.best_average is not None) != (averaging and state.best_params is not None):
        raise CheckpointError("best_average must be there exactly when best_params and an average are")
    rows = state.step * int(state.settings.get("batch_size", 0) or 0)
    if state.epoch_correct is not None and "batch_size" in state.settings and state.epoch_correct > rows:
        raise CheckpointError(f"epoch_correct ({state.epoch_correct}) is more than the {rows} rows of the "
                              f"epoch's {state.step} steps")
    names = state.settings.get("metrics")
    if state.epoch_metrics is not None and sorted(state.epoch_metrics) != sorted(str(names or "").split(",")):
        raise CheckpointError(f"epoch_metrics names {sorted(state.epoch_metrics)!r:.80} but the settings' "
                              f"metrics are {names!r:.80}")


def reason(e: Exception) -> str:
    """Why a field was refused: purenn's own message, or another error's type and message."""
    return str(e) if isinstance(e, PurennError) else f"{type(e).__name__}: {e}"


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
