"""Checkpoints: a model and its params in one ``.npz`` file, loaded without ever unpickling.

File layout (a plain NumPy ``.npz``, i.e. a zip of ``.npy`` arrays)::

    "purenn"    0-d str array: JSON header
                {"format": "purenn.checkpoint", "version": 1,
                 "model": <purenn.io.serialize.to_data(model)>,
                 "params": <purenn.io.serialize.tree_to_data structure, leaves as indices>,
                 "metadata": {...}}                      (any JSON object, e.g. epoch, metrics)
    "param/0", "param/1", ...   one numeric array per params leaf, in tree_leaves order

Loading always uses ``np.load(..., allow_pickle=False)``, so an object array (pickled Python
objects) is refused, never executed. The params come back bit-identical with the same dtypes, as
read-only arrays, and are checked against the structure, dtypes and shapes that ``model.init``
gives. Saving runs the same check, so a file that would not load is never written.

The path is used exactly as given (``np.savez`` alone would append ``.npz`` to a name without
it). Writing is atomic: an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from typing import Any

import attrs
import numpy as np

from purenn.errors import CheckpointError
from purenn.io.atomic import atomic_writer
from purenn.io.serialize import Custom, SerializeError, from_data, to_data, tree_from_data, tree_to_data
from purenn.tree import readonly, tree_leaves, tree_map, tree_structure

__all__ = [
    "CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "read_checkpoint",
    "FORMAT", "VERSION",
]

FORMAT = "purenn.checkpoint"
VERSION = 1
_HEADER = "purenn"
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)



@attrs.frozen
class Checkpoint:
    """What a checkpoint file holds: the model, its params and a JSON ``metadata`` dict."""

    model: Any
    params: Any
    metadata: dict[str, Any] = attrs.field(factory=dict)


def save_checkpoint(path: str | os.PathLike[str], model: Any, params: Any, *,
                    metadata: dict[str, Any] | None = None, custom: Custom = None) -> None:
    """Write ``model`` and ``params`` (plus JSON ``metadata``) to ``path`` atomically.

    ``custom``: only for user classes registered under a name other than their class name
    (see :mod:`purenn.io.serialize`). Raises :class:`CheckpointError` if the model cannot be
    described as JSON, the params do not match the model, or metadata is not JSON.
    """
    where = os.fspath(path)
    try:
        model_data = to_data(model, custom=custom)
        structure, leaves = tree_to_data(params)
    except SerializeError as e:
        raise CheckpointError(f"cannot save checkpoint {where!r}: {e}") from None
    _check_params(where, model, params)
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(
            f"cannot save checkpoint {where!r}: `metadata` must be a dict, got {type(metadata).__name__}"
        )
    header = {"format": FORMAT, "version": VERSION, "model": model_data,
              "params": structure, "metadata": metadata or {}}
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save checkpoint {where!r}: metadata is not plain JSON ({e})") from None
    arrays: dict[str, Any] = {_HEADER: np.array(text)}
    arrays.update((f"param/{i}", a) for i, a in enumerate(leaves))
    with atomic_writer(path, "wb") as f:
        np.savez(f, **arrays)


def load_checkpoint(path: str | os.PathLike[str], *, custom: Custom = None) -> tuple[Any, Any]:
    """Read ``(model, params)`` from a file written by :func:`save_checkpoint`.

    ``custom``: your own layer classes used in the model (a list, or a ``{name: class}`` dict).
    """
    ckpt = read_checkpoint(path, custom=custom)
    return ckpt.model, ckpt.params


def read_checkpoint(path: str | os.PathLike[str], *, custom: Custom = None) -> Checkpoint:
    """Like :func:`load_checkpoint`, but return the whole :class:`Checkpoint`, metadata included."""
    where = os.fspath(path)
    header, arrays = _read_npz(where)

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {where!r}: {problem}")

    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise fail(f"the {_HEADER!r} entry is not a purenn checkpoint header")
    version = header.get("version")
    if version != VERSION:
        raise fail(
            f"unsupported format version {version!r}; this purenn reads version {VERSION} "
            "(a newer purenn may have written it)"
        )
    missing = {"model", "params", "metadata"} - header.keys()
    if missing:
        raise fail(f"header lacks {sorted(missing)}")
    if not isinstance(header["metadata"], dict):
        raise fail("header's metadata is not a JSON object")
    leaves = []
    for i in range(len(arrays)):
        a = arrays.get(f"param/{i}")
        if a is None:
            raise fail(f"expected arrays param/0 .. param/{len(arrays) - 1}, got {sorted(arrays)}")
        leaves.append(readonly(a))
    try:
        model = from_data(header["model"], custom=custom)
        params = tree_from_data(header["params"], leaves)
    except SerializeError as e:
        raise fail(str(e)) from None
    _check_params(where, model, params)
    return Checkpoint(model, params, header["metadata"])


def _read_npz(where: str) -> tuple[Any, dict[str, np.ndarray]]:
    """The decoded JSON header and the param arrays, or a CheckpointError saying what is wrong."""

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {where!r}: {problem}")

    try:
        with open(where, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file not found: {where!r}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint path {where!r} is a directory, not a file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {where!r}: {e}") from None
    if not data.startswith(b"PK"):
        raise fail("not an .npz file (not a zip archive); is it the right file, or truncated?")
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except _READ_ERRORS as e:
        raise fail(f"not a readable .npz file (corrupt or truncated: {e})") from None
    with npz:
        names = list(npz.files)
        if _HEADER not in names:
            raise fail(f"an .npz without a purenn header (entries {sorted(names)[:10]}); "
                       "it was not written by save_checkpoint")
        arrays = {}
        for name in names:
            try:
                arrays[name] = npz[name]
            except ValueError as e:
                if "allow_pickle" in str(e) or "Object arrays" in str(e):
                    raise fail(f"entry {name!r} is an object array (pickled Python objects); "
                               "purenn never loads those") from None
                raise fail(f"entry {name!r} cannot be read (corrupt or truncated: {e})") from None
            except _READ_ERRORS as e:
                raise fail(f"entry {name!r} cannot be read (corrupt or truncated: {e})") from None
    raw = arrays.pop(_HEADER)
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise fail(f"the {_HEADER!r} entry is not a JSON string (dtype {raw.dtype}, shape {raw.shape})")
    try:
        header = json.loads(str(raw[()]))
    except ValueError as e:
        raise fail(f"header is not valid JSON ({e})") from None
    for name, a in arrays.items():
        if a.dtype.kind not in "biufc":
            raise fail(f"entry {name!r} has dtype {a.dtype}; params must be numeric arrays")
    return header, arrays


def _check_params(where: str, model: Any, params: Any) -> None:
    """Params must have the structure, dtypes and shapes that ``model.init`` produces."""
    expected = model.init(np.random.default_rng(0))
    try:
        same = tree_structure(params) == tree_structure(expected)
    except ValueError:
        same = False
    if not same:
        raise CheckpointError(
            f"checkpoint {where!r}: params do not match the model: their structure "
            f"{_outline(params)} differs from {_outline(expected)} that model.init gives"
        )
    for i, (p, e) in enumerate(zip(tree_leaves(params), tree_leaves(expected))):
        p = np.asarray(p)
        if p.shape != e.shape or p.dtype != e.dtype:
            raise CheckpointError(
                f"checkpoint {where!r}: params do not match the model: leaf {i} has shape "
                f"{p.shape} and dtype {p.dtype}, but model.init gives shape {e.shape} and "
                f"dtype {e.dtype}"
            )


def _outline(tree: Any) -> str:
    text = repr(tree_map(lambda a: tuple(np.shape(a)), tree))
    return text if len(text) <= 200 else text[:197] + "..."
