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
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, CheckpointError, SerializeError
from purenn.io.checkpoints import check_layout, model_and_layouts
from purenn.io.npz import (
    HEADER, READ_ERRORS, archive_error, open_archive, read_array, read_entries,
    read_json_header, write_archive,
)
from purenn.io.serialize import Custom, to_data, tree_to_data
from purenn.io.training_record import VERSION, check_consistency, reason, training_data, training_from_data
from purenn.optim.base import State
from purenn.optim.transforms import ADAM_CHANGED
from purenn.training_state import TrainingState
from purenn.tree import readonly, tree_leaves, tree_map

__all__ = [
    "FORMAT", "VERSION", "TrainingCheckpoint", "content_digest", "load_training_state",
    "save_training_state",
]

FORMAT = "purenn.training"
# VERSION (3), the newest version, is the training record's (purenn.io.training_record)
_TREES = ("params", "model_state", "opt_state", "best_params", "best_model_state", "average",
          "best_average")
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
              "training": training_data(where, model, state), "metadata": metadata or {}}
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
        state = TrainingState(**trees, **training_from_data(header["training"], header["version"]))
        check_consistency(model, state)
    except (KeyError, TypeError, ValueError, ArgumentError) + READ_ERRORS as e:
        raise archive_error(where, f"its training record is damaged ({reason(e)})") from None
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
    model, layouts = model_and_layouts(where, header, entries,
                                       {name: (name, header["trees"].get(name)) for name in _TREES}, custom)
    unknown = sorted(header["trees"].keys() - set(_TREES))
    if unknown:
        raise archive_error(where, f"header's trees has unknown entries {unknown[:10]!r:.200}")
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
