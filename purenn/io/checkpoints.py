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

Loading never unpickles: each entry's ``.npy`` header is read first and an object array (pickled
Python objects) is refused, never executed. Nothing is allocated before the file is known to be
consistent: the header is decoded (nesting and size bounded, see :data:`purenn.io.serialize.MAX_DEPTH`
and :data:`~purenn.io.serialize.MAX_RECORDS`), each entry's declared shape and dtype must fit the
bytes the archive holds, and the structure, shapes and dtypes must be the ones the model declares
(``model.param_shapes()``, which allocates nothing; for a layer without it, ``init``'s). Only then
are the arrays read, each straight into its own memory.

What a file can make purenn allocate is bounded before anything is allocated, by the limits below
(each refused with a :class:`CheckpointError` naming the size and the limit): the file's size
(:data:`MAX_FILE_BYTES`, read whole), each entry's ``.npy`` header (:data:`MAX_NPY_HEADER_BYTES`), the
JSON header (:data:`MAX_HEADER_BYTES`) and what compressed entries expand to
(:data:`MAX_INFLATED_BYTES`; stored entries are bounded by the file's size). Saving refuses a file
that would break them, so a file that would not load is never written.
The params come back bit-identical with the same dtypes, as read-only arrays. Saving runs the same
check, so a file that would not load is never written.

Every problem with a file raises :class:`CheckpointError` naming it (the ``OSError`` of a failing
disk while saving excepted), so ``except CheckpointError`` covers damaged and hostile files alike.

The path is used exactly as given (``np.savez`` alone would append ``.npz`` to a name without
it). Writing is atomic: an interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from typing import IO, Any

import attrs
import numpy as np
from numpy.lib import format as npy_format

from purenn.errors import ArgumentError, CheckpointError
from purenn.io.atomic import atomic_writer, read_regular_file
from purenn.io.serialize import Custom, SerializeError, from_data, to_data, tree_from_data, tree_to_data
from purenn.layers.base import init_state, param_shapes, state_problem, state_shapes
from purenn.tree import layout_difference, readonly, tree_leaves, tree_map, tree_paths

__all__ = [
    "CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "read_checkpoint",
    "FORMAT", "VERSION", "VERSIONS", "MAX_FILE_BYTES", "MAX_HEADER_BYTES", "MAX_INFLATED_BYTES",
    "MAX_NPY_HEADER_BYTES",
]

FORMAT = "purenn.checkpoint"
VERSION = 2  # the newest version written (for a model with state); VERSIONS are read
VERSIONS = (1, 2)
_HEADER = "purenn"
# what reading a damaged zip or .npy header can raise (RuntimeError: an encrypted entry)
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
                OverflowError, struct.error, zipfile.BadZipFile, zlib.error)

#: Largest checkpoint or training-state file read: 1 GiB (2**30 bytes). A file is read whole into
#: memory, so a larger one (or a sparse file claiming that size) is refused before a byte is read.
MAX_FILE_BYTES = 2**30
#: Largest JSON header (the ``"purenn"`` entry's data): 16 MiB (2**24 bytes), i.e. 4,194,304
#: characters, which NumPy stores in 4 bytes each. A preset's model takes about 2,000 characters
#: and a training state's history about 150 an epoch (so some 25,000 epochs fit). Checked on the
#: entry's ``.npy`` header, before its data is read.
MAX_HEADER_BYTES = 2**24
#: Most bytes the compressed (deflated: ``np.savez_compressed``) entries of a file may expand to,
#: all together: 64 MiB (2**26). Deflate shrinks data up to about 1032-fold, so a 1 MB file could
#: otherwise ask for a gigabyte; purenn itself writes stored entries, which the file's size bounds.
#: Checked on the entries' ``.npy`` headers, before any data is read.
MAX_INFLATED_BYTES = 2**26
#: Longest ``.npy`` header of an entry (the text giving its dtype, order and shape): 10,000 bytes,
#: NumPy's own ``max_header_size``. NumPy reads a header of whatever length it declares before
#: checking that, so purenn checks the declared length first.
MAX_NPY_HEADER_BYTES = 10_000


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
    _check_params(where, model, params)
    if state is not None:
        _check_params(where, model, state, what="state")
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
    arrays: dict[str, Any] = {_HEADER: np.array(text)}
    arrays.update((f"param/{i}", a) for i, a in enumerate(leaves))
    arrays.update((f"state/{i}", a) for i, a in enumerate(state_leaves))
    write_archive(path, arrays, "checkpoint")


def write_archive(path: str | os.PathLike[str], arrays: dict[str, Any], what: str) -> None:
    """Write ``arrays`` (the JSON header under ``"purenn"`` among them) to ``path`` atomically as
    a plain ``.npz``, refusing what reading would refuse: a header over :data:`MAX_HEADER_BYTES`,
    a file over :data:`MAX_FILE_BYTES` (then nothing is left at ``path``). ``what`` names the kind
    of file in messages ("checkpoint", "training state")."""
    where = os.fspath(path)
    header_bytes = arrays[_HEADER].nbytes
    if header_bytes > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"cannot save {what} {where!r}: its JSON header would be {header_bytes} bytes, more "
            f"than the {MAX_HEADER_BYTES} purenn reads (MAX_HEADER_BYTES); is the metadata (or "
            "the history) far larger than intended?")
    size = sum(np.asarray(a).nbytes for a in arrays.values())  # the file holds at least these
    try:
        with atomic_writer(path, "wb") as f:
            if size <= MAX_FILE_BYTES:
                np.savez(f, **arrays)
                size = f.tell()
            if size > MAX_FILE_BYTES:
                raise CheckpointError(
                    f"cannot save {what} {where!r}: the file would be {size} bytes or more, more "
                    f"than the {MAX_FILE_BYTES} purenn reads (MAX_FILE_BYTES)")
    except ArgumentError as e:  # a path that cannot be written: a folder, a device, ...
        raise CheckpointError(e.message, hint=e.hint) from None


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
        entries = _entries(where, archive)
        header = _read_header(where, archive, entries)
        leaves = _numbered_entries(where, entries, "param")
        state_leaves = _numbered_entries(where, entries, "state")
        if entries:
            raise _fail(where, f"unexpected entries {sorted(entries)[:10]}")
        try:
            model = from_data(header["model"], custom=custom)
            layout = tree_from_data(header["params"], leaves)
            state_layout = (tree_from_data(header["state"], state_leaves, "state")
                            if "state" in header else None)
        except SerializeError as e:
            raise _fail(where, e.message, hint=e.hint) from None
        if not all(callable(getattr(model, m, None)) for m in ("init", "forward", "backward")):
            raise _fail(where, f"the header's model is not a layer: {model!r:.80}")
        # before any array is read: nothing allocated yet
        _check_params(where, model, layout)
        if "state" not in header:
            if getattr(model, "stateful", False):
                raise _fail(where, "its model has layers with state (BatchNorm) but the file holds "
                                   "no state; it was not written by save_checkpoint")
            state_layout = init_state(model)
        _check_params(where, model, state_layout, what="state")
        params = tree_map(lambda entry: readonly(_read_array(where, archive, entry)), layout)
        state = tree_map(lambda entry: readonly(_read_array(where, archive, entry)), state_layout)
    _check_values(where, model, params, state)
    return Checkpoint(model, params, header["metadata"], state)


