"""Datasets (purenn.io.datasets) and the IDX reader under them (purenn.io.idx): reading IDX files,
loading a folder, where files are looked for, downloading (offline, from local mirrors) and the
real MNIST files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenn.io import datasets as data
from purenn.io.datasets import (
    DATASETS, FILES, DataError, DatasetNotFoundError, DatasetSpec, DownloadError, fetch_file,
    load_idx_dataset, load_mnist, read_idx, search_dirs,
)

from _mnist import real_mnist_root, requires_mnist

TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
              np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(a: np.ndarray, type_code: int | None = None, shape: tuple | None = None) -> bytes:
    """An IDX file's bytes, written independently of the reader (struct + tobytes)."""
    big = a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    code = TYPE_CODES[big.dtype] if type_code is None else type_code
    shape = a.shape if shape is None else shape
    return (bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
            + np.ascontiguousarray(big).tobytes())


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


def write_dataset(directory: Path, *, n_train: int = 5, n_test: int = 3, marker: int = 0,
                  rng_seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Four small IDX files (4x3 images); every label is ``marker`` to tell folders apart."""
    rng = np.random.default_rng(rng_seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 4, 3), dtype=np.uint8),
        "train_labels": np.full(n_train, marker, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 4, 3), dtype=np.uint8),
        "test_labels": np.full(n_test, marker, dtype=np.uint8),
    }
    for role, a in arrays.items():
        name = FILES[role] if gz else FILES[role].removesuffix(".gz")
        write(directory / name, idx_bytes(a))
    return arrays


# ---------------------------------------------------------------- the IDX reader

@settings(max_examples=60, deadline=None)
@given(
    a=st.sampled_from(list(TYPE_CODES)).flatmap(lambda dt: hnp.arrays(
        dt.newbyteorder("="), hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))),
    gz=st.booleans(),
)
def test_round_trip_any_shape_and_type(a, gz):
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d) / ("x.idx.gz" if gz else "x.idx"), idx_bytes(a))
        got = read_idx(path)
    assert got.shape == a.shape and got.dtype == a.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    assert not got.flags.writeable


def test_mnist_like_uint8_round_trip_gzip_and_raw(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    for name in ("imgs.gz", "imgs"):
        got = read_idx(write(tmp_path / name, idx_bytes(a)))
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, a)


GOOD = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)

DAMAGED = {
    "truncated": (idx_bytes(GOOD)[:-5], "expected 24 bytes .* found 19; the file is truncated"),
    "extra bytes": (idx_bytes(GOOD) + b"\0\0\0", "found 27; 3 extra bytes at the end"),
    "bad magic": (b"\x01" + idx_bytes(GOOD)[1:], "magic number must start with two zero bytes"),
    "unknown type": (idx_bytes(GOOD, type_code=0x07), "unknown IDX element type code 0x07"),
    "zero dims": (b"\0\0\x08\0" + GOOD.tobytes(), "0 dimensions"),
    "wrong ndim": (idx_bytes(GOOD, shape=(2, 3)), "expected 6 bytes .* found 24; 18 extra"),
    "header cut": (b"\0\0\x08\x05\0\0\0\x02", "announces 5 dimensions .* only 8 bytes"),
    "too short": (b"\0\0\x08", "only 3 bytes, too short"),
    "huge header": (idx_bytes(GOOD[:0], shape=(60000, 28, 28)) + bytes(1234),
                    "expected 47040000 bytes .* found 1234; the file is truncated"),
}


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_files_are_refused_naming_the_file(tmp_path, case, gz):
    content, message = DAMAGED[case]
    path = write(tmp_path / ("bad-idx3-ubyte.gz" if gz else "bad-idx3-ubyte"), content)
    with pytest.raises(DataError, match=re.escape(str(path)) + ": .*" + message):
        read_idx(path)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (idx_bytes(GOOD), "not a valid gzip file"),                        # raw bytes named .gz
    (gzip.compress(idx_bytes(GOOD))[:-12], "gzip stream ends early"),   # cut compressed stream
    (gzip.compress(idx_bytes(GOOD))[:-8] + b"\0" * 8, "not a valid gzip file .*CRC"),
    (gzip.compress(b""), "decompresses to 0 bytes"),
], ids=["empty", "not gzip", "gzip cut", "bad crc", "empty stream"])
def test_bad_gzip_is_refused(tmp_path, content, message):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(str(path)) + ": .*" + message):
        read_idx(path)


def test_gzip_data_without_gz_name_gets_a_hint(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(GOOD)))
    with pytest.raises(DataError, match="looks gzip-compressed: give it a .gz name"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")
    assert issubclass(DataError, ValueError)


# ---------------------------------------------------------------- loading a folder

@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_load_idx_dataset_scales_flattens_and_casts(tmp_path, gz):
    arrays = write_dataset(tmp_path, marker=7, gz=gz)
    ds = load_idx_dataset(tmp_path)
    assert ds.train.images.shape == (5, 12) and ds.test.images.shape == (3, 12)
    assert ds.train.images.dtype == np.float32 and ds.train.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train.images * np.float32(255),
                                  arrays["train_images"].reshape(5, 12).astype(np.float32))
    np.testing.assert_array_equal(ds.test.labels, np.full(3, 7))
    assert len(ds.train) == 5 and ds.directory == tmp_path
    for a in (ds.train.images, ds.train.labels, ds.test.images, ds.test.labels):
        assert not a.flags.writeable
    channels_last = load_idx_dataset(tmp_path, flatten=False)
    assert channels_last.train.images.shape == (5, 4, 3, 1)
    np.testing.assert_array_equal(channels_last.train.images.reshape(5, 12), ds.train.images)


def test_full_range_maps_to_exactly_zero_and_one(tmp_path):
    write_dataset(tmp_path)
    write(tmp_path / FILES["test_images"], idx_bytes(np.array([[[0, 255, 51]]], np.uint8)))
    write(tmp_path / FILES["test_labels"], idx_bytes(np.array([3], np.uint8)))
    np.testing.assert_array_equal(load_idx_dataset(tmp_path).test.images,
                                  np.array([[0.0, 1.0, np.float32(0.2)]], np.float32))


def test_count_mismatch_names_both_files(tmp_path):
    write_dataset(tmp_path)
    write(tmp_path / FILES["train_labels"], idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz holds 5 images but .*"
                                        r"train-labels-idx1-ubyte.gz holds 4 labels"):
        load_idx_dataset(tmp_path)


def test_swapped_files_are_refused(tmp_path):
    write_dataset(tmp_path)
    write(tmp_path / FILES["test_images"], idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: expected uint8 images .* "
                                        r"found uint8 of shape \(3,\)"):
        load_idx_dataset(tmp_path)


# ---------------------------------------------------------------- where files are looked for

@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated environment: cache in tmp_path/cache, PURENN_DATA unset."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PURENN_DATA", raising=False)
    return tmp_path


def test_lookup_order_explicit_then_env_then_cache(env, monkeypatch):
    cache, envdir, explicit = env / "xdg" / "purenn", env / "envdata", env / "explicit"
    write_dataset(cache / "mnist", marker=1)
    assert load_mnist(download=False, verify=False).train.labels[0] == 1
    write_dataset(envdir / "mnist", marker=2)
    monkeypatch.setenv("PURENN_DATA", str(envdir))
    assert load_mnist(download=False, verify=False).train.labels[0] == 2
    write_dataset(explicit, marker=3)   # files directly in the folder named
    assert load_mnist(explicit, download=False, verify=False).train.labels[0] == 3


def test_dataset_subfolder_is_preferred_to_the_root(env):
    write_dataset(env / "root", marker=4)
    write_dataset(env / "root" / "mnist", marker=5)
    ds = load_mnist(env / "root", download=False, verify=False)
    assert ds.train.labels[0] == 5 and ds.directory == env / "root" / "mnist"
    assert search_dirs("fashion-mnist", env / "r") == [env / "r" / "fashion-mnist", env / "r"]


def test_incomplete_env_folder_falls_back_to_cache(env, monkeypatch):
    write_dataset(env / "envdata", marker=6)
    (env / "envdata" / FILES["test_labels"]).unlink()
    monkeypatch.setenv("PURENN_DATA", str(env / "envdata"))
    write_dataset(env / "xdg" / "purenn" / "mnist", marker=8)
    assert load_mnist(download=False, verify=False).train.labels[0] == 8


def test_cache_defaults_to_home_dot_cache(env, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(env / "home"))
    assert data.default_cache_dir() == env / "home" / ".cache" / "purenn"


def test_explicit_dir_is_the_only_place_looked(env, monkeypatch):
    write_dataset(env / "envdata" / "mnist")
    monkeypatch.setenv("PURENN_DATA", str(env / "envdata"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(env / "empty", download=False)
    message = str(info.value)
    for needed in [*FILES.values(), str(env / "empty" / "mnist"), "PURENN_DATA", "--data-dir",
                   "download=False"]:
        assert needed in message
    assert str(env / "envdata") not in message


def test_not_found_lists_env_and_cache_and_where_download_goes(env, monkeypatch):
    monkeypatch.setenv("PURENN_DATA", str(env / "envdata"))
    with pytest.raises(DatasetNotFoundError, match="Looked in:\n  .*envdata/mnist .*\n"
                       ".*envdata .*\n.*xdg/purenn/mnist .*\n.*xdg/purenn .*\n.*writes them to "
                       + re.escape(str(env / "xdg" / "purenn" / "mnist"))):
        load_mnist(download=False)


def test_unknown_dataset_and_checksum_mismatch(env):
    with pytest.raises(ValueError, match="dataset='kmnist' is not known; choose one of"):
        load_mnist(env, dataset="kmnist")
    write_dataset(env / "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: SHA-256 is [0-9a-f]{64}, "
                                        r"expected 440fcabf.* verify=False"):
        load_mnist(env, download=False)


# ---------------------------------------------------------------- downloading (offline)

PAYLOAD = b"some file content " * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeWeb:
    """An opener serving ``{url: bytes}``; other URLs fail as a dead mirror would."""

    def __init__(self, pages: dict[str, bytes]):
        self.pages, self.requested = pages, []

    def __call__(self, url: str):
        self.requested.append(url)
        if url not in self.pages:
            raise OSError(f"connection refused for {url}")
        return io.BytesIO(self.pages[url])


def test_first_mirror_fails_second_is_used(tmp_path):
    web = FakeWeb({"https://b.example/f.gz": PAYLOAD})
    path = fetch_file("f.gz", PAYLOAD_SHA, tmp_path / "dl", ["https://a.example/",
                      "https://b.example"], opener=web)
    assert web.requested == ["https://a.example/f.gz", "https://b.example/f.gz"]
    assert path == tmp_path / "dl" / "f.gz" and path.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path / "dl") == ["f.gz"]


def test_bad_checksum_is_refused_and_nothing_left_behind(tmp_path):
    web = FakeWeb({"https://a.example/f.gz": PAYLOAD + b"x", "https://b.example/f.gz": b"evil"})
    with pytest.raises(DownloadError, match=r"every mirror failed:\n"
                       r"  https://a.example/f.gz: SHA-256 [0-9a-f]{64} does not match .*\n"
                       r"  https://b.example/f.gz: SHA-256"):
        fetch_file("f.gz", PAYLOAD_SHA, tmp_path, ["https://a.example/", "https://b.example/"],
                   opener=web)
    assert os.listdir(tmp_path) == []


def test_failure_mid_stream_leaves_nothing_behind(tmp_path):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise TimeoutError("read timed out")
            return super().read(10)

    with pytest.raises(DownloadError, match="f.gz: read timed out"):
        fetch_file("f.gz", PAYLOAD_SHA, tmp_path, ["https://a.example/"],
                   opener=lambda url: Broken(PAYLOAD))
    assert os.listdir(tmp_path) == []


def test_file_urls_with_the_default_opener(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "f.gz").write_bytes(PAYLOAD)
    mirrors = [(tmp_path / "dead").as_uri() + "/", served.as_uri() + "/"]
    path = fetch_file("f.gz", PAYLOAD_SHA, tmp_path / "dl", mirrors)
    assert path.read_bytes() == PAYLOAD


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A small dataset served from a local mirror, registered as "mnist" with its checksums."""
    mirror = tmp_path / "mirror"
    arrays = write_dataset(mirror, marker=9)
    sha = {name: hashlib.sha256((mirror / name).read_bytes()).hexdigest()
           for name in FILES.values()}
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec(
        "mnist", sha, ((tmp_path / "dead").as_uri() + "/", mirror.as_uri() + "/")))
    return mirror, arrays


