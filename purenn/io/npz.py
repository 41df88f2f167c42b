"""The ``.npz`` archives purenn's checkpoints and training states are, read and written within bounds.

An archive is a plain NumPy ``.npz`` (a zip of ``.npy`` arrays) holding its JSON header, a 0-d str
array, under :data:`HEADER`, and numbered numeric arrays (``param/0``, ``param/1``, ...). The
formats built on it (:mod:`purenn.io.checkpoints`, :mod:`purenn.io.training_checkpoints`) say
what the header holds and which arrays there are; this module reads and writes the archive.

Reading never unpickles: each entry's ``.npy`` header is read first and an object array (pickled
Python objects) is refused, never executed. Nothing is allocated before the file is known to be
consistent: each entry's declared shape and dtype must fit the bytes the archive holds, and a
reader checks them against what it expects before any array is read (:func:`read_array`), each
straight into its own memory.

What a file can make purenn allocate is bounded by the limits below, each refused with a
:class:`~purenn.errors.CheckpointError` naming the size and the limit: the file's size
(:data:`MAX_FILE_BYTES`, read whole), each entry's ``.npy`` header (:data:`MAX_NPY_HEADER_BYTES`),
the JSON header (:data:`MAX_HEADER_BYTES`) and what compressed entries expand to
(:data:`MAX_INFLATED_BYTES`; stored entries are bounded by the file's size). Writing
(:func:`write_archive`) refuses an archive that would break them, so a file that would not load is
never written; it is atomic and uses the path exactly as given.
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

__all__ = [
    "HEADER", "READ_ERRORS", "READERS", "MAX_FILE_BYTES", "MAX_HEADER_BYTES", "MAX_INFLATED_BYTES",
    "MAX_NPY_HEADER_BYTES", "Entry", "archive_error", "write_archive", "open_archive",
    "read_entries", "read_json_header", "numbered_entries", "read_array",
]

#: The entry holding the JSON header.
HEADER = "purenn"
#: What reading a damaged zip or ``.npy`` header can raise (RuntimeError: an encrypted entry).
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
               OverflowError, struct.error, zipfile.BadZipFile, zlib.error)
#: The formats purenn writes as archives, and what reads each (named when the wrong one is read).
READERS = {"purenn.checkpoint": "read_checkpoint (purenn evaluate, purenn summary)",
           "purenn.training": "load_training_state (purenn resume)"}

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
class Entry:
    """One ``.npy`` member of the archive, known from its header alone (no data read yet): its
    ``name`` (without ``.npy``), zip member, ``shape``, ``dtype`` and whether it is in Fortran order."""

    name: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def archive_error(where: str, problem: str, *, hint: str | None = None) -> CheckpointError:
    """The error for a file that cannot be read: ``checkpoint '<where>': <problem>``."""
    return CheckpointError(f"checkpoint {where!r}: {problem}", hint=hint)


# --- writing ----------------------------------------------------------------------------------


def write_archive(path: str | os.PathLike[str], arrays: dict[str, Any], what: str) -> None:
    """Write ``arrays`` (the JSON header under :data:`HEADER` among them) to ``path`` atomically as
    a plain ``.npz``, refusing what reading would refuse: a header over :data:`MAX_HEADER_BYTES`,
    a file over :data:`MAX_FILE_BYTES` (then nothing is left at ``path``). ``what`` names the kind
    of file in messages ("checkpoint", "training state")."""
    where = os.fspath(path)
    header_bytes = arrays[HEADER].nbytes
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


# --- the archive and its entries, read only as far as needed ----------------------------------


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
        raise archive_error(where, "not an .npz file (not a zip archive); is it the right file, or "
                                   "truncated?")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except READ_ERRORS as e:
        raise archive_error(where, f"not a readable .npz file (corrupt or truncated: {e})") from None
    for info in archive.infolist():
        if not _plausible(info, len(data)):
            archive.close()
            raise archive_error(where, f"entry {info.filename!r:.80} is damaged or packed in a way "
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


def read_entries(where: str, archive: zipfile.ZipFile) -> dict[str, Entry]:
    """Every member's name (without ``.npy``), shape and dtype, from the ``.npy`` headers only;
    the archive must hold a :data:`HEADER`."""
    names = [info.filename.removesuffix(".npy") for info in archive.infolist()]
    if HEADER not in names:
        raise archive_error(where, f"an .npz without a purenn header (entries {sorted(names)[:10]}); "
                                   "it was not written by save_checkpoint")
    entries = {entry.name: entry for entry in (_entry(where, archive, i) for i in archive.infolist())}
    inflated = sum(e.nbytes for e in entries.values() if e.info.compress_type == zipfile.ZIP_DEFLATED)
    if inflated > MAX_INFLATED_BYTES:
        raise archive_error(where, f"its compressed entries would expand to {inflated} bytes, more "
                                   f"than the {MAX_INFLATED_BYTES} purenn inflates (MAX_INFLATED_BYTES); "
                                   "a file purenn wrote is not compressed (re-save it with np.savez)")
    return entries


def _entry(where: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Entry:
    name = info.filename.removesuffix(".npy")
    try:
        with archive.open(info) as f:
            shape, fortran, dtype = _npy_header(f)
            header_size = f.tell()
    except READ_ERRORS as e:
        raise archive_error(where, f"entry {name!r:.80} cannot be read (corrupt or truncated: {e})") from None
    if dtype.hasobject:
        raise archive_error(where, f"entry {name!r:.80} is an object array (pickled Python objects); "
                                   "purenn never loads those")
    entry = Entry(name, info, shape, dtype, fortran)
    if header_size + entry.nbytes != info.file_size:
        raise archive_error(where, f"entry {name!r:.80} declares shape {shape} of dtype {dtype} "
                                   f"({entry.nbytes} bytes) but holds {info.file_size - header_size} "
                                   "bytes of data (corrupt or truncated)")
    return entry


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an ``.npy`` header; a CheckpointError (a ValueError, one
    of :data:`READ_ERRORS`) saying what is wrong if it is damaged."""
    version = npy_format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
        raise CheckpointError(f".npy format version {version} is not one np.savez writes for numbers")
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = f.read(struct.calcsize(length_format))
    (length,) = struct.unpack(length_format, length_bytes)  # struct.error when truncated
    if length > MAX_NPY_HEADER_BYTES:
        raise CheckpointError(f"its .npy header declares {length} bytes, more than the "
                              f"{MAX_NPY_HEADER_BYTES} purenn reads (MAX_NPY_HEADER_BYTES)")
    read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:  # NumPy parses a copy of the (bounded) header; f is left at the data
        return read(io.BytesIO(length_bytes + f.read(length)))
    except READ_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - NumPy's header parser on untrusted bytes (tokenize, ...)
        raise CheckpointError(f"damaged .npy header ({type(e).__name__}: {e})") from None


