"""Training checkpoints: a whole :class:`~purenn.training_state.TrainingState` in one ``.npz``.

The file is one of purenn's archives, as checkpoints are (:mod:`purenn.io.npz`: a plain ``.npz``,
never unpickled, written atomically, read only after every entry's header has been checked,
within bounds on what a file can make purenn allocate), with its own header::

    "purenn"   0-d str array: JSON
               {"format": "purenn.training", "version": 3,
                "model": <to_data(model)>,
                "trees": {"params": <structure>, "model_state": <structure or null>,
                          "opt_state": ..., "best_params": ..., "best_model_state": ...,
                          "average": ..., "best_average": ...},
                "training": {"epoch", "step", "epoch_loss", "last_loss", "shuffle_rng",
                             "layer_rng", "history", "settings", "early_stopping", "plateau",
                             "epoch_correct", "epoch_metrics"},
                "metadata": {...},
                "digest": "sha256:<64 hex digits>"}
    "<tree>/0", "<tree>/1", ...   the arrays of each tree, in tree_leaves order

An optimizer state's ``State(step, slots)`` records are stored as ``{"$step": 0-d int64 array,
"$slots": slots}`` and come back as ``State``. Floats (the epoch's loss so far, the history) go
through JSON's shortest repr, which reads back to the same bits; NaN and infinities too.

**Integrity.** ``digest`` is :func:`content_digest` of the rest: SHA-256 over the header as
canonical JSON and every array's name, dtype, shape and bytes. Loading recomputes it and refuses
a file whose contents differ ("edited or damaged"), so a changed generator state or loss is never
resumed from silently. It guards against accidents, not forgers (anyone can recompute it), so
every field is also checked for its type, range and consistency with the others, when loading
and, the same checks, when saving (a state that would not load is never written). A file written
before digests existed loads, with :attr:`TrainingCheckpoint.notice` saying it was not verified.

**Versions.** Version 2 (purenn 0.2.0) is version 1 with Adam's state in its new layout
(:data:`purenn.optim.transforms.ADAM_CHANGED`): a version-1 state of a run with Adam is refused
with that reason; other version-1 states load. Version 3 adds the weight average's state
(``average``, ``best_average``: a ``State`` whose ``average`` slot is shaped like the params, and
the averaged params of early stopping's best epoch) and the epoch's counts so far
(``epoch_correct``, ``epoch_metrics``); a version-1 or 2 state has none of them (the epoch in
progress then reports no training accuracy).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, CheckpointError, PurennError, SerializeError
from purenn.io.checkpoints import check_layout
from purenn.io.npz import (
    HEADER,
    READ_ERRORS,
    archive_error,
    numbered_entries,
    open_archive,
    read_array,
    read_entries,
    read_json_header,
    write_archive,
)
from purenn.io.serialize import Custom, from_data, to_data, tree_from_data, tree_to_data
from purenn.layers.base import is_layer
from purenn.monitors import EarlyStoppingState, PlateauState
from purenn.optim.base import State
from purenn.optim.transforms import ADAM_CHANGED
from purenn.rng import generator_from_state
from purenn.training import EpochLog
from purenn.training_state import TrainingState
from purenn.tree import readonly, tree_leaves, tree_map

__all__ = [
    "FORMAT",
    "VERSION",
    "TrainingCheckpoint",
    "content_digest",
    "load_training_state",
    "save_training_state",
]

FORMAT = "purenn.training"
VERSION = 3
_TREES = ("params", "model_state", "opt_state", "best_params", "best_model_state", "average",
          "best_average")
_TRAINING_KEYS = ("epoch", "step", "epoch_loss", "last_loss", "shuffle_rng", "layer_rng",
                  "history", "settings", "early_stopping", "plateau", "epoch_correct", "epoch_metrics")
_SINCE_3 = ("epoch_correct", "epoch_metrics")  # absent (None) in versions 1 and 2
_EPOCH_SINCE_3 = ("accuracy", "metrics", "average_digest")  # and in their history's entries
_HEADER_KEYS = {"format", "version", "model", "trees", "training", "metadata", "digest"}
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@attrs.frozen
class TrainingCheckpoint:
    """What a training checkpoint holds: the model, the training state and JSON metadata.

    ``notice``: None for a file whose integrity digest was verified; for a file written before
    purenn stored one, a sentence saying its contents could not be verified (for a person: the
    library never prints it)."""

    model: Any
    state: TrainingState
    metadata: dict[str, Any] = attrs.field(factory=dict)
    notice: str | None = None


def save_training_state(path: str | os.PathLike[str], model: Any, state: TrainingState, *,
                        metadata: dict[str, Any] | None = None, custom: Custom = None) -> None:
    """Write ``model`` and the training ``state`` (plus JSON ``metadata``: how to finish the run,
    say) to ``path`` atomically, with its integrity digest: an interrupted save leaves the previous
    file whole. A state that loading would refuse raises :class:`CheckpointError` instead."""
    where = os.fspath(path)
    if not isinstance(state, TrainingState):
        raise CheckpointError(f"cannot save training state {where!r}: expected a TrainingState, "
                              f"got {type(state).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"cannot save training state {where!r}: `metadata` must be a dict")
    check_layout(where, model, state.params)
    if state.model_state is not None:
        check_layout(where, model, state.model_state, what="state")
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
            arrays.update((f"{name}/{i}", np.asarray(a)) for i, a in enumerate(leaves))
    except SerializeError as e:
        raise CheckpointError(f"cannot save training state {where!r}: {e.message}", hint=e.hint) from None
    header = {"format": FORMAT, "version": VERSION, "model": model_data, "trees": trees,
              "training": _training_data(where, model, state), "metadata": metadata or {}}
    try:
        header["digest"] = content_digest(json.loads(json.dumps(header)), arrays)
        text = json.dumps(header)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save training state {where!r}: not plain JSON ({e})") from None
    write_archive(path, {HEADER: np.array(text), **arrays}, "training state")


def load_training_state(path: str | os.PathLike[str], *, custom: Custom = None) -> TrainingCheckpoint:
    """Read a file written by :func:`save_training_state`, its digest verified (see the module's
    docstring) and every field checked; :class:`CheckpointError` naming what is wrong otherwise."""
    where = os.fspath(path)
    with open_archive(where) as archive:
        entries = read_entries(where, archive)
        header = _read_header(where, archive, entries)
        model, layouts = _layouts(where, header, entries, custom)
        arrays = {e.name: readonly(read_array(where, archive, e))
                  for layout in layouts.values() if layout is not None for e in tree_leaves(layout)}
    notice = _verify(where, header, arrays)
    try:
        trees: dict[str, Any] = {
            name: None if layout is None else _decode_states(tree_map(lambda e: arrays[e.name], layout))
            for name, layout in layouts.items()}
        state = TrainingState(**trees, **_training_from_data(header["training"], header["version"]))
        _check_consistency(model, state)
    except (KeyError, TypeError, ValueError, ArgumentError) + READ_ERRORS as e:
        raise archive_error(where, f"its training record is damaged ({_reason(e)})") from None
    return TrainingCheckpoint(model, state, header["metadata"], notice)


def content_digest(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """``"sha256:<hex>"`` over ``header`` without its ``"digest"`` (as JSON with sorted keys and
    no spaces) and, in name order, each array's name, dtype, shape and bytes (C order)."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "digest"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
    return f"sha256:{h.hexdigest()}"