def _check_values(where: str, model: Any, params: Any, state: Any) -> None:
    """Values a trained model can have: finite params, and a state its layers accept (a running
    variance is never negative); anything else would make every prediction NaN or wrong."""
    for path, a in zip(tree_paths(params), tree_leaves(params)):
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise _fail(where, f"params{path} holds NaN or infinite values; a trained model has none "
                               "(the run diverged, or the file is damaged)")
    problem = state_problem(model, state)
    if problem is not None:
        raise _fail(where, f"its state cannot be a trained model's: {problem}")



def _fail(where: str, problem: str, *, hint: str | None = None) -> CheckpointError:
    return CheckpointError(f"checkpoint {where!r}: {problem}", hint=hint)


# --- the archive and its entries, read only as far as needed ----------------------------------


@attrs.frozen
class _Entry:
    """One ``.npy`` member of the archive, known from its header alone (no data read yet)."""

    name: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def open_archive(where: str) -> zipfile.ZipFile:
    """The archive at ``where``, read whole (at most :data:`MAX_FILE_BYTES`), its members' sizes
    checked to be ones np.savez can write."""
    try:
        data = read_regular_file(where, limit=MAX_FILE_BYTES)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file not found: {where!r}") from None
    except ArgumentError as e:  # a directory, a FIFO, a device, a file too large: never read
        raise CheckpointError(f"checkpoint {e.message}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {where!r}: {e.strerror or e}") from None
    if not data.startswith(b"PK"):
        raise _fail(where, "not an .npz file (not a zip archive); is it the right file, or truncated?")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _READ_ERRORS as e:
        raise _fail(where, f"not a readable .npz file (corrupt or truncated: {e})") from None
    for info in archive.infolist():
        if not _plausible(info, len(data)):
            archive.close()
            raise _fail(where, f"entry {info.filename!r:.80} is damaged or packed in a way "
                               "np.savez never writes (corrupt or truncated?)")
    return archive


