"""Checkpoint files (purenn.io.checkpoints): round trips, user-defined layers, damaged and
foreign files, never unpickling, and a failed save keeping the old file. The record encoding they
use is tested in test_serialize.py, the atomic writes under them in test_atomic.py."""

from __future__ import annotations

import io
import json
import os
import pickle
import tracemalloc
import zipfile
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib import format as npy_format

from purenn.io.checkpoints import (
    VERSION, Checkpoint, CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint,
)
from purenn.layers import Dense, Layer, Sequential, Tanh
from purenn.tree import readonly, tree_leaves, tree_map

from _models import Scale, declared_shapes, mixed_model as _model


def _trained(model: Layer, seed: int = 0) -> Any:
    # perturb the init so the saved values are not just what init would give again
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: readonly(a + rng.standard_normal(a.shape).astype(a.dtype)),
                    model.init(rng))


def _assert_identical(a: Any, b: Any) -> None:
    la, lb = tree_leaves(a), tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_identically(tmp_path, dtype):
    model = _model(dtype)
    params = _trained(model)
    x = np.random.default_rng(1).standard_normal((7, 2, 6)).astype(dtype)
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, model, params, metadata={"epoch": 3, "loss": 0.25})
    assert os.listdir(tmp_path) == ["model.ckpt"]  # path kept exactly, no temp file left

    model2, params2 = load_checkpoint(path)
    assert model2 == model
    assert tree_map(lambda _: None, params2) == tree_map(lambda _: None, params)
    _assert_identical(params2, params)
    assert all(not leaf.flags.writeable for leaf in tree_leaves(params2))
    y, _ = model.forward(params, x)
    y2, _ = model2.forward(params2, x)
    assert y2.dtype == y.dtype and y2.tobytes() == y.tobytes()
    assert read_checkpoint(path).metadata == {"epoch": 3, "loss": 0.25}


def test_read_checkpoint_gives_record(tmp_path):
    model = Dense(3, 2)
    params = model.init(np.random.default_rng(0))
    save_checkpoint(tmp_path / "c", model, params)
    ckpt = read_checkpoint(tmp_path / "c")
    assert isinstance(ckpt, Checkpoint) and ckpt.model == model and ckpt.metadata == {}
    _assert_identical(ckpt.params, params)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
       dtype=st.sampled_from(["float32", "float64"]),
       use_bias=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_round_trip_any_mlp(tmp_path_factory, sizes, dtype, use_bias, seed):
    items: list[Layer] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        items += [Dense(n_in, n_out, use_bias=use_bias, dtype=dtype), Tanh()]
    model = Sequential(items)
    params = _trained(model, seed)
    path = tmp_path_factory.mktemp("ckpt") / "m.npz"
    save_checkpoint(path, model, params)
    model2, params2 = load_checkpoint(path)
    assert model2 == model
    _assert_identical(params2, params)
    x = np.random.default_rng(seed).standard_normal((3, sizes[0])).astype(dtype)
    assert model2.forward(params2, x)[0].tobytes() == model.forward(params, x)[0].tobytes()


def test_overwrite_replaces_old_checkpoint(tmp_path):
    path = tmp_path / "m.ckpt"
    model = Dense(2, 2)
    p1, p2 = _trained(model, 1), _trained(model, 2)
    save_checkpoint(path, model, p1)
    save_checkpoint(path, model, p2)
    _assert_identical(load_checkpoint(path)[1], p2)


# ---------------------------------------------------------------- user-defined layers



def test_custom_layer_round_trip(tmp_path):
    model = Sequential([Dense(4, 3, dtype="float64"), Scale(3, factor=0.5, tags=("x",))])
    params = _trained(model)
    path = tmp_path / "custom.ckpt"
    save_checkpoint(path, model, params)
    with pytest.raises(CheckpointError, match=r"unknown type 'Scale'.*custom=\[Scale\]"):
        load_checkpoint(path)
    model2, params2 = load_checkpoint(path, custom=[Scale])
    assert model2 == model
    _assert_identical(params2, params)
    model3, _ = load_checkpoint(path, custom={"Scale": Scale})
    assert model3 == model


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"not found: .*nope\.ckpt"):
        load_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def _saved(tmp_path) -> tuple[Any, Any, bytes]:
    model = _model()
    params = _trained(model)
    save_checkpoint(tmp_path / "good.ckpt", model, params)
    return model, params, (tmp_path / "good.ckpt").read_bytes()


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99])
def test_truncated_file(tmp_path, keep):
    *_, data = _saved(tmp_path)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"bad\.ckpt.*(not an \.npz|corrupt or truncated)"):
        load_checkpoint(bad)


