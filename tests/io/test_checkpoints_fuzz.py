"""Garbage in, a CheckpointError out (purenn.io.checkpoints): Hypothesis feeds ``read_checkpoint``
random bytes, truncated and bit-flipped valid files, valid files with one JSON value of the header
replaced by a value of another type, valid files with one array swapped for one of another shape
or dtype, and the same with the header edited to agree with the new array. Each must be refused
with a CheckpointError, never anything else (no TypeError, KeyError, RecursionError, MemoryError,
...), or read as a checkpoint that fits its model: params and state of exactly the structure,
shapes and dtypes the model declares, read-only, and a model that predicts."""

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

import purenn as pn
from purenn.io.checkpoints import CheckpointError, read_checkpoint, save_checkpoint
from purenn.layers import BatchNorm, Conv2D, Dense, Flatten, Sequential, Tanh
from purenn.layers.base import param_shapes, state_shapes
from purenn.summary import check_sample_size
from purenn.tree import tree_leaves as _leaves
from purenn.tree import tree_map

from _fuzz_json import json_paths, json_values

from _models import mixed_model

_MODEL = Sequential([mixed_model(), Sequential([Dense(3, 2, dtype="float64")])])
_CONV = Sequential([Conv2D(1, 2, 3, padding="same"), Tanh(), Flatten()])
_BN = Sequential([Dense(3, 4), BatchNorm(4), Tanh(), Dense(4, 2, dtype="float64"), BatchNorm(2, dtype="float64")])
_INPUTS = {id(_MODEL): (12,), id(_CONV): (4, 4, 1), id(_BN): (3,)}  # per sample
_MODELS = [_MODEL, _CONV, _BN]
_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


_GOOD: dict[int, bytes] = {}


def _good_file(folder: Path, model: Any) -> bytes:
    """The bytes of a valid checkpoint of ``model`` (written once), its state not the initial one."""
    if id(model) not in _GOOD:
        path = folder / "good.npz"
        state = tree_map(lambda a: a + 0.5, model.init_state()) if model.stateful else None
        save_checkpoint(path, model, model.init(np.random.default_rng(0)), state=state, metadata={"epoch": 3})
        _GOOD[id(model)] = path.read_bytes()
    return _GOOD[id(model)]


def _outline(tree: Any) -> Any:
    """A params or state tree as (shape, dtype) pairs, or a declared one normalised alike."""
    if isinstance(tree, tuple) and len(tree) == 2 and isinstance(tree[1], str):
        return tuple(tree[0]), np.dtype(tree[1])
    if isinstance(tree, dict):
        return {k: _outline(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_outline(v) for v in tree)
    return tree.shape, tree.dtype


def _load_or_refuse(folder: Path, data: bytes, original: Any) -> None:
    """Refused with a CheckpointError naming the file, or read as a checkpoint that fits its model
    and predicts (for inputs of the ``original`` model's shape, if the model still takes them)."""
    path = folder / "fuzzed.npz"
    path.write_bytes(data)
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as e:
        assert "fuzzed.npz" in str(e)
        return
    model = ckpt.model
    assert _outline(ckpt.params) == _outline(param_shapes(model))
    assert _outline(ckpt.state) == _outline(state_shapes(model))
    leaves = _leaves(ckpt.params) + _leaves(ckpt.state)
    assert all(type(a) is np.ndarray and not a.flags.writeable for a in leaves)
    try:  # bounded before it runs: a fuzzed model may be another, or too big to run
        shape = check_sample_size(model, _INPUTS[id(original)], limit=10**5)
    except pn.PurennError:
        assert model != original
        return
    x = np.random.default_rng(0).random((2, *_INPUTS[id(original)]))
    out = pn.predict(model, ckpt.params, x, state=ckpt.state if model.stateful else None)
    assert out.shape == (2, *shape)
    if model == original and json.dumps(ckpt.metadata) == '{"epoch": 3}':
        assert np.array_equal(out, pn.predict(original, ckpt.params, x,
                                              state=ckpt.state if model.stateful else None))


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
    _load_or_refuse(folder, data, _MODEL)


@_SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True), which=st.sampled_from(_MODELS))
def test_truncated_files(folder, fraction, which):
    good = _good_file(folder, which)
    _load_or_refuse(folder, good[: int(len(good) * fraction)], which)


@_SETTINGS
@given(position=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255), which=st.sampled_from(_MODELS))
def test_one_byte_changed(folder, position, byte, which):
    good = bytearray(_good_file(folder, which))
    good[int(len(good) * position)] = byte
    _load_or_refuse(folder, bytes(good), which)


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
    which = data.draw(st.sampled_from(_MODELS))
    arrays = _arrays(_good_file(folder, which), folder)
    header = json.loads(str(arrays["purenn"][()]))
    path = data.draw(st.sampled_from(json_paths(header)))
    old = _at(header, path)
    new = data.draw(json_values(["Dense", "Sequential", "BatchNorm", "float32", "<f4", "nan"])
                    .filter(lambda v: type(v) is not type(old)))
    arrays["purenn"] = np.array(json.dumps(_replaced(header, path, new)))
    _load_or_refuse(folder, _write(folder, arrays), which)


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


_ARRAY_DTYPES = st.sampled_from(["<f4", ">f4", "<f8", "<f2", "<i8", "|u1", "|b1", "<c8", "<U3", "|S2", "<M8[s]"])
_OTHER_ARRAYS = hnp.arrays(_ARRAY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))


@_SETTINGS
@given(data=st.data())
def test_one_array_swapped_for_another_shape_or_dtype(folder, data):
    which = data.draw(st.sampled_from(_MODELS))
    arrays = _arrays(_good_file(folder, which), folder)
    name = data.draw(st.sampled_from(sorted(arrays)))
    old = arrays[name]
    arrays[name] = data.draw(_OTHER_ARRAYS.filter(lambda a: a.shape != old.shape or a.dtype != old.dtype))
    _load_or_refuse(folder, _write(folder, arrays), which)


def _leaf_entry(node: Any, index: int) -> dict | None:
    """The header structure's ``{"leaf": index, "dtype", "shape"}`` entry."""
    if isinstance(node, dict):
        if node.get("leaf") == index and "shape" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        return next((e for e in (_leaf_entry(v, index) for v in node) if e is not None), None)
    return None


@pytest.mark.parametrize("kind", ["param", "state"])
@_SETTINGS
@given(data=st.data())
def test_one_array_swapped_with_the_header_agreeing(folder, kind, data):
    """An edit made with care: the array and its entry in the header's structure changed together,
    so only the comparison with the model's declared shapes can refuse it; an array of the same
    shape and dtype with other values is read."""
    which = data.draw(st.sampled_from(_MODELS)) if kind == "param" else _BN
    arrays = _arrays(_good_file(folder, which), folder)
    header = json.loads(str(arrays["purenn"][()]))
    name = data.draw(st.sampled_from(sorted(k for k in arrays if k.startswith(f"{kind}/"))))
    index = int(name.split("/")[1])
    old = arrays[name]
    new = data.draw(_OTHER_ARRAYS.filter(lambda a: a.dtype.kind in "biufc")
                    | st.builds(lambda n: np.zeros(n, old.dtype), st.integers(0, 6))
                    | st.builds(lambda v: np.full_like(old, v), st.floats(0, 2)))  # a variance: >= 0
    entry = _leaf_entry(header["params" if kind == "param" else "state"], index)
    assert entry is not None
    entry.update(dtype=new.dtype.str, shape=list(new.shape))
    arrays[name], arrays["purenn"] = new, np.array(json.dumps(header))
    _load_or_refuse(folder, _write(folder, arrays), which)
