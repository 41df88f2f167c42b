"""What a hostile file can make purenn allocate is bounded before anything is allocated: the three
attacks of issue 17 reproduced (a deflated JSON header padded with 10**8 spaces, a generator state
with a huge unicode dtype; the fan-out model is in tests/cli/test_cli_evaluate.py), measured with
tracemalloc (NumPy reports its allocations to it), then every limit tested just below and above."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.lib import format as npy_format

import purenn as pn
from purenn.errors import ArgumentError, CheckpointError, SerializeError
from purenn.io import npz
from purenn.io.checkpoints import read_checkpoint, save_checkpoint
from purenn.io.npz import MAX_FILE_BYTES, MAX_HEADER_BYTES, MAX_INFLATED_BYTES, MAX_NPY_HEADER_BYTES
from purenn.io.serialize import MAX_RECORDS, from_data, to_data
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.rng import (
    MAX_ENTROPY_BITS,
    MAX_ENTROPY_WORDS,
    MAX_SPAWN_KEY,
    MAX_STATE_DEPTH,
    MAX_STATE_WORDS,
    POOL_SIZES,
    STATE_DTYPES,
    generator_from_state,
    generator_state,
)

MB = 1 << 20


def _peak(call: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """The most memory Python and NumPy held while ``call()`` ran, and what it raised."""
    tracemalloc.start()
    try:
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            return tracemalloc.get_traced_memory()[1], e
        return tracemalloc.get_traced_memory()[1], None
    finally:
        tracemalloc.stop()


# --- attack: a JSON header padded with 10**8 spaces, deflated -------------------------------


PADDING = 10**8
HEADER = json.dumps({"format": "purenn.checkpoint", "version": 1, "model": {"type": "Identity", "fields": {}},
                     "params": {"dict": []}, "metadata": {}})


@pytest.fixture(scope="module")
def padded(tmp_path_factory) -> Path:
    """A 390 KB archive whose "purenn" entry is a valid JSON header followed by 10**8 spaces
    (400 MB as NumPy's 4-byte characters), deflated: written in chunks, never held whole."""
    path = tmp_path_factory.mktemp("padded") / "padded.npz"
    text = HEADER
    space = " ".encode("utf-32-le")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, \
            z.open("purenn.npy", "w", force_zip64=True) as f:
        npy_format.write_array_header_1_0(
            f, {"descr": f"<U{len(text) + PADDING}", "fortran_order": False, "shape": ()})
        f.write(text.encode("utf-32-le"))
        for _ in range(PADDING >> 20):
            f.write(space * (1 << 20))
        f.write(space * (PADDING % (1 << 20)))
    return path


@pytest.mark.parametrize("reader", [read_checkpoint, load_training_state])
def test_a_deflated_header_padded_with_1e8_spaces_is_refused_unread(padded, reader):
    assert padded.stat().st_size < MB
    peak, error = _peak(lambda: reader(padded))
    assert isinstance(error, CheckpointError), error
    assert str(padded) in str(error)
    assert f"{4 * PADDING + 4 * len(HEADER)} bytes, more than" in str(error), error
    assert peak < 4 * MB, peak


# --- attack: a generator state with a huge unicode dtype ---------------------------------------


MODEL = pn.Sequential([pn.Dense(3, 4), pn.Tanh(), pn.Dense(4, 2)])


@pytest.fixture(scope="module")
def training_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)).astype("float32"), rng.integers(0, 2, 16)
    saved: list[Any] = []
    pn.fit(MODEL, MODEL.init(rng), x, y, loss="softmax_cross_entropy", optimizer=pn.Adam(0.01),
           epochs=2, batch_size=4, seed=1, checkpoint=saved.append, checkpoint_every=3)
    path = tmp_path_factory.mktemp("training") / "training.npz"
    save_training_state(path, MODEL, saved[-1])
    return path


def _edited(good: Path, out: Path, edit: Callable[[dict], None]) -> Path:
    with np.load(good, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["purenn"][()]))
    edit(header)
    arrays["purenn"] = np.array(json.dumps(header))
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return out