def test_load_downloads_into_the_cache_not_into_purenn_data(env, fake_mnist, monkeypatch):
    mirror, arrays = fake_mnist
    (env / "shared").mkdir()
    monkeypatch.setenv("PURENN_DATA", str(env / "shared"))
    ds = load_mnist()
    cache = env / "xdg" / "purenn" / "mnist"
    assert ds.directory == cache and sorted(os.listdir(cache)) == sorted(FILES.values())
    for name in FILES.values():
        assert (cache / name).read_bytes() == (mirror / name).read_bytes()
    np.testing.assert_array_equal(ds.test.images * np.float32(255),
                                  arrays["test_images"].reshape(3, 12))
    assert os.listdir(env / "shared") == []
    assert load_mnist(download=False).directory == cache   # found there the next time


def test_load_downloads_into_the_named_dir_only_what_is_missing(env, fake_mnist):
    mirror, _ = fake_mnist
    target = env / "mine" / "mnist"
    target.mkdir(parents=True)
    kept = target / FILES["train_images"]
    kept.write_bytes((mirror / FILES["train_images"]).read_bytes())
    web = FakeWeb({mirror.as_uri() + "/" + n: (mirror / n).read_bytes() for n in FILES.values()})
    assert load_mnist(env / "mine", opener=web).train.labels[0] == 9
    assert len(web.requested) == 2 * 3   # dead mirror then the good one, for 3 missing files
    assert FILES["train_images"] not in " ".join(web.requested)