# --- reading ----------------------------------------------------------------------------------


# Adam, or a ScaleByAdam with its learning rate folded in, as purenn 0.1.0's reprs wrote them
_OLD_ADAM = re.compile(r"(?<![\w])Adam\(|ScaleByAdam\([^()]*lr=(?!None)")


def _lookup(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _read_header(where: str, archive: Any, entries: dict[str, Any]) -> dict[str, Any]:
    """The JSON header, checked to be a training state header of this version with every key."""
    header = read_json_header(where, archive, entries, FORMAT, "purenn training state")
    version = header.get("version")
    if version not in (1, 2, VERSION) or isinstance(version, bool):
        raise archive_error(where, f"unsupported training state version {version!r:.40}; this purenn reads "
                           f"versions 1 to {VERSION} (a newer purenn may have written it)")
    if version == 1 and _OLD_ADAM.search(str(_lookup(header, "training", "settings", "optimizer"))):
        since, what = ADAM_CHANGED
        raise archive_error(where, f"it was saved by a purenn before {since}, and purenn {since} changed "
                           f"Adam's arithmetic: {what}; continue the run with the purenn that saved "
                           "it, or start it again")
    missing = {"model", "trees", "training", "metadata"} - header.keys()
    if missing or not isinstance(header["trees"], dict) or not isinstance(header["metadata"], dict):
        raise archive_error(where, f"header lacks or garbles {sorted(missing) or ['trees', 'metadata']}")
    unknown = sorted(header.keys() - _HEADER_KEYS)
    if unknown:
        raise archive_error(where, f"header has unknown entries {unknown[:10]!r:.200} (edited or damaged?)")
    digest = header.get("digest")
    if digest is not None and not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
        raise archive_error(where, f"its digest {digest!r:.80} is not 'sha256:' and 64 hex digits "
                           "(the file was edited or damaged)")
    return header


def _layouts(where: str, header: dict[str, Any], entries: dict[str, Any],
             custom: Custom) -> tuple[Any, dict[str, Any]]:
    """The model and each tree's layout (entries in place of arrays), every entry used once and
    checked against the model's declared shapes before any array is read."""
    layouts: dict[str, Any] = {}
    try:
        model = from_data(header["model"], custom=custom)
        for name in _TREES:
            structure = header["trees"].get(name)
            leaves = numbered_entries(where, entries, name)
            layouts[name] = None if structure is None else tree_from_data(structure, leaves, name)
    except SerializeError as e:
        raise archive_error(where, e.message, hint=e.hint) from None
    if entries:
        raise archive_error(where, f"unexpected entries {sorted(entries)[:10]}")
    unknown = sorted(header["trees"].keys() - set(_TREES))
    if unknown:
        raise archive_error(where, f"header's trees has unknown entries {unknown[:10]!r:.200}")
    if not is_layer(model):
        raise archive_error(where, f"the header's model is not a layer: {model!r:.80}")
    if layouts["params"] is None:
        raise archive_error(where, "it holds no params")
    for name, what in (("params", "params"), ("best_params", "params"), ("best_average", "params"),
                       ("model_state", "state"), ("best_model_state", "state")):
        if layouts[name] is not None:
            check_layout(where, model, layouts[name], what=what)
    if layouts["average"] is not None:
        check_layout(where, model, _averaged_layout(where, layouts["average"]), what="params")
    return model, layouts


def _averaged_layout(where: str, average: Any) -> Any:
    """The params-shaped tree of a weight average's state (``State(step, {"average": tree})``,
    as stored: ``{"$step": ..., "$slots": {"average": tree}}``)."""
    slots = average.get("$slots") if isinstance(average, dict) and average.keys() == {"$step", "$slots"} else None
    if not (isinstance(slots, dict) and slots.keys() == {"average"}):
        raise archive_error(where, "its weight average is not a State(step, {'average': params})")
    return slots["average"]


def _verify(where: str, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
    """None when the header's digest matches the contents; the notice for a file without one."""
    digest = header.get("digest")
    if digest is None:
        return (f"{where} has no integrity digest (it was written by a purenn from before they "
                "existed), so edits or damage to it cannot be detected; it was loaded as it is, "
                "and the next save of the run adds one")
    if content_digest(header, arrays) != digest:
        raise archive_error(where, "its contents do not match its integrity digest: the file was edited or "
                           "damaged after purenn wrote it; resume from another copy, or start again")
    return None


# --- the training record ----------------------------------------------------------------------


def _training_data(where: str, model: Any, state: TrainingState) -> dict[str, Any]:
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
        _training_from_data(json.loads(json.dumps(data)))
        _check_consistency(model, state)
    except (TypeError, ValueError, ArgumentError, attrs.exceptions.NotAnAttrsClassError) as e:
        raise CheckpointError(f"cannot save training state {where!r}: its training record would "
                              f"not load ({_reason(e)})") from None
    return data


def _training_from_data(data: Any, version: int = VERSION) -> dict[str, Any]:
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


def _check_consistency(model: Any, state: TrainingState) -> None:
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


def _reason(e: Exception) -> str:
    """Why a field was refused: purenn's own message, or another error's type and message."""
    return str(e) if isinstance(e, PurennError) else f"{type(e).__name__}: {e}"


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- optimizer states -------------------------------------------------------------------------


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
            step = tree["$step"]
            if not (isinstance(step, np.ndarray) and step.shape == () and step.dtype.kind in "iu"
                    and step >= 0):
                raise CheckpointError(f"an optimizer state's $step must be a non-negative integer, got "
                                      f"{step!r:.40}")
            return State(int(step), _decode_states(tree["$slots"]))
        return {k: _decode_states(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_decode_states(v) for v in tree)
    return tree
