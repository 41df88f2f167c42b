"""Checkpoints: a model and its params in one ``.npz`` file, loaded without ever unpickling.

File layout (a plain NumPy ``.npz``, i.e. a zip of ``.npy`` arrays)::

    "purenn"    0-d str array: JSON header
                {"format": "purenn.checkpoint", "version": 1,
                 "model": <purenn.io.serialize.to_data(model)>,
                 "params": <purenn.io.serialize.tree_to_data structure, leaves as indices>,
                 "metadata": {...}}                      (any JSON object, e.g. epoch, metrics)
    "param/0", "param/1", ...   one numeric array per params leaf, in tree_leaves order
    "state/0", "state/1", ...   version 2 only: one per leaf of the layers' state

Version 2 adds ``"state"`` to the header (the structure of the model's state, e.g. BatchNorm's
running statistics, leaves as indices into the ``state/i`` entries). A model without state is
written as version 1, byte for byte as before; both versions are read.

The file is one of purenn's archives (:mod:`purenn.io.npz`: never unpickled, nothing allocated
before every entry's header is checked, within bounds on what a file can make purenn allocate).
The header is decoded with its nesting and size bounded (see
:data:`purenn.io.serialize.MAX_DEPTH` and :data:`~purenn.io.serialize.MAX_RECORDS`), and the
structure, shapes and dtypes must be the ones the model declares (``model.param_shapes()``, which
allocates nothing; for a layer without it, ``init``'s) before the arrays are read. The params come
back bit-identical with the same dtypes, as read-only arrays. Saving runs the same checks, so a
file that would not load is never written.

Every problem with a file raises :class:`CheckpointError` naming it (the ``OSError`` of a failing
disk while saving excepted), so ``except CheckpointError`` covers damaged and hostile files alike.

The path is used exactly as given (``np.savez`` alone would append ``.npz`` to a name without
it). Writing is atomic: an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import attrs
import numpy as np

from purenn.errors import CheckpointError
from purenn.io.npz import (
    HEADER, Entry, archive_error, numbered_entries, open_archive, read_array, read_entries,
    read_json_header, write_archive,
)
from purenn.io.serialize import Custom, SerializeError, from_data, to_data, tree_from_data, tree_to_data
from purenn.layers.base import init_state, is_layer, param_shapes, state_problem, state_shapes
from purenn.tree import layout_difference, readonly, tree_leaves, tree_map, tree_paths

__all__ = [
    "CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "read_checkpoint",
    "check_layout", "FORMAT", "VERSION", "VERSIONS",
]

FORMAT = "purenn.checkpoint"
VERSION = 2  # the newest version written (for a model with state); VERSIONS are read
VERSIONS = (1, 2)


@attrs.frozen
class Checkpoint:
    """What a checkpoint file holds: the model, its params, a JSON ``metadata`` dict and the
    model's state (``model.init_state()``'s structure: ``{}`` entries for a model without state)."""

    model: Any
    params: Any
    metadata: dict[str, Any] = attrs.field(factory=dict)
    state: Any = None


def save_checkpoint(path: str | os.PathLike[str], model: Any, params: Any, *,
                    state: Any = None, metadata: dict[str, Any] | None = None,
                    custom: Custom = None) -> None:
    """Write ``model`` and ``params`` (plus its ``state`` and JSON ``metadata``) to ``path`` atomically.

    ``state``: required for a model with stateful layers (BatchNorm's running statistics are what
    its predictions use); checked against ``model.state_shapes()`` like the params.

    ``custom``: only for user classes registered under a name other than their class name
    (see :mod:`purenn.io.serialize`). Raises :class:`CheckpointError` if the model cannot be
    described as JSON, the params do not match the model, metadata is not JSON, or ``path`` cannot
    be written (see :func:`purenn.io.atomic.check_writable`); an ``OSError`` naming ``path`` if
    the system fails to write it (a full disk, say).
    """
    where = os.fspath(path)
    if getattr(model, "stateful", False) and state is None:
        raise CheckpointError(
            f"cannot save checkpoint {where!r}: the model has layers with state (such as "
            "BatchNorm's running statistics) and no state was given; pass state=... (the state "
            "fit returned)")
    try:
        model_data = to_data(model, custom=custom)
        structure, leaves = tree_to_data(params)
        state_structure, state_leaves = tree_to_data(state if state is not None else {})
    except SerializeError as e:
        raise CheckpointError(f"cannot save checkpoint {where!r}: {e.message}", hint=e.hint) from None
    check_layout(where, model, params)
    if state is not None:
        check_layout(where, model, state, what="state")
    _check_values(where, model, tree_map(np.asarray, params),
                  tree_map(np.asarray, state if state is not None else init_state(model)))
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(
            f"cannot save checkpoint {where!r}: `metadata` must be a dict, got {type(metadata).__name__}"
        )
    header = {"format": FORMAT, "version": 1, "model": model_data,
              "params": structure, "metadata": metadata or {}}
    if state_leaves:
        header.update(version=2, state=state_structure)
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save checkpoint {where!r}: metadata is not plain JSON ({e})") from None
    arrays: dict[str, Any] = {HEADER: np.array(text)}
    arrays.update((f"param/{i}", a) for i, a in enumerate(leaves))
    arrays.update((f"state/{i}", a) for i, a in enumerate(state_leaves))
    write_archive(path, arrays, "checkpoint")


def load_checkpoint(path: str | os.PathLike[str], *, custom: Custom = None) -> tuple[Any, Any]:
    """Read ``(model, params)`` from a file written by :func:`save_checkpoint`.

    ``custom``: your own layer classes used in the model (a list, or a ``{name: class}`` dict).
    A model with state (BatchNorm) needs its state too: use :func:`read_checkpoint`, whose
    result has ``.state``; this function refuses such a file rather than drop the state.
    """
    ckpt = read_checkpoint(path, custom=custom)
    if getattr(ckpt.model, "stateful", False):
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r} holds a model with state (such as BatchNorm's running "
            "statistics), which (model, params) would lose; use ckpt = read_checkpoint(path) and "
            "ckpt.model, ckpt.params, ckpt.state")
    return ckpt.model, ckpt.params


def read_checkpoint(path: str | os.PathLike[str], *, custom: Custom = None) -> Checkpoint:
    """Like :func:`load_checkpoint`, but return the whole :class:`Checkpoint`, metadata included."""
    where = os.fspath(path)
    with open_archive(where) as archive:
        entries = read_entries(where, archive)
        header = _read_header(where, archive, entries)
        model, layouts = model_and_layouts(where, header, entries, {
            "params": ("param", header["params"]), "state": ("state", header.get("state"))}, custom)
        layout, state_layout = layouts["params"], layouts["state"]
        # before any array is read: nothing allocated yet
        check_layout(where, model, layout)
        if "state" not in header:
            if getattr(model, "stateful", False):
                raise archive_error(where, "its model has layers with state (BatchNorm) but the file "
                                           "holds no state; it was not written by save_checkpoint")
            state_layout = init_state(model)
        check_layout(where, model, state_layout, what="state")
        params = tree_map(lambda entry: readonly(read_array(where, archive, entry)), layout)
        state = tree_map(lambda entry: readonly(read_array(where, archive, entry)), state_layout)
    _check_values(where, model, params, state)
    return Checkpoint(model, params, header["metadata"], state)


def model_and_layouts(where: str, header: dict[str, Any], entries: dict[str, Entry],
                      trees: dict[str, tuple[str, Any]], custom: Custom) -> tuple[Any, dict[str, Any]]:
    """The header's model, which must be a layer, and each tree's layout: ``trees`` maps a tree's
    name to the prefix of its entries and its structure in the header (None for a tree the file
    does not hold), and each layout is that structure with the entries in place of its arrays.
    Every entry of the file must be used, and nothing but the header has been read: a
    :class:`CheckpointError` about the file ``where`` otherwise (both archive formats read
    through this)."""
    layouts: dict[str, Any] = {}
    try:
        model = from_data(header["model"], custom=custom)
        for name, (prefix, structure) in trees.items():
            leaves = numbered_entries(where, entries, prefix)
            layouts[name] = None if structure is None else tree_from_data(structure, leaves, name)
    except SerializeError as e:
        raise archive_error(where, e.message, hint=e.hint) from None
    if entries:
        raise archive_error(where, f"unexpected entries {sorted(entries)[:10]}")
    if not is_layer(model):
        raise archive_error(where, f"the header's model is not a layer: {model!r:.80}")
    return model, layouts


def _check_values(where: str, model: Any, params: Any, state: Any) -> None:
    """Values a trained model can have: finite params, and a state its layers accept (a running
    variance is never negative); anything else would make every prediction NaN or wrong."""
    for path, a in zip(tree_paths(params), tree_leaves(params)):
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise archive_error(where, f"params{path} holds NaN or infinite values; a trained model "
                                       "has none (the run diverged, or the file is damaged)")
    problem = state_problem(model, state)
    if problem is not None:
        raise archive_error(where, f"its state cannot be a trained model's: {problem}")


def _read_header(where: str, archive: zipfile.ZipFile, entries: dict[str, Entry]) -> dict[str, Any]:
    """The JSON header, checked to be a purenn checkpoint header of a version this purenn reads."""
    header = read_json_header(where, archive, entries, FORMAT, "purenn checkpoint")
    version = header.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise archive_error(where, f"unsupported format version {version!r:.40}; this purenn reads "
                                   f"versions {', '.join(map(str, VERSIONS))} (a newer purenn may have "
                                   "written it)")
    if (version == 2) != ("state" in header):
        raise archive_error(where, f"a version {version} header "
                                   f"{'without' if version == 2 else 'with'} a 'state' entry (corrupt?)")
    missing = {"model", "params", "metadata"} - header.keys()
    if missing:
        raise archive_error(where, f"header lacks {sorted(missing)}")
    if not isinstance(header["metadata"], dict):
        raise archive_error(where, "header's metadata is not a JSON object")
    return header


# --- params against the model -----------------------------------------------------------------


def check_layout(where: str, model: Any, tree: Any, what: str = "params") -> None:
    """A :class:`CheckpointError` about the file ``where`` unless ``tree``, the params (``what``
    ``"params"``) or the state (``"state"``) as arrays or as a file's entries (things with a shape
    and a dtype), has the structure, shapes and dtypes the model declares (``param_shapes()``,
    ``state_shapes()``, which allocate nothing)."""
    declared = param_shapes(model) if what == "params" else state_shapes(model)
    problem = layout_difference(declared, tree, what)
    if problem is not None:
        raise CheckpointError(f"checkpoint {where!r}: {what} do not match the model: {problem}")