def test_offline_download_error_explains_what_to_do(env, fake_mnist, monkeypatch):
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", DATASETS["mnist"].sha256, ()))
    with pytest.raises(DownloadError, match="(?s)every mirror failed.*Needed .*Looked in.*"
                                            "PURENN_DATA"):
        load_mnist(opener=FakeWeb({}), mirrors=["https://offline.example/"])
    assert not any(p.is_file() for p in (env / "xdg").rglob("*"))


# ---------------------------------------------------------------- the real MNIST files

@pytest.fixture(scope="session")
def mnist():
    return load_mnist(real_mnist_root(), download=False)


@requires_mnist
def test_real_mnist_shapes_types_range(mnist):
    assert mnist.train.images.shape == (60000, 784) and mnist.test.images.shape == (10000, 784)
    assert mnist.train.labels.shape == (60000,) and mnist.test.labels.shape == (10000,)
    for split in (mnist.train, mnist.test):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.images.min() == 0.0 and split.images.max() == 1.0


@requires_mnist
def test_real_mnist_labels_and_means(mnist):
    np.testing.assert_array_equal(np.bincount(mnist.train.labels, minlength=10),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    np.testing.assert_array_equal(np.bincount(mnist.test.labels, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert mnist.train.labels[0] == 5 and mnist.test.labels[0] == 7
    assert mnist.train.images.mean(dtype=np.float64) * 255 == pytest.approx(33.318, abs=5e-4)
    assert mnist.test.images.mean(dtype=np.float64) * 255 == pytest.approx(33.791, abs=5e-4)
