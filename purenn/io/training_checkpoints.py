"""Training checkpoints: a whole :class:`~purenn.training_state.TrainingState` in one ``.npz``.

The format is the checkpoints' (:mod:`purenn.io.checkpoints`: a plain ``.npz``, never unpickled,
written atomically, read only after every entry's header has been checked), with its own header::

    "purenn"   0-d str array: JSON
               {"format": "purenn.training", "version": 1,
                "model": <to_data(model)>,
                "trees": {"params": <structure>, "model_state": <structure or null>,
                          "opt_state": ..., "best_params": ..., "best_model_state": ...},
                "training": {"epoch", "step", "epoch_loss", "last_loss", "shuffle_rng",
                             "layer_rng", "history", "settings", "early_stopping", "plateau"},
                "metadata": {...}}
    "<tree>/0", "<tree>/1", ...   the arrays of each tree, in tree_leaves order

An optimizer state's ``State(step, slots)`` records are stored as ``{"$step": 0-d int64 array,
"$slots": slots}`` and come back as ``State``. Floats (the epoch's loss so far, the history) go
through JSON's shortest repr, which reads back to the same bits; NaN and infinities too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, CheckpointError, SerializeError
from purenn.io.atomic import atomic_writer
from purenn.io.checkpoints import (
    _HEADER, _READ_ERRORS, Custom, _check_params, _entries, _fail, _numbered_entries, _read_array,
    open_archive, read_json_header,
)
from purenn.io.serialize import from_data, to_data, tree_from_data, tree_to_data
from purenn.monitors import EarlyStoppingState, PlateauState
from purenn.optim.base import State
from purenn.rng import generator_from_state
from purenn.training import EpochLog
from purenn.training_state import TrainingState
from purenn.tree import readonly, tree_map

__all__ = ["TrainingCheckpoint", "save_training_state", "load_training_state", "FORMAT", "VERSION"]

FORMAT = "purenn.training"
VERSION = 1
_TREES = ("params", "model_state", "opt_state", "best_params", "best_model_state")
_TRAINING_KEYS = ("epoch", "step", "epoch_loss", "last_loss", "shuffle_rng", "layer_rng",
                  "history", "settings", "early_stopping", "plateau")


@attrs.frozen
class TrainingCheckpoint:
    """What a training checkpoint holds: the model, the training state and JSON metadata."""

    model: Any
    state: TrainingState
    metadata: dict[str, Any] = attrs.field(factory=dict)


def save_training_state(path: str | os.PathLike[str], model: Any, state: TrainingState, *,
                        metadata: dict[str, Any] | None = None, custom: Custom = None) -> None:
    """Write ``model`` and the training ``state`` (plus JSON ``metadata``: how to finish the run,
    say) to ``path`` atomically: an interrupted save leaves the previous file whole."""
    where = os.fspath(path)
    if not isinstance(state, TrainingState):
        raise CheckpointError(f"cannot save training state {where!r}: expected a TrainingState, "
                              f"got {type(state).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"cannot save training state {where!r}: `metadata` must be a dict")
    _check_params(where, model, state.params)
    if state.model_state is not None:
        _check_params(where, model, state.model_state, what="state")
    trees: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    try:
        model_data = to_data(model, custom=custom)
        for name in _TREES:
            tree = getattr(state, name)
            if tree is None:
                trees[name] = None
                continue
            structure, leaves = tree_to_data(_encode_states(tree))
            trees[name] = structure
            arrays.update((f"{name}/{i}", a) for i, a in enumerate(leaves))
    except SerializeError as e:
        raise CheckpointError(f"cannot save training state {where!r}: {e.message}", hint=e.hint) from None
    header = {"format": FORMAT, "version": VERSION, "model": model_data, "trees": trees,
              "training": _training_data(state), "metadata": metadata or {}}
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save training state {where!r}: not plain JSON ({e})") from None
    try:
        with atomic_writer(path, "wb") as f:
            np.savez(f, **{_HEADER: np.array(text), **arrays})
    except ArgumentError as e:  # a path that cannot be written: a folder, a device, ...
        raise CheckpointError(e.message, hint=e.hint) from None


def load_training_state(path: str | os.PathLike[str], *, custom: Custom = None) -> TrainingCheckpoint:
    """Read a file written by :func:`save_training_state`; :class:`CheckpointError` naming what
    is wrong with it otherwise."""
    where = os.fspath(path)
    with open_archive(where) as archive:
        entries = _entries(where, archive)
        header = read_json_header(where, archive, entries, FORMAT, "purenn training state")
        if header.get("version") != VERSION:
            raise _fail(where, f"unsupported training state version {header.get('version')!r:.40}; "
                               f"this purenn reads version {VERSION}")
        missing = {"model", "trees", "training", "metadata"} - header.keys()
        if missing or not isinstance(header["trees"], dict) or not isinstance(header["metadata"], dict):
            raise _fail(where, f"header lacks or garbles {sorted(missing) or ['trees', 'metadata']}")
        layouts: dict[str, Any] = {}
        try:
            model = from_data(header["model"], custom=custom)
            for name in _TREES:
                structure = header["trees"].get(name)
                leaves = _numbered_entries(where, entries, name)
                layouts[name] = None if structure is None else tree_from_data(structure, leaves, name)
        except SerializeError as e:
            raise _fail(where, e.message, hint=e.hint) from None
        if entries:
            raise _fail(where, f"unexpected entries {sorted(entries)[:10]}")
        if not all(callable(getattr(model, m, None)) for m in ("init", "forward", "backward")):
            raise _fail(where, f"the header's model is not a layer: {model!r:.80}")
        if layouts["params"] is None:
            raise _fail(where, "it holds no params")
        for name, what in (("params", "params"), ("best_params", "params"),
                           ("model_state", "state"), ("best_model_state", "state")):
            if layouts[name] is not None:
                _check_params(where, model, layouts[name], what=what)
        trees = {name: None if layout is None else _decode_states(
                     tree_map(lambda e: readonly(_read_array(where, archive, e)), layout))
                 for name, layout in layouts.items()}
    try:
        fields: dict[str, Any] = {**trees, **_training_from_data(header["training"])}
        state = TrainingState(**fields)
    except (KeyError, TypeError, ValueError, ArgumentError) + _READ_ERRORS as e:
        raise _fail(where, f"its training record is damaged ({type(e).__name__}: {e})") from None
    return TrainingCheckpoint(model, state, header["metadata"])


def _training_data(state: TrainingState) -> dict[str, Any]:
    def plain(record: Any) -> Any:
        return None if record is None else attrs.asdict(record)

    return {
        "epoch": state.epoch, "step": state.step, "epoch_loss": state.epoch_loss,
        "last_loss": state.last_loss, "shuffle_rng": state.shuffle_rng, "layer_rng": state.layer_rng,
        "history": [attrs.asdict(log) for log in state.history], "settings": dict(state.settings),
        "early_stopping": plain(state.early_stopping), "plateau": plain(state.plateau),
    }


def _training_from_data(data: Any) -> dict[str, Any]:
    """The training record's fields, each checked for its type and range (a damaged or edited
    file is refused here, not in the middle of a resumed run)."""
    if not isinstance(data, dict) or set(_TRAINING_KEYS) - data.keys():
        raise ValueError(f"the training record needs {list(_TRAINING_KEYS)}")
    out = {k: data[k] for k in _TRAINING_KEYS}
    for name in ("epoch", "step"):
        if not (type(out[name]) is int and out[name] >= 0):
            raise ValueError(f"{name} must be a non-negative int, got {out[name]!r:.40}")
    if not _is_float(out["epoch_loss"]) or not (out["last_loss"] is None or _is_float(out["last_loss"])):
        raise ValueError("epoch_loss and last_loss must be numbers")
    for name in ("settings", "shuffle_rng", "layer_rng"):
        if not isinstance(out[name], dict):
            raise ValueError(f"{name} must be an object, got {type(out[name]).__name__}")
    for name in ("shuffle_rng", "layer_rng"):
        generator_from_state(out[name])  # refused now if it cannot be rebuilt
    if not isinstance(out["history"], list) or not all(isinstance(h, dict) for h in out["history"]):
        raise ValueError("history must be a list of objects")
    out["history"] = tuple(EpochLog(**log) for log in out["history"])
    if out["early_stopping"] is not None:
        out["early_stopping"] = EarlyStoppingState(**out["early_stopping"])
        _check_rule(out["early_stopping"], floats=("best",), counts=("wait",), optional=("best_epoch",))
        if not isinstance(out["early_stopping"].stopped, bool):
            raise ValueError("early_stopping.stopped must be true or false")
    if out["plateau"] is not None:
        out["plateau"] = PlateauState(**out["plateau"])
        _check_rule(out["plateau"], floats=("best",), counts=("wait", "cooldown"), optional=())
        if not (_is_float(out["plateau"].scale) and out["plateau"].scale > 0):
            raise ValueError("plateau.scale must be a positive number")
    return out


def _check_rule(state: Any, *, floats: tuple[str, ...], counts: tuple[str, ...],
                optional: tuple[str, ...]) -> None:
    """A rule's state: ``floats`` numbers or null, ``counts`` non-negative ints, ``optional``
    non-negative ints or null."""
    for name in floats:
        value = getattr(state, name)
        if not (value is None or _is_float(value)):
            raise ValueError(f"{type(state).__name__}.{name} must be a number or null, got {value!r:.40}")
    for name in counts + optional:
        value = getattr(state, name)
        if value is None and name in optional:
            continue
        if not (type(value) is int and value >= 0):
            raise ValueError(f"{type(state).__name__}.{name} must be a non-negative int, got {value!r:.40}")


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _encode_states(tree: Any) -> Any:
    """Optimizer ``State`` records as plain dicts (see the module's docstring)."""
    if isinstance(tree, State):
        return {"$step": np.asarray(tree.step, dtype=np.int64), "$slots": _encode_states(tree.slots)}
    if isinstance(tree, dict):
        return {k: _encode_states(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_encode_states(v) for v in tree)
    return tree


def _decode_states(tree: Any) -> Any:
    if isinstance(tree, dict):
        if tree.keys() == {"$step", "$slots"}:
            return State(int(tree["$step"]), _decode_states(tree["$slots"]))
        return {k: _decode_states(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_decode_states(v) for v in tree)
    return tree
