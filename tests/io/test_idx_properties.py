"""Hypothesis feeds ``read_idx`` garbage: random bytes, valid files cut short (gzip and raw), and
valid files with one header field (or one byte of the gzip stream) changed. Each must either load
correctly or raise purenn's ``DataError``, never anything else (no IndexError, struct.error,
MemoryError, zlib.error, ...).

"Loads correctly" is checked independently of the reader: the array it returns, written back
with this file's own IDX writer (``struct`` + ``tobytes``), must give exactly the bytes read.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenn.errors import DataError
from purenn.io.idx import read_idx

#: element dtype (big-endian, as stored) -> IDX type code, from the format's description
TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
              np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(a: np.ndarray) -> bytes:
    """An IDX file's (uncompressed) bytes for ``a``."""
    big = a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    return (bytes([0, 0, TYPE_CODES[big.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
            + np.ascontiguousarray(big).tobytes())


def read(content: bytes, gz: bool) -> np.ndarray:
    """``read_idx`` of a file holding exactly ``content`` (named ``.gz`` if ``gz``)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("x-idx.gz" if gz else "x-idx")
        path.write_bytes(content)
        return read_idx(path)


def loads_correctly_or_data_error(content: bytes, gz: bool) -> np.ndarray | None:
    """The array if ``content`` loads (after checking it is exactly what the file holds),
    None if it raised DataError; any other exception fails the test."""
    try:
        got = read(content, gz)
    except DataError:
        return None
    raw = gzip.decompress(content) if gz else content
    assert idx_bytes(got) == raw, "loaded an array that is not what the file holds"
    assert got.dtype.isnative and not got.flags.writeable
    return got


arrays = st.sampled_from(list(TYPE_CODES)).flatmap(lambda dt: hnp.arrays(
    dt.newbyteorder("="), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)))


@settings(max_examples=150, deadline=None)
@given(content=st.binary(max_size=300), gz=st.booleans())
def test_random_bytes_load_correctly_or_raise_data_error(content, gz):
    loads_correctly_or_data_error(content, gz)


@settings(max_examples=150, deadline=None)
@given(content=st.one_of(st.binary(max_size=40),
                         st.binary(max_size=40).map(lambda tail: b"\0\0\x08\x01" + tail)),
       gz=st.booleans())
def test_random_gzip_or_idx_looking_bytes_load_correctly_or_raise_data_error(content, gz):
    # gzip-compressed garbage gets past the gzip layer; IDX-looking garbage past the magic
    loads_correctly_or_data_error(gzip.compress(content, mtime=0) if gz else content, gz)


@settings(max_examples=150, deadline=None)
@given(a=arrays, gz=st.booleans(), data=st.data())
def test_truncated_valid_files_raise_data_error(a, gz, data):
    full = idx_bytes(a)
    stored = gzip.compress(full, mtime=0) if gz else full
    cut = data.draw(st.integers(0, len(stored) - 1), label="kept bytes")
    try:
        read(stored[:cut], gz)
    except DataError:
        pass
    else:
        raise AssertionError(f"a file cut to {cut} of {len(stored)} bytes was accepted")
    np.testing.assert_array_equal(read(stored, gz), a)   # the whole file loads


def header_fields(a: np.ndarray) -> list[tuple[int, int]]:
    """``(offset, size)`` of each header field: magic bytes 0 and 1, type code, number of
    dimensions (one byte each), then one 4-byte size per dimension."""
    return [(0, 1), (1, 1), (2, 1), (3, 1)] + [(4 + 4 * i, 4) for i in range(a.ndim)]


@st.composite
def one_field_changed(draw, a: np.ndarray) -> bytes:
    """``a``'s IDX bytes with one header field set to a different value."""
    content = bytearray(idx_bytes(a))
    offset, size = draw(st.sampled_from(header_fields(a)), label="field")
    old = int.from_bytes(content[offset:offset + size], "big")
    small = st.integers(0, 2 ** (8 * size) - 1)
    near = st.integers(max(old - 3, 0), min(old + 3, 2 ** (8 * size) - 1))
    new = draw(st.one_of(near, small, st.sampled_from(sorted(TYPE_CODES.values())))
               .filter(lambda v: v != old and v < 2 ** (8 * size)), label="new value")
    content[offset:offset + size] = new.to_bytes(size, "big")
    return bytes(content)


@settings(max_examples=200, deadline=None)
@given(a=arrays, gz=st.booleans(), data=st.data())
def test_one_header_field_changed_loads_correctly_or_raises_data_error(a, gz, data):
    content = data.draw(one_field_changed(a), label="changed file")
    loads_correctly_or_data_error(gzip.compress(content, mtime=0) if gz else content, gz)


@settings(max_examples=150, deadline=None)
@given(a=arrays, data=st.data())
def test_gzip_with_one_byte_changed_loads_correctly_or_raises_data_error(a, data):
    # a changed byte in the gzip header, the deflate stream (zlib errors) or the CRC/size trailer
    content = bytearray(gzip.compress(idx_bytes(a), mtime=0))
    at = data.draw(st.integers(0, len(content) - 1), label="changed byte")
    content[at] ^= data.draw(st.integers(1, 255), label="xor")
    loads_correctly_or_data_error(bytes(content), gz=True)


def test_a_zero_size_shape_with_huge_dimensions_is_a_data_error(tmp_path):
    # found by Hypothesis: 0 bytes expected, yet NumPy cannot make the array
    path = tmp_path / "odd-idx"
    dims = [1, 1, 5, 0] + [0x3F800000] * 4
    path.write_bytes(bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims))
    with pytest.raises(DataError, match="is not a possible array"):
        read_idx(path)
