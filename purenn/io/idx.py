"""Reading IDX files, the format MNIST and its drop-in relatives are distributed in.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type, ``DD`` the number
of dimensions), then one big-endian uint32 per dimension, then the elements in row-major (C)
order, big-endian. MNIST's image files are ``(N, 28, 28)`` uint8 (``TT = 0x08``, 16-byte header),
its label files ``(N,)`` uint8 (8-byte header). Files ending in ``.gz`` are gzip-compressed.

Every problem with a file (missing, empty, not gzip, truncated, too long, bad header) raises a
:class:`DataError` whose message names the file, says what is wrong and how to fix it. What a file
can make purenn allocate is bounded by :data:`MAX_IDX_BYTES`, before it is allocated: a larger
file is refused unread, and decompression stops one byte past it (a small gzip file can expand a
thousandfold). A directory, FIFO or device is refused without being read.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np

from purenn.errors import ArgumentError, DataError
from purenn.io.atomic import read_regular_file
from purenn.tree import readonly

__all__ = ["DataError", "read_idx", "IDX_DTYPES", "MAX_IDX_BYTES"]

#: Largest IDX file read, compressed or not, and the most its gzip stream may expand to: 1 GiB
#: (2**30 bytes). MNIST's largest file is 47,040,016 bytes uncompressed.
MAX_IDX_BYTES = 2**30

#: IDX type code -> element dtype (big-endian, as stored in the file).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_REDOWNLOAD = "delete it and download it again"



def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzip-compressed if its name ends in ``.gz``, raw otherwise).

    Returns a read-only array whose shape is the file's dimensions, e.g. ``(60000, 28, 28)``
    uint8 for MNIST's training images; multi-byte types come back in native byte order.
    Raises :class:`DataError` if the file is missing, empty, not gzip though named ``.gz``, or its
    header or length is wrong (truncated or over-long files are refused, never padded or cut).
    """
    path = Path(path)
    content = _read_bytes(path)
    if len(content) < 4:
        raise DataError(
            f"{path}: only {len(content)} bytes, too short for the 4-byte IDX magic number; "
            f"the file is truncated — {_REDOWNLOAD}"
        )
    if content[0] != 0 or content[1] != 0:
        hint = (" (it looks gzip-compressed: give it a .gz name)"
                if content[:2] == b"\x1f\x8b" else "")
        raise DataError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, "
            f"found {content[:4].hex(' ')}{hint}"
        )
    type_code, ndim = content[2], content[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX element type code 0x{type_code:02X} "
                        f"(known: {known}); the file is corrupt or not an IDX file")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header gives 0 dimensions; the file is corrupt — "
                        f"{_REDOWNLOAD}")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(
            f"{path}: the header announces {ndim} dimensions ({header} header bytes) but the "
            f"file has only {len(content)} bytes; the file is truncated — {_REDOWNLOAD}"
        )
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    found = len(content) - header
    if found != expected:
        what = ("the file is truncated — " + _REDOWNLOAD if found < expected else
                f"{found - expected} extra bytes at the end; the file is corrupt or two files "
                f"were joined — {_REDOWNLOAD}")
        raise DataError(
            f"{path}: expected {expected} bytes of data for shape {shape} ({dtype.name}) "
            f"after the {header}-byte header, found {found}; {what}"
        )
    try:  # an empty shape with huge other sizes passes the byte count but not NumPy's limits
        data = np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)
    except ValueError as e:
        raise DataError(f"{path}: the header's shape {shape} is not a possible array ({e}); "
                        f"the file is corrupt — {_REDOWNLOAD}") from None
    if dtype.byteorder == ">":
        data = data.astype(dtype.newbyteorder("="))
    return readonly(data)


def _read_bytes(path: Path) -> bytes:
    """The file's (decompressed) content, at most :data:`MAX_IDX_BYTES`; every failure becomes
    a DataError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_IDX_BYTES:
            raise DataError(f"{path}: {size} bytes, more than the {MAX_IDX_BYTES} purenn reads from an "
                            "IDX file (MAX_IDX_BYTES); it is not a data set's file")
        content = read_regular_file(path, limit=MAX_IDX_BYTES)  # refuses one grown meanwhile
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except ArgumentError as e:  # a folder, a FIFO, a device: never read
        raise DataError(e.message) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not content:
        raise DataError(f"{path}: the file is empty (0 bytes) — {_REDOWNLOAD}")
    if path.suffix != ".gz":
        return content
    try:
        content = _gunzip(content, path)
    except EOFError:
        raise DataError(f"{path}: the gzip stream ends early; the file is truncated — "
                        f"{_REDOWNLOAD}") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path}: not a valid gzip file ({e}); it is corrupt or not "
                        f"compressed (then drop the .gz from its name) — {_REDOWNLOAD}") from None
    if not content:
        raise DataError(f"{path}: decompresses to 0 bytes — {_REDOWNLOAD}")
    return content


def _gunzip(data: bytes, path: Path) -> bytes:
    """``data`` decompressed a MiB at a time (``read(n)`` would set ``n`` bytes aside first),
    refused once past :data:`MAX_IDX_BYTES`."""
    chunks, size = [], 0
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        while chunk := f.read(min(1 << 20, MAX_IDX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_IDX_BYTES:
                raise DataError(f"{path}: decompresses to more than the {MAX_IDX_BYTES} bytes purenn "
                                f"reads from an IDX file (MAX_IDX_BYTES); it is not a data set's file")
    return b"".join(chunks)