def _plausible(info: zipfile.ZipInfo, archive_size: int) -> bool:
    """Whether a member's sizes can be true: packed as np.savez (stored) or np.savez_compressed
    (deflated, which shrinks data at most about 1032-fold) do, within the archive's size. This
    bounds what reading it can allocate by what the file holds."""
    if info.compress_size > archive_size:
        return False
    if info.compress_type == zipfile.ZIP_STORED:
        return info.file_size == info.compress_size
    return info.compress_type == zipfile.ZIP_DEFLATED and info.file_size <= 1100 * info.compress_size + 1024


def _entries(where: str, archive: zipfile.ZipFile) -> dict[str, _Entry]:
    """Every member's name (without ``.npy``), shape and dtype, from the ``.npy`` headers only."""
    names = [info.filename.removesuffix(".npy") for info in archive.infolist()]
    if _HEADER not in names:
        raise _fail(where, f"an .npz without a purenn header (entries {sorted(names)[:10]}); "
                           "it was not written by save_checkpoint")
    entries = {entry.name: entry for entry in (_entry(where, archive, i) for i in archive.infolist())}
    inflated = sum(e.nbytes for e in entries.values() if e.info.compress_type == zipfile.ZIP_DEFLATED)
    if inflated > MAX_INFLATED_BYTES:
        raise _fail(where, f"its compressed entries would expand to {inflated} bytes, more than the "
                           f"{MAX_INFLATED_BYTES} purenn inflates (MAX_INFLATED_BYTES); a file "
                           "purenn wrote is not compressed (re-save it with np.savez)")
    return entries