def test_a_generator_state_with_a_huge_unicode_dtype_is_refused_unallocated(training_file, tmp_path):
    def edit(h: dict) -> None:
        h["training"]["layer_rng"]["state"]["state"] = {"array": ["7"], "dtype": "<U250000000"}
        h.pop("digest", None)

    path = _edited(training_file, tmp_path / "unicode.npz", edit)
    peak, error = _peak(lambda: load_training_state(path))
    assert isinstance(error, CheckpointError), error
    assert "<U250000000" in str(error), error
    assert peak < 4 * MB, peak


def test_a_generator_state_with_a_huge_unicode_dtype_is_refused_even_with_a_valid_digest(
        training_file, tmp_path):
    from purenn.io.training_checkpoints import content_digest

    def edit(h: dict) -> None:
        h["training"]["layer_rng"]["state"]["state"] = {"array": ["7"], "dtype": "<U250000000"}

    path = _edited(training_file, tmp_path / "unicode.npz", edit)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays.pop("purenn")[()]))
    header["digest"] = content_digest(header, arrays)
    _edited(path, path, lambda h: h.update(digest=header["digest"]))
    peak, error = _peak(lambda: load_training_state(path))
    assert isinstance(error, CheckpointError) and "<U250000000" in str(error), error
    assert "digest" not in str(error)  # refused for the dtype, the digest being right
    assert peak < 4 * MB, peak


# --- the JSON header's size: MAX_HEADER_BYTES ----------------------------------------------------


def _save_with_header_of(path: Path, chars: int, kind: str) -> None:
    """A checkpoint (or training state) whose JSON header is ``chars`` characters long, its
    metadata padded to that."""
    def save(pad: str) -> None:
        if kind == "checkpoint":
            save_checkpoint(path, MODEL, MODEL.init(np.random.default_rng(0)), metadata={"pad": pad})
        else:
            save_training_state(path, MODEL, load_training_state(_TRAINING[0]).state, metadata={"pad": pad})

    save("")
    with np.load(path) as f:
        empty = f["purenn"].dtype.itemsize // 4
    path.unlink()
    save("x" * (chars - empty))


_TRAINING: list[Path] = []