def read_json_header(where: str, archive: zipfile.ZipFile, entries: dict[str, Entry],
                     fmt: str, label: str) -> dict[str, Any]:
    """The JSON header (taken out of ``entries``), checked to be a JSON object of format ``fmt``
    (a ``label`` for messages: "purenn checkpoint")."""
    entry = entries.pop(HEADER)
    if entry.dtype.kind != "U" or entry.shape != ():
        raise archive_error(where, f"the {HEADER!r} entry is not a JSON string "
                                   f"(dtype {entry.dtype}, shape {entry.shape})")
    if entry.nbytes > MAX_HEADER_BYTES:
        raise archive_error(where, f"its {HEADER!r} entry (the JSON header) is {entry.nbytes} bytes, "
                                   f"more than the {MAX_HEADER_BYTES} purenn reads (MAX_HEADER_BYTES); "
                                   "it was not written by purenn, or is damaged")
    try:
        header = json.loads(str(read_array(where, archive, entry)[()]))
    except (ValueError, RecursionError) as e:
        raise archive_error(where, f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        found = header.get("format") if isinstance(header, dict) else None
        other = f"; read it with {READERS[found]}" if isinstance(found, str) and found in READERS else ""
        raise archive_error(where, f"the {HEADER!r} entry is not a {label} header"
                            + (f" (it is a {found!r:.40} file{other})" if isinstance(found, str) else ""))
    return header


def numbered_entries(where: str, entries: dict[str, Entry], kind: str) -> list[Entry]:
    """Take the ``kind/0`` .. ``kind/N-1`` entries out of ``entries``, in order (numbered without
    gaps); each must hold numbers."""
    mine = {name for name in entries if name.startswith(f"{kind}/")}
    names = [f"{kind}/{i}" for i in range(len(mine))]
    if set(names) != mine:
        raise archive_error(where, f"expected arrays {kind}/0 .. {kind}/{len(mine) - 1}, "
                                   f"got {sorted(mine)[:10]}")
    taken = [entries.pop(name) for name in names]
    for entry in taken:
        if entry.dtype.kind not in "biufc":
            raise archive_error(where, f"entry {entry.name!r} has dtype {entry.dtype}; params and "
                                       "state must be numeric arrays")
    return taken


def read_array(where: str, archive: zipfile.ZipFile, entry: Entry) -> np.ndarray:
    """The entry's array, read straight into its own memory."""
    try:
        flat = np.empty(math.prod(entry.shape), dtype=entry.dtype)
    except MemoryError:
        raise archive_error(where, f"entry {entry.name!r} needs {entry.nbytes} bytes, more than can "
                                   "be allocated here") from None
    try:
        with archive.open(entry.info) as f:
            _npy_header(f)
            got = _read_into(f, flat.view(np.uint8).data)
            extra = f.read(1)  # reaching the end checks the entry's CRC
    except READ_ERRORS as e:
        raise archive_error(where, f"entry {entry.name!r} cannot be read (corrupt or truncated: "
                                   f"{e})") from None
    if got != entry.nbytes or extra:
        raise archive_error(where, f"entry {entry.name!r} cannot be read (corrupt or truncated: "
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