def _entry(where: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Entry:
    name = info.filename.removesuffix(".npy")
    try:
        with archive.open(info) as f:
            shape, fortran, dtype = _npy_header(f)
            header_size = f.tell()
    except _READ_ERRORS as e:
        raise _fail(where, f"entry {name!r:.80} cannot be read (corrupt or truncated: {e})") from None
    if dtype.hasobject:
        raise _fail(where, f"entry {name!r:.80} is an object array (pickled Python objects); "
                           "purenn never loads those")
    entry = _Entry(name, info, shape, dtype, fortran)
    if header_size + entry.nbytes != info.file_size:
        raise _fail(where, f"entry {name!r:.80} declares shape {shape} of dtype {dtype} "
                           f"({entry.nbytes} bytes) but holds {info.file_size - header_size} bytes "
                           "of data (corrupt or truncated)")
    return entry


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an ``.npy`` header; ValueError if it is damaged."""
    version = npy_format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version} is not one np.savez writes for numbers")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = f.read(struct.calcsize(length_format))
    (length,) = struct.unpack(length_format, length_bytes)  # struct.error when truncated
    if length > MAX_NPY_HEADER_BYTES:
        raise ValueError(f"its .npy header declares {length} bytes, more than the "
                         f"{MAX_NPY_HEADER_BYTES} purenn reads (MAX_NPY_HEADER_BYTES)")
    read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:  # NumPy parses a copy of the (bounded) header; f is left at the data
        return read(io.BytesIO(length_bytes + f.read(length)))
    except _READ_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - NumPy's header parser on untrusted bytes (tokenize, ...)
        raise ValueError(f"damaged .npy header ({type(e).__name__}: {e})") from None


def read_json_header(where: str, archive: zipfile.ZipFile, entries: dict[str, _Entry],
                     fmt: str, label: str) -> dict[str, Any]:
    """The JSON header (taken out of ``entries``), checked to be a JSON object of format ``fmt``
    (a ``label`` for messages: "purenn checkpoint")."""
    entry = entries.pop(_HEADER)
    if entry.dtype.kind != "U" or entry.shape != ():
        raise _fail(where, f"the {_HEADER!r} entry is not a JSON string "
                           f"(dtype {entry.dtype}, shape {entry.shape})")
    if entry.nbytes > MAX_HEADER_BYTES:
        raise _fail(where, f"its {_HEADER!r} entry (the JSON header) is {entry.nbytes} bytes, more "
                           f"than the {MAX_HEADER_BYTES} purenn reads (MAX_HEADER_BYTES); it was "
                           "not written by purenn, or is damaged")
    try:
        header = json.loads(str(_read_array(where, archive, entry)[()]))
    except (ValueError, RecursionError) as e:
        raise _fail(where, f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        found = header.get("format") if isinstance(header, dict) else None
        readers = {"purenn.checkpoint": "read_checkpoint (purenn evaluate, purenn summary)",
                   "purenn.training": "load_training_state (purenn resume)"}
        other = f"; read it with {readers[found]}" if isinstance(found, str) and found in readers else ""
        raise _fail(where, f"the {_HEADER!r} entry is not a {label} header"
                           + (f" (it is a {found!r:.40} file{other})" if isinstance(found, str) else ""))
    return header


def _read_header(where: str, archive: zipfile.ZipFile, entries: dict[str, _Entry]) -> dict[str, Any]:
    """The JSON header, checked to be a purenn checkpoint header of a version this purenn reads."""
    header = read_json_header(where, archive, entries, FORMAT, "purenn checkpoint")
    version = header.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise _fail(where, f"unsupported format version {version!r:.40}; this purenn reads versions "
                           f"{', '.join(map(str, VERSIONS))} (a newer purenn may have written it)")
    if (version == 2) != ("state" in header):
        raise _fail(where, f"a version {version} header {'without' if version == 2 else 'with'} "
                           "a 'state' entry (corrupt?)")
    missing = {"model", "params", "metadata"} - header.keys()
    if missing:
        raise _fail(where, f"header lacks {sorted(missing)}")
    if not isinstance(header["metadata"], dict):
        raise _fail(where, "header's metadata is not a JSON object")
    return header


def _numbered_entries(where: str, entries: dict[str, _Entry], kind: str) -> list[_Entry]:
    """Take the ``kind/0`` .. ``kind/N-1`` entries out of ``entries``, in order (numbered without
    gaps); each must hold numbers."""
    mine = {name for name in entries if name.startswith(f"{kind}/")}
    names = [f"{kind}/{i}" for i in range(len(mine))]
    if set(names) != mine:
        raise _fail(where, f"expected arrays {kind}/0 .. {kind}/{len(mine) - 1}, "
                           f"got {sorted(mine)[:10]}")
    taken = [entries.pop(name) for name in names]
    for entry in taken:
        if entry.dtype.kind not in "biufc":
            raise _fail(where, f"entry {entry.name!r} has dtype {entry.dtype}; params and state "
                               "must be numeric arrays")
    return taken


def _read_array(where: str, archive: zipfile.ZipFile, entry: _Entry) -> np.ndarray:
    """The entry's array, read straight into its own (read-only) memory."""
    try:
        flat = np.empty(math.prod(entry.shape), dtype=entry.dtype)
    except MemoryError:
        raise _fail(where, f"entry {entry.name!r} needs {entry.nbytes} bytes, more than can be "
                           "allocated here") from None
    try:
        with archive.open(entry.info) as f:
            _npy_header(f)
            got = _read_into(f, flat.view(np.uint8).data)
            extra = f.read(1)  # reaching the end checks the entry's CRC
    except _READ_ERRORS as e:
        raise _fail(where, f"entry {entry.name!r} cannot be read (corrupt or truncated: {e})") from None
    if got != entry.nbytes or extra:
        raise _fail(where, f"entry {entry.name!r} cannot be read (corrupt or truncated: "
                           f"{got} bytes of data where its header says {entry.nbytes})")
    if entry.fortran:
        return flat.reshape(entry.shape[::-1]).transpose()
    return flat.reshape(entry.shape)


def _read_into(f: IO[bytes], view: memoryview) -> int:
    """Fill ``view`` from ``f`` a MiB at a time (never holding a second copy of a large array);
    return how many bytes there were."""
    got = 0
    while got < len(view):
        chunk = f.read(min(1 << 20, len(view) - got))
        if not chunk:
            break
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return got


# --- params against the model -----------------------------------------------------------------


def _check_params(where: str, model: Any, params: Any, what: str = "params") -> None:
    """Params or state (arrays, or a file's entries: things with a shape and a dtype) must have
    the structure, shapes and dtypes the model declares (``param_shapes()``, ``state_shapes()``),
    which allocates nothing."""
    declared = param_shapes(model) if what == "params" else state_shapes(model)
    problem = layout_difference(declared, params, what)
    if problem is not None:
        raise CheckpointError(f"checkpoint {where!r}: {what} do not match the model: {problem}")