@pytest.mark.parametrize("kind", ["checkpoint", "training state"])
def test_a_json_header_of_max_header_bytes_is_read_one_more_character_is_refused(training_file, tmp_path, kind):
    _TRAINING[:] = [training_file]
    reader = read_checkpoint if kind == "checkpoint" else load_training_state
    at_limit = tmp_path / "at.npz"
    _save_with_header_of(at_limit, MAX_HEADER_BYTES // 4, kind)
    with np.load(at_limit) as f:
        assert f["purenn"].nbytes == MAX_HEADER_BYTES
    assert reader(at_limit).metadata["pad"].startswith("xxx")
    with pytest.raises(CheckpointError, match=rf"its JSON header would be {MAX_HEADER_BYTES + 4} bytes, "
                                              rf"more than the {MAX_HEADER_BYTES} purenn reads"):
        _save_with_header_of(tmp_path / "above.npz", MAX_HEADER_BYTES // 4 + 1, kind)
    assert not (tmp_path / "above.npz").exists()
    with np.load(at_limit) as f:  # the same file with one more character, written by hand
        arrays = {k: f[k] for k in f.files}
    arrays["purenn"] = np.array(str(arrays["purenn"][()]) + " ")
    with open(tmp_path / "above.npz", "wb") as f:
        np.savez(f, **arrays)
    peak, error = _peak(lambda: reader(tmp_path / "above.npz"))
    assert isinstance(error, CheckpointError), error
    assert f"(the JSON header) is {MAX_HEADER_BYTES + 4} bytes, more than the {MAX_HEADER_BYTES}" in str(error)
    assert peak < MAX_HEADER_BYTES + 4 * MB, peak  # the file itself, read whole, and no more


# --- each entry's .npy header: MAX_NPY_HEADER_BYTES ---------------------------------------------


def _npy(length: int, array: np.ndarray, version: int = 1) -> bytes:
    """``array`` as ``.npy`` bytes whose header text is padded to ``length`` bytes."""
    text = repr({"descr": array.dtype.str, "fortran_order": False, "shape": array.shape})
    text += " " * (length - len(text) - 1) + "\n"
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode("latin1") + array.tobytes()


def _with_entry(good: Path, out: Path, name: str, data: bytes, compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
        dst.writestr(name, data, compress_type=compress)
    return out


def test_an_npy_header_of_max_npy_header_bytes_is_read_one_more_byte_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    params = MODEL.init(np.random.default_rng(0))
    save_checkpoint(good, MODEL, params)
    w = params[0]["w"]
    at = _with_entry(good, tmp_path / "at.npz", "param/0.npy", _npy(MAX_NPY_HEADER_BYTES, w))
    assert np.array_equal(read_checkpoint(at).params[0]["w"], w)
    above = _with_entry(good, tmp_path / "above.npz", "param/0.npy", _npy(MAX_NPY_HEADER_BYTES + 1, w))
    with pytest.raises(CheckpointError, match=rf"'param/0' cannot be read .*declares {MAX_NPY_HEADER_BYTES + 1} "
                                              rf"bytes, more than the {MAX_NPY_HEADER_BYTES} purenn reads"):
        read_checkpoint(above)


def test_a_deflated_npy_header_declaring_1e8_bytes_is_refused_unread(tmp_path):
    """NumPy would read all 10**8 bytes of such a header before refusing it."""
    good = tmp_path / "good.npz"
    save_checkpoint(good, MODEL, MODEL.init(np.random.default_rng(0)))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != "param/0.npy":
                dst.writestr(info.filename, src.read(info))
        with dst.open("param/0.npy", "w", force_zip64=True) as f:
            f.write(b"\x93NUMPY\x02\x00" + (10**8).to_bytes(4, "little"))
            for _ in range(100):
                f.write(b" " * 10**6)
    assert bomb.stat().st_size < MB
    peak, error = _peak(lambda: read_checkpoint(bomb))
    assert isinstance(error, CheckpointError), error
    assert f"declares {10**8} bytes, more than the {MAX_NPY_HEADER_BYTES}" in str(error), error
    assert peak < 4 * MB, peak


# --- what compressed entries expand to: MAX_INFLATED_BYTES --------------------------------------


def test_compressed_entries_expanding_to_max_inflated_bytes_load_four_more_bytes_are_refused(tmp_path):
    """A Dense(4095, 4095) (67,092,480 bytes of params) and a header of 4,096 characters (16,384
    bytes) are 2**26 bytes, compressed with np.savez_compressed."""
    model = pn.Dense(4095, 4095)
    params = {"w": np.zeros((4095, 4095), np.float32), "b": np.zeros(4095, np.float32)}
    param_bytes = sum(a.nbytes for a in params.values())
    header_chars = (MAX_INFLATED_BYTES - param_bytes) // 4
    assert param_bytes + 4 * header_chars == MAX_INFLATED_BYTES
    stored = tmp_path / "stored.npz"
    save_checkpoint(stored, model, params, metadata={"pad": ""})
    with np.load(stored) as f:
        arrays = {k: f[k] for k in f.files}
    stored.unlink()
    text = str(arrays["purenn"][()])
    for name, extra in (("at.npz", 0), ("above.npz", 1)):
        pad = "x" * (header_chars - len(text) + extra)
        arrays["purenn"] = np.array(text.replace('"pad": ""', f'"pad": "{pad}"'))
        np.savez_compressed(tmp_path / name, **arrays)
    ckpt = read_checkpoint(tmp_path / "at.npz")
    assert ckpt.params["w"].shape == (4095, 4095) and len(ckpt.metadata["pad"]) > 3000
    del ckpt
    peak, error = _peak(lambda: read_checkpoint(tmp_path / "above.npz"))
    assert isinstance(error, CheckpointError), error
    assert (f"its compressed entries would expand to {MAX_INFLATED_BYTES + 4} bytes, more than the "
            f"{MAX_INFLATED_BYTES} purenn inflates") in str(error)
    assert peak < 4 * MB, peak


# --- the file's size: MAX_FILE_BYTES --------------------------------------------------------------


@pytest.mark.parametrize("reader", [read_checkpoint, load_training_state])
def test_a_file_larger_than_max_file_bytes_is_refused_unread(tmp_path, reader):
    sparse = tmp_path / "sparse.npz"
    with open(sparse, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(MAX_FILE_BYTES + 1)  # a sparse file: no disk space, a gigabyte to read
    peak, error = _peak(lambda: reader(sparse))
    assert isinstance(error, CheckpointError), error
    assert f"is {MAX_FILE_BYTES + 1} bytes, more than the {MAX_FILE_BYTES} bytes" in str(error), error
    assert peak < MB, peak


def test_the_file_size_limit_is_exact_for_reading_and_saving(tmp_path, monkeypatch):
    """The limit with a small value: a file of exactly that size loads, one byte less refuses it,
    and saving a file that would exceed it leaves nothing behind."""
    path = tmp_path / "good.npz"
    save_checkpoint(path, MODEL, MODEL.init(np.random.default_rng(0)))
    size = path.stat().st_size
    monkeypatch.setattr(npz, "MAX_FILE_BYTES", size)
    assert read_checkpoint(path).model == MODEL
    save_checkpoint(tmp_path / "again.npz", MODEL, MODEL.init(np.random.default_rng(0)))
    monkeypatch.setattr(npz, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(CheckpointError, match=rf"is {size} bytes, more than the {size - 1} bytes"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=rf"the file would be {size} bytes or more, more than "
                                              rf"the {size - 1} purenn reads \(MAX_FILE_BYTES\)"):
        save_checkpoint(tmp_path / "new.npz", MODEL, MODEL.init(np.random.default_rng(0)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "good.npz"]


# --- generators' states: purenn.rng ---------------------------------------------------------------


def _state(kind: str = "PCG64") -> dict:
    return generator_state(np.random.Generator(getattr(np.random, kind)(np.random.SeedSequence(5))))


def _refused_state(data: dict, message: str) -> None:
    peak, error = _peak(lambda: generator_from_state(data))
    assert isinstance(error, ArgumentError), error
    assert message in str(error), error
    assert peak < MB, peak


def test_a_state_array_of_max_state_words_is_read_one_more_is_refused():
    state = _state("MT19937")
    assert len(state["state"]["state"]["key"]["array"]) == MAX_STATE_WORDS
    generator_from_state(state)
    state["state"]["state"]["key"]["array"].append(0)
    _refused_state(state, f"a list of at most {MAX_STATE_WORDS} ints, got list of length {MAX_STATE_WORDS + 1}")


@pytest.mark.parametrize("kind", ["MT19937", "Philox", "SFC64"])
def test_state_arrays_of_the_dtypes_bit_generators_use_are_read_others_refused(kind):
    state = _state(kind)
    generator_from_state(state)
    leaf = next(v for v in _walk(state["state"]) if isinstance(v, dict) and "dtype" in v)
    assert leaf["dtype"] in STATE_DTYPES
    for other in ("<U250000000", "<f8", "<i8", "|u1", "<u2", "O", 5):
        leaf["dtype"] = other
        _refused_state(state, f"must have dtype {' or '.join(STATE_DTYPES)}, got {other!r}")


def _walk(node: Any):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)


def test_a_state_nested_max_state_depth_is_read_one_more_level_is_refused():
    state = _state("Philox")
    assert isinstance(state["state"]["state"]["counter"], dict)  # 2 levels, then an array
    generator_from_state(state)
    state["state"]["state"]["counter"] = {"deeper": state["state"]["state"]["counter"]}
    _refused_state(state, f"nests at most {MAX_STATE_DEPTH} levels deep")


def _seq_edit(field: str, value: Any) -> dict:
    state = _state()
    state["seed_sequence"][field] = value
    return state


@pytest.mark.parametrize("field, below, above, message", [
    ("pool_size", POOL_SIZES[1], POOL_SIZES[1] + 1, "pool_size must be an int in [4, 64]"),
    ("pool_size", POOL_SIZES[0], POOL_SIZES[0] - 1, "pool_size must be an int in [4, 64]"),
    ("entropy", (1 << MAX_ENTROPY_BITS) - 1, 1 << MAX_ENTROPY_BITS, "each in [0, 2**4096)"),
    ("entropy", [1] * MAX_ENTROPY_WORDS, [1] * (MAX_ENTROPY_WORDS + 1), "a list of at most 128 ints"),
    ("entropy", [(1 << MAX_ENTROPY_BITS) - 1], [1 << MAX_ENTROPY_BITS], "each in [0, 2**4096)"),
    ("entropy", [0], [-1], "each in [0, 2**4096)"),
    ("spawn_key", [3] * MAX_SPAWN_KEY, [3] * (MAX_SPAWN_KEY + 1), "a list of at most 1024 ints"),
    ("spawn_key", [0], [[]], "spawn_key must be an int or a list"),
    ("n_children_spawned", (1 << 32) - 1, 1 << 32, "n_children_spawned must be an int in [0, 2**32)"),
])
def test_seed_sequence_limits(field, below, above, message):
    generator_from_state(_seq_edit(field, below))
    _refused_state(_seq_edit(field, above), message)


# --- records in one model: MAX_RECORDS ------------------------------------------------------------


def test_a_model_of_max_records_round_trips_one_more_is_refused(tmp_path):
    at_limit = pn.Sequential([pn.Identity()] * (MAX_RECORDS - 1))  # and the Sequential itself
    data = to_data(at_limit)
    assert from_data(data) == at_limit
    above = pn.Sequential([pn.Identity()] * MAX_RECORDS)
    message = rf"more than {MAX_RECORDS} records \(layers, optimizers, schedules\) in one model"
    with pytest.raises(SerializeError, match=message):
        to_data(above)
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(tmp_path / "above.npz", above, above.init(np.random.default_rng(0)))
    data["fields"]["layers"].append({"type": "Identity", "fields": {}})
    with pytest.raises(SerializeError, match=message):
        from_data(data)
    save_checkpoint(tmp_path / "at.npz", at_limit, at_limit.init(np.random.default_rng(0)))
    _edited(tmp_path / "at.npz", tmp_path / "above.npz",
            lambda h: (h["model"]["fields"]["layers"].append({"type": "Identity", "fields": {}}),
                       h["params"]["tuple"].append({"dict": []})))
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(tmp_path / "above.npz")


def test_a_file_growing_while_read_is_read_to_its_end_or_refused_past_the_limit(tmp_path, monkeypatch):
    """read_regular_file asks for the size fstat gives (read(n) sets n bytes aside first, so
    asking for the limit would allocate it); a file that has grown since is read on, a MiB at a
    time, up to the limit."""
    import os

    from purenn.io import atomic

    path = tmp_path / "growing"
    path.write_bytes(b"x" * (3 * MB))
    real_fstat = os.fstat

    class Smaller:
        def __init__(self, info: os.stat_result) -> None:
            self.st_mode, self.st_size = info.st_mode, 100  # what fstat saw before the file grew

    monkeypatch.setattr(atomic.os, "fstat", lambda fd: Smaller(real_fstat(fd)))
    assert atomic.read_regular_file(path, limit=3 * MB) == b"x" * (3 * MB)
    with pytest.raises(ArgumentError, match=rf"grew past the {3 * MB - 1} bytes"):
        atomic.read_regular_file(path, limit=3 * MB - 1)


# --- IDX files: MAX_IDX_BYTES -----------------------------------------------------------------------


def test_an_idx_file_larger_than_max_idx_bytes_is_refused_unread(tmp_path):
    from purenn.io.idx import MAX_IDX_BYTES, read_idx

    for name in ("images-idx3-ubyte", "images-idx3-ubyte.gz"):
        sparse = tmp_path / name
        with open(sparse, "wb") as f:
            f.write(b"\0\0\x08\x01")
            f.truncate(MAX_IDX_BYTES + 1)
        peak, error = _peak(lambda path=sparse: read_idx(path))
        assert isinstance(error, pn.DataError), error
        assert f"{MAX_IDX_BYTES + 1} bytes, more than the {MAX_IDX_BYTES} purenn reads" in str(error)
        assert peak < MB, peak


def test_an_idx_file_of_max_idx_bytes_is_read_one_more_byte_is_refused(tmp_path, monkeypatch):
    """The limit with a small value (the real one would take a gigabyte): a raw file, and a gzip
    file expanding to exactly the limit are read; one byte more is refused, the gzip one after
    decompressing no further than that byte."""
    import gzip

    from purenn.io import idx

    data = bytes([0, 0, 8, 1]) + (1000).to_bytes(4, "big") + bytes(range(200)) * 5
    (tmp_path / "x-idx1-ubyte").write_bytes(data)
    (tmp_path / "x-idx1-ubyte.gz").write_bytes(gzip.compress(data))
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", len(data))
    for name in ("x-idx1-ubyte", "x-idx1-ubyte.gz"):
        assert idx.read_idx(tmp_path / name).tolist() == list(range(200)) * 5
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", len(data) - 1)
    with pytest.raises(pn.DataError, match=rf"{len(data)} bytes, more than the {len(data) - 1} purenn reads"):
        idx.read_idx(tmp_path / "x-idx1-ubyte")
    with pytest.raises(pn.DataError, match=rf"decompresses to more than the {len(data) - 1} bytes"):
        idx.read_idx(tmp_path / "x-idx1-ubyte.gz")


def test_a_gzip_bomb_is_refused_having_decompressed_no_more_than_the_limit(tmp_path, monkeypatch):
    """A 100 KB gzip file of 100 MB of zeros, against a limit of 10 MB."""
    import gzip

    from purenn.io import idx

    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10**8).to_bytes(4, "big"))
        for _ in range(100):
            f.write(bytes(10**6))
    assert bomb.stat().st_size < 200_000
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 10 * MB)
    peak, error = _peak(lambda: idx.read_idx(bomb))
    assert isinstance(error, pn.DataError) and "decompresses to more than" in str(error), error
    assert peak < 25 * MB, peak


# --- a stored entry claiming more bytes than the file holds ------------------------------------


def _patch_sizes(data: bytearray, name: bytes, size: int) -> None:
    """Set a member's compressed and uncompressed sizes to ``size`` in its local header and its
    central directory entry (the file's bytes stay as they are)."""
    # (signature, offset of the two sizes, of the name's length, of the name) in each record
    for signature, sizes_at, length_at, name_at in ((b"PK\x03\x04", 18, 26, 30), (b"PK\x01\x02", 20, 28, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            length = int.from_bytes(data[start + length_at:start + length_at + 2], "little")
            if data[start + name_at:start + name_at + length] == name:
                data[start + sizes_at:start + sizes_at + 8] = size.to_bytes(4, "little") * 2
            start += 4


def test_a_stored_entry_claiming_more_than_the_file_holds_is_refused_unallocated(tmp_path):
    """A 22 KB file naming a model of 25 million params, its "param/0" entry stored (not
    compressed, so MAX_INFLATED_BYTES does not count it) and claiming the 100 MB the model
    declares: its sizes cannot be true in a file this small, so it is refused before the 100 MB
    are set aside for reading it."""
    from purenn.io.serialize import tree_to_data
    from purenn.layers.base import param_shapes

    model = pn.Dense(5000, 5000)
    shapes = param_shapes(model)
    structure, _ = tree_to_data({k: np.broadcast_to(np.zeros((), dtype), shape)  # nothing allocated
                                 for k, (shape, dtype) in shapes.items()})
    header = json.dumps({"format": "purenn.checkpoint", "version": 1, "model": to_data(model),
                         "params": structure, "metadata": {}})
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("purenn.npy", _npy_bytes(np.array(header)))
        with z.open("param/0.npy", "w") as f:  # "w" (5000, 5000): its header, and 16 bytes of data
            npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                  "shape": shapes["w"][0]})
            f.write(b"\0" * 16)
        z.writestr("param/1.npy", _npy_bytes(np.zeros(5000, np.float32)))  # "b", whole
    data = bytearray(path.read_bytes())
    npy_header = 128  # write_array_header_1_0 pads the header to a multiple of 64 bytes
    _patch_sizes(data, b"param/0.npy", npy_header + 4 * 5000 * 5000)
    path.write_bytes(data)
    assert path.stat().st_size < 32 * 1024
    peak, error = _peak(lambda: read_checkpoint(path))
    assert isinstance(error, CheckpointError), error
    assert peak < 4 * MB, (peak, error)
    assert "entry 'param/0.npy' is damaged or packed in a way np.savez never writes" in str(error), error


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, a)
    return buffer.getvalue()