def test_corrupted_bytes_in_array(tmp_path):
    *_, data = _saved(tmp_path)
    bad = bytearray(data)
    i = data.index(b"param/0.npy") + 200  # inside the first array's data
    bad[i] ^= 0xFF
    (tmp_path / "bad.ckpt").write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match=r"bad\.ckpt.*corrupt"):
        load_checkpoint(tmp_path / "bad.ckpt")


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match=r"notes\.txt.*not an \.npz"):
        load_checkpoint(text)

    arch = tmp_path / "other.zip"
    with zipfile.ZipFile(arch, "w") as z:
        z.writestr("readme.md", "not numpy")
    with pytest.raises(CheckpointError, match=r"other\.zip.*(without a purenn header|corrupt)"):
        load_checkpoint(arch)

    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain\.npz.*without a purenn header.*\['w'\]"):
        load_checkpoint(plain)

    npy = tmp_path / "single.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match=r"single\.npy.*not an \.npz"):
        load_checkpoint(npy)


def _rewrite(src, dst, **changes) -> None:
    """Copy an npz, replacing (or adding) entries; header changes given as a dict function."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["purenn"][()]))
    if "header" in changes:
        header = changes.pop("header")(header)
    arrays["purenn"] = np.array(json.dumps(header))
    arrays.update(changes)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def test_unsupported_version(tmp_path):
    _saved(tmp_path)
    _rewrite(tmp_path / "good.ckpt", tmp_path / "new.ckpt", header=lambda h: {**h, "version": VERSION + 1})
    with pytest.raises(CheckpointError, match=rf"new\.ckpt.*unsupported format version {VERSION + 1}"):
        load_checkpoint(tmp_path / "new.ckpt")


def test_wrong_format_name(tmp_path):
    _saved(tmp_path)
    _rewrite(tmp_path / "good.ckpt", tmp_path / "x.ckpt", header=lambda h: {**h, "format": "other"})
    with pytest.raises(CheckpointError, match=r"x\.ckpt.*not a purenn checkpoint header"):
        load_checkpoint(tmp_path / "x.ckpt")


def test_params_not_matching_model(tmp_path):
    model, params, _ = _saved(tmp_path)
    # the header claims a wider first Dense than the stored arrays
    def widen(h):
        h["model"]["fields"]["layers"][2]["fields"]["out_features"] = 9
        return h
    _rewrite(tmp_path / "good.ckpt", tmp_path / "wide.ckpt", header=widen)
    with pytest.raises(CheckpointError, match=r"wide\.ckpt.*do not match the model.*shape"):
        load_checkpoint(tmp_path / "wide.ckpt")
    # an array replaced by one of another dtype
    _rewrite(tmp_path / "good.ckpt", tmp_path / "dtype.ckpt", **{"param/0": np.zeros((12, 8))})
    with pytest.raises(CheckpointError, match=r"dtype\.ckpt.*dtype"):
        load_checkpoint(tmp_path / "dtype.ckpt")
    # an extra array the structure does not use
    _rewrite(tmp_path / "good.ckpt", tmp_path / "extra.ckpt", **{"param/99": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"extra\.ckpt.*param/0 \.\. param/"):
        load_checkpoint(tmp_path / "extra.ckpt")


def test_save_refuses_mismatched_params(tmp_path):
    model = _model()
    params = _trained(Sequential(model.layers[:-2]))
    with pytest.raises(CheckpointError, match=r"m\.ckpt.*do not match the model.*structure"):
        save_checkpoint(tmp_path / "m.ckpt", model, params)
    f64 = tree_map(lambda a: a.astype(np.float64), _trained(model))
    with pytest.raises(CheckpointError, match=r"dtype float64.*dtype float32"):
        save_checkpoint(tmp_path / "m.ckpt", model, f64)
    with pytest.raises(CheckpointError, match="metadata is not plain JSON"):
        save_checkpoint(tmp_path / "m.ckpt", model, _trained(model), metadata={"f": object()})
    assert not os.listdir(tmp_path)


class _Boom:
    def __reduce__(self):  # would run on unpickling
        return (os.remove, (self.target,))


def test_object_array_is_refused_never_unpickled(tmp_path):
    model, params, _ = _saved(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    boom = _Boom()
    boom.target = str(victim)
    obj = np.empty(1, dtype=object)
    obj[0] = boom
    _rewrite(tmp_path / "good.ckpt", tmp_path / "evil.ckpt", **{"param/0": obj})
    with pytest.raises(CheckpointError, match=r"evil\.ckpt.*'param/0' is an object array"):
        load_checkpoint(tmp_path / "evil.ckpt")
    assert victim.read_text() == "still here"
    # and a header that is itself an object array
    with np.load(tmp_path / "good.ckpt") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["purenn"] = np.array([boom], dtype=object)
    with open(tmp_path / "evil2.ckpt", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(CheckpointError, match=r"evil2\.ckpt.*'purenn' is an object array"):
        load_checkpoint(tmp_path / "evil2.ckpt")
    assert victim.read_text() == "still here"
    # a plain pickle renamed to look like a checkpoint
    (tmp_path / "pickle.ckpt").write_bytes(pickle.dumps(boom))
    with pytest.raises(CheckpointError, match=r"pickle\.ckpt.*not an \.npz"):
        load_checkpoint(tmp_path / "pickle.ckpt")
    assert victim.read_text() == "still here"


# ---------------------------------------------------------------- a failed save


def test_checkpoint_save_failure_midway_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    model = _model()
    old = _trained(model, 1)
    save_checkpoint(path, model, old)
    before = path.read_bytes()

    real_savez = np.savez

    def failing_savez(file, **arrays):
        real_savez(file, **arrays)  # the whole archive is written to the temp file...
        raise OSError("no space left on device")  # ...then the write fails

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="no space left"):
        save_checkpoint(path, model, _trained(model, 2))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.ckpt"]
    _assert_identical(load_checkpoint(path)[1], old)


# ---------------------------------------------------------------- declared sizes, before allocating


def _init_shapes(params: Any) -> Any:
    return tree_map(lambda a: (a.shape, a.dtype), params)


# (every built-in layer's declared shapes: tests/layers/test_every_layer.py, from the registry)


def test_param_shapes_of_a_custom_layer_come_from_its_init():
    model = Sequential([Dense(4, 3, dtype="float64"), Scale(3)])  # Scale defines init only
    assert declared_shapes(model.param_shapes()) == _init_shapes(model.init(np.random.default_rng(0)))
    assert declared_shapes(Scale(5).param_shapes()) == {"g": ((5,), np.dtype("float64"))}


def test_declared_sizes_disagreeing_with_the_file_are_refused_before_allocating(tmp_path, monkeypatch):
    _saved(tmp_path)

    def huge(size):
        def edit(h):
            h["model"]["fields"]["layers"][2]["fields"]["out_features"] = size
            return h
        return edit

    # 10**12 (14.6 TiB as float32 weights) may be refused by Dense itself; the largest size
    # Dense accepts (2**31 - 1: 96 GiB) must be refused by comparing the declared shapes
    _rewrite(tmp_path / "good.ckpt", tmp_path / "huge.ckpt", header=huge(10**12))
    _rewrite(tmp_path / "good.ckpt", tmp_path / "big.ckpt", header=huge(2**31 - 1))

    def no_init(self, rng):
        raise AssertionError("init called: loading would allocate what the model declares")

    monkeypatch.setattr(Dense, "init", no_init)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"huge\.ckpt.*1000000000000"):
            load_checkpoint(tmp_path / "huge.ckpt")
        with pytest.raises(CheckpointError, match=r"big\.ckpt.*do not match the model.*"
                                                  r"params\[2\]\['w'\] has shape \(12, 8\).*"
                                                  r"but shape \(12, 2147483647\)"):
            load_checkpoint(tmp_path / "big.ckpt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, peak
    model, _ = load_checkpoint(tmp_path / "good.ckpt")  # the good one needs no init either
    assert model == _model()


def _npy_bytes(header: dict[str, Any], data: bytes) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def test_an_entry_declaring_more_data_than_it_holds_is_refused_before_reading(tmp_path):
    model = Dense(1, 10**9, use_bias=False)  # declares what the forged entry claims
    good = tmp_path / "good.ckpt"
    save_checkpoint(good, Dense(1, 2, use_bias=False), Dense(1, 2, use_bias=False).init(np.random.default_rng(0)))
    with np.load(good) as z:
        header = json.loads(str(z["purenn"][()]))
    header["model"]["fields"]["out_features"] = 10**9
    header["params"]["dict"][0][1]["shape"] = [1, 10**9]
    with zipfile.ZipFile(tmp_path / "forged.ckpt", "w") as zf:
        zf.writestr("purenn.npy", _npy_bytes(
            {"descr": "<U%d" % len(json.dumps(header)), "fortran_order": False, "shape": ()},
            json.dumps(header).encode("utf-32-le")))
        zf.writestr("param/0.npy", _npy_bytes(
            {"descr": "<f4", "fortran_order": False, "shape": (1, 10**9)}, b"\0" * 8))
    assert model.param_shapes()["w"][0] == (1, 10**9)
    with pytest.raises(CheckpointError, match=r"forged\.ckpt.*'param/0' declares shape \(1, 1000000000\).*"
                                              r"4000000000 bytes.*holds 8 bytes"):
        load_checkpoint(tmp_path / "forged.ckpt")


def _nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "Dense", "fields": {"in_features": 2, "out_features": 2}}
    for _ in range(depth):
        data = {"type": "Sequential", "fields": {"layers": [data]}}
    return data


def test_deeply_nested_models_are_refused_not_a_recursion_error(tmp_path):
    _saved(tmp_path)
    _rewrite(tmp_path / "good.ckpt", tmp_path / "deep.ckpt",
             header=lambda h: {**h, "model": _nested(300)})
    with pytest.raises(CheckpointError, match=r"deep\.ckpt.*nested more than 100 levels"):
        load_checkpoint(tmp_path / "deep.ckpt")
    # a header far deeper than Python's own recursion limit
    deep_json = "[" * 100_000 + "]" * 100_000
    _rewrite(tmp_path / "good.ckpt", tmp_path / "deeper.ckpt", header=lambda h: {**h, "model": []})
    with np.load(tmp_path / "deeper.ckpt") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["purenn"] = np.array(json.dumps(json.loads(str(arrays["purenn"][()]))).replace("[]", deep_json, 1))
    with open(tmp_path / "deeper.ckpt", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(CheckpointError, match=r"deeper\.ckpt.*not valid JSON"):
        load_checkpoint(tmp_path / "deeper.ckpt")


def test_saving_refuses_what_loading_would_refuse(tmp_path):
    deep = Dense(2, 2)
    for _ in range(60):  # 120 levels of JSON
        deep = Sequential([deep])
    with pytest.raises(CheckpointError, match="nested more than 100 levels"):
        save_checkpoint(tmp_path / "deep.ckpt", deep, deep.init(np.random.default_rng(0)))
    assert not os.listdir(tmp_path)
    ok = Dense(2, 2)
    for _ in range(40):
        ok = Sequential([ok])
    params = _trained(ok)
    save_checkpoint(tmp_path / "ok.ckpt", ok, params)
    model, back = load_checkpoint(tmp_path / "ok.ckpt")
    assert model == ok
    _assert_identical(back, params)


def test_non_npy_members_and_other_compressions_are_refused(tmp_path):
    _saved(tmp_path)
    with zipfile.ZipFile(tmp_path / "good.ckpt") as src, \
            zipfile.ZipFile(tmp_path / "extra.ckpt", "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("notes.txt", "hello")
    with pytest.raises(CheckpointError, match=r"extra\.ckpt.*'notes\.txt' cannot be read"):
        load_checkpoint(tmp_path / "extra.ckpt")
    with zipfile.ZipFile(tmp_path / "good.ckpt") as src, \
            zipfile.ZipFile(tmp_path / "bz.ckpt", "w", compression=zipfile.ZIP_BZIP2) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(CheckpointError, match=r"bz\.ckpt.*packed in a way np\.savez never writes"):
        load_checkpoint(tmp_path / "bz.ckpt")


def test_compressed_checkpoints_load(tmp_path):
    model, params, _ = _saved(tmp_path)
    with np.load(tmp_path / "good.ckpt") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "small.npz", **arrays)
    model2, params2 = load_checkpoint(tmp_path / "small.npz")
    assert model2 == model
    _assert_identical(params2, params)
