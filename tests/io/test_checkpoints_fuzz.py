"""Garbage in, a CheckpointError out (purenn.io.checkpoints): Hypothesis feeds ``load_checkpoint``
random bytes, truncated and bit-flipped valid files, valid files with one JSON value of the header
replaced by a value of another type, and valid files with one array swapped for one of another
shape or dtype. Each must load correctly or raise CheckpointError, never anything else (no
TypeError, KeyError, RecursionError, MemoryError, ...)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenn.io.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from purenn.layers import Conv2D, Dense, Flatten, Sequential, Tanh
from purenn.tree import tree_leaves as _leaves

from _fuzz_json import json_paths, json_values

from _models import mixed_model

_MODEL = Sequential([mixed_model(), Sequential([Dense(3, 2, dtype="float64")])])
_CONV = Sequential([Conv2D(1, 2, 3, padding="same"), Tanh(), Flatten()])
_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


_GOOD: dict[int, bytes] = {}


def _good_file(folder: Path, model: Any) -> bytes:
    """The bytes of a valid checkpoint of ``model`` (written once)."""
    if id(model) not in _GOOD:
        path = folder / "good.npz"
        save_checkpoint(path, model, model.init(np.random.default_rng(0)), metadata={"epoch": 3})
        _GOOD[id(model)] = path.read_bytes()
    return _GOOD[id(model)]


def _load_or_refuse(folder: Path, data: bytes) -> None:
    path = folder / "fuzzed.npz"
    path.write_bytes(data)
    try:
        _, params = load_checkpoint(path)
    except CheckpointError as e:
        assert "fuzzed.npz" in str(e)
        return
    assert set(map(type, _leaves(params))) <= {np.ndarray}  # it loaded: arrays, read-only
    assert not any(a.flags.writeable for a in _leaves(params))


def _arrays(data: bytes, folder: Path) -> dict[str, np.ndarray]:
    (folder / "src.npz").write_bytes(data)
    with np.load(folder / "src.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(folder: Path, arrays: dict[str, Any]) -> bytes:
    with open(folder / "out.npz", "wb") as f:
        np.savez(f, **arrays)
    return (folder / "out.npz").read_bytes()


@_SETTINGS
@given(data=st.one_of(st.binary(max_size=2000), st.binary(max_size=2000).map(lambda b: b"PK\x03\x04" + b)))
def test_random_bytes(folder, data):
    _load_or_refuse(folder, data)


@_SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True), which=st.sampled_from([_MODEL, _CONV]))
def test_truncated_files(folder, fraction, which):
    good = _good_file(folder, which)
    _load_or_refuse(folder, good[: int(len(good) * fraction)])


@_SETTINGS
@given(position=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255))
def test_one_byte_changed(folder, position, byte):
    good = bytearray(_good_file(folder, _MODEL))
    good[int(len(good) * position)] = byte
    _load_or_refuse(folder, bytes(good))


def _replaced(doc: Any, path: tuple, value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@_SETTINGS
@given(data=st.data())
def test_one_header_value_replaced_by_another_type(folder, data):
    arrays = _arrays(_good_file(folder, data.draw(st.sampled_from([_MODEL, _CONV]))), folder)
    header = json.loads(str(arrays["purenn"][()]))
    path = data.draw(st.sampled_from(json_paths(header)))
    old = _at(header, path)
    new = data.draw(json_values(["Dense", "Sequential", "float32", "<f4", "nan"]).filter(lambda v: type(v) is not type(old)))
    arrays["purenn"] = np.array(json.dumps(_replaced(header, path, new)))
    _load_or_refuse(folder, _write(folder, arrays))


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


_ARRAY_DTYPES = st.sampled_from(["<f4", ">f4", "<f8", "<f2", "<i8", "|u1", "|b1", "<c8", "<U3", "|S2", "<M8[s]"])


@_SETTINGS
@given(data=st.data())
def test_one_array_swapped_for_another_shape_or_dtype(folder, data):
    arrays = _arrays(_good_file(folder, _MODEL), folder)
    name = data.draw(st.sampled_from(sorted(arrays)))
    old = arrays[name]
    new = data.draw(hnp.arrays(_ARRAY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
                    .filter(lambda a: a.shape != old.shape or a.dtype != old.dtype))
    arrays[name] = new
    _load_or_refuse(folder, _write(folder, arrays))
