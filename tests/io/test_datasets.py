"""Datasets (purenn.io.datasets) and the IDX reader under them (purenn.io.idx): reading IDX files,
loading a folder, where files are looked for, an explicit folder that does not exist, loading some
splits only, telling a file of another dataset from a damaged one, labels and empty splits,
downloading (offline, from local mirrors) and the real MNIST and Fashion-MNIST files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import re
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.io import datasets as data
from purenn.io.datasets import (
    DATASETS, FILES, ChecksumError, DataError, DatasetNotFoundError, DatasetSpec, DownloadError,
    WrongDatasetError, download_dataset, load_idx_dataset, load_mnist, read_idx, search_dirs,
)
from purenn.io.download import fetch_file

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
    (env / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(env / "empty", download=False)
    message, hint = info.value.message, info.value.hint
    for needed in [*FILES.values(), str(env / "empty" / "mnist"), "PURENN_DATA",
                   "downloading is turned off"]:
        assert needed in message
    assert str(env / "envdata") not in message
    # the message is neutral (the CLI prints it with its own advice); Python advice is the hint
    for python_only in ("data_dir=", "download=", "--data-dir"):
        assert python_only not in message
    assert "download=True" in hint and "data_dir=<root>" in hint
    assert str(info.value) == f"{message}; {hint}"


def test_not_found_lists_env_and_cache_and_where_download_goes(env, monkeypatch):
    monkeypatch.setenv("PURENN_DATA", str(env / "envdata"))
    with pytest.raises(DatasetNotFoundError, match="Looked in:\n  .*envdata/mnist .*\n"
                       ".*envdata .*\n.*xdg/purenn/mnist .*\n.*xdg/purenn .*\n.*writes them to "
                       + re.escape(str(env / "xdg" / "purenn" / "mnist"))):
        load_mnist(download=False)


def test_unknown_dataset_and_checksum_mismatch(env):
    with pytest.raises(ArgumentError, match="dataset='kmnist' is not known; choose one of"):
        load_mnist(env, dataset="kmnist")
    write_dataset(env / "mnist")
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte.gz: SHA-256 is [0-9a-f]{64}, "
                                            r"expected 440fcabf.* verify=False") as info:
        load_mnist(env, download=False)
    assert "verify=False" not in info.value.message and "verify=False" in info.value.hint


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
    assert not (env / "xdg").exists()
    ds = load_mnist()   # the default cache (and its parents) is created on demand
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


def serve(mirror: Path) -> FakeWeb:
    """A FakeWeb serving every file of ``mirror`` at its file:// URL (as fake_mnist registers)."""
    return FakeWeb({mirror.as_uri() + "/" + p.name: p.read_bytes() for p in mirror.iterdir()})


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative, sorted (to show that nothing was created)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------- an explicit folder must exist

@pytest.mark.parametrize("download", [True, False])
def test_mistyped_data_dir_is_an_error_and_nothing_is_created(env, fake_mnist, download):
    mirror, _ = fake_mnist
    web, before = serve(mirror), tree(env)
    typo = env / "dtaa" / "x"
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(typo, download=download, opener=web)
    assert f"the data folder {typo} does not exist" in info.value.message
    assert "PURENN_DATA" in info.value.message and FILES["train_images"] in info.value.message
    assert "data_dir=" not in info.value.message and "data_dir=None" in info.value.hint
    assert web.requested == []              # nothing downloaded ...
    assert tree(env) == before              # ... and no folder created, not even the cache


def test_data_dir_that_is_a_file_is_an_error(env, fake_mnist):
    mirror, _ = fake_mnist
    (env / "notes.txt").write_text("hello")
    with pytest.raises(DatasetNotFoundError, match=r"notes.txt is not a folder"):
        load_mnist(env / "notes.txt", opener=serve(mirror))
    assert (env / "notes.txt").read_text() == "hello"


def test_existing_data_dir_gets_its_dataset_folder(env, fake_mnist):
    mirror, _ = fake_mnist
    (env / "mine").mkdir()
    ds = load_mnist(env / "mine", opener=serve(mirror))
    assert ds.directory == env / "mine" / "mnist"
    assert sorted(os.listdir(env / "mine" / "mnist")) == sorted(FILES.values())


def test_download_into_a_folder_whose_parent_is_missing_creates_nothing(tmp_path, fake_mnist):
    mirror, _ = fake_mnist
    with pytest.raises(DownloadError, match=r"its parent folder .*typo does not exist"):
        download_dataset("mnist", tmp_path / "typo" / "mnist", opener=serve(mirror))
    assert not (tmp_path / "typo").exists()


def test_load_idx_dataset_of_a_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(tmp_path / "nope"))
                       + ": the folder does not exist"):
        load_idx_dataset(tmp_path / "nope")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- loading some splits only

TEST_FILES = [FILES["test_images"], FILES["test_labels"]]


def test_test_split_only_downloads_only_the_test_files(env, fake_mnist):
    mirror, arrays = fake_mnist
    (env / "mine").mkdir()
    web = serve(mirror)
    ds = load_mnist(env / "mine", splits=("test",), opener=web)
    assert ds.train is None and ds.test is not None
    np.testing.assert_array_equal(ds.test.images * np.float32(255),
                                  arrays["test_images"].reshape(3, 12))
    assert sorted(os.listdir(env / "mine" / "mnist")) == sorted(TEST_FILES)
    assert {url.rsplit("/", 1)[1] for url in web.requested} == set(TEST_FILES)


def test_test_split_only_needs_and_verifies_only_the_test_files(env, fake_mnist):
    mirror, _ = fake_mnist
    folder = env / "d" / "mnist"
    folder.mkdir(parents=True)
    for name in TEST_FILES:
        shutil.copy(mirror / name, folder / name)
    assert load_mnist(env / "d", splits=("test",), download=False).test.labels[0] == 9
    (folder / FILES["train_images"]).write_bytes(b"garbage, never read")
    shutil.copy(mirror / FILES["train_labels"], folder)
    ds = load_mnist(env / "d", splits=["test"], download=False)
    assert ds.train is None and len(ds.test) == 3
    with pytest.raises(ChecksumError):      # all splits: the garbage is checked and refused
        load_mnist(env / "d", download=False)


def test_train_split_only_leaves_test_none(tmp_path):
    write_dataset(tmp_path, n_test=0)       # an empty test split is never read
    ds = load_idx_dataset(tmp_path, splits=("train",))
    assert ds.test is None and len(ds.train) == 5


def test_not_found_names_only_the_files_of_the_splits_asked_for(env):
    (env / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(env / "empty", splits=("test",), download=False)
    assert all(name in info.value.message for name in TEST_FILES)
    assert "train-" not in info.value.message


def test_splits_in_any_order_load_both(tmp_path):
    write_dataset(tmp_path)
    ds = load_idx_dataset(tmp_path, splits=("test", "train", "test"))
    assert len(ds.train) == 5 and len(ds.test) == 3


@pytest.mark.parametrize("splits, error", [
    ("test", ArgumentTypeError), (("test", 1), ArgumentTypeError), ((), ArgumentError),
    (("validation",), ArgumentError),
])
def test_bad_splits_are_refused_by_name(env, splits, error):
    write_dataset(env / "mnist")
    for load in (lambda: load_mnist(env, splits=splits, download=False),
                 lambda: load_idx_dataset(env / "mnist", splits=splits)):
        with pytest.raises(error, match=r"`splits` must be a non-empty tuple of split names "
                                        r"from \('train', 'test'\)"):
            load()


# ---------------------------------------------------------------- another dataset, or damaged

@pytest.fixture
def two_datasets(tmp_path, monkeypatch):
    """Two known datasets, "alpha" and "beta" (labels 1 and 2), each in its own folder."""
    specs = {}
    for name, marker in (("alpha", 1), ("beta", 2)):
        write_dataset(tmp_path / name, marker=marker, rng_seed=marker)
        sha = {n: hashlib.sha256((tmp_path / name / n).read_bytes()).hexdigest()
               for n in FILES.values()}
        specs[name] = DatasetSpec(name, sha, ())
    monkeypatch.setattr(data, "DATASETS", specs)
    return tmp_path


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_files_of_another_known_dataset_are_named_as_such(two_datasets):
    beta = two_datasets / "beta"
    before = contents(beta)
    with pytest.raises(WrongDatasetError) as info:
        load_mnist(beta, dataset="alpha")
    e = info.value
    assert (e.path, e.requested, e.actual, e.actual_file) == (
        beta / FILES["train_images"], "alpha", "beta", FILES["train_images"])
    assert "from the beta dataset" in e.message and "not from alpha" in e.message
    assert "dataset='beta'" in e.hint and "dataset=" not in e.message
    assert "delet" not in str(e).lower() and "damaged" not in str(e).lower()
    assert isinstance(e, DataError) and not isinstance(e, ChecksumError)
    assert contents(beta) == before        # nothing deleted, replaced or added
    assert load_mnist(beta, dataset="beta").train.labels[0] == 2


def test_one_file_of_another_dataset_under_another_name(two_datasets):
    alpha = two_datasets / "alpha"
    shutil.copy(two_datasets / "beta" / FILES["train_labels"], alpha / FILES["test_labels"])
    with pytest.raises(WrongDatasetError, match=re.escape(
            f"{alpha / FILES['test_labels']}: this file is from the beta dataset, not from "
            f"alpha (the dataset asked for): its SHA-256 matches beta's {FILES['train_labels']}")):
        load_mnist(alpha, dataset="alpha", splits=("test",))


def test_damaged_file_is_a_checksum_error_with_both_digests(two_datasets):
    alpha = two_datasets / "alpha"
    path = alpha / FILES["test_labels"]
    path.write_bytes(path.read_bytes()[:-1] + b"\xff")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as info:
        load_mnist(alpha, dataset="alpha")
    e = info.value
    assert (e.path, e.dataset, e.actual) == (path, "alpha", actual)
    assert e.expected == data.DATASETS["alpha"].sha256[FILES["test_labels"]]
    assert e.expected in e.message and actual in e.message and "damaged" in e.message
    assert "verify=False" in e.hint and "verify" not in e.message


def test_data_errors_survive_pickling(tmp_path):
    """Errors cross process boundaries (multiprocessing) with their attributes."""
    for error in (WrongDatasetError(tmp_path / "f.gz", "mnist", "fashion-mnist", "f.gz"),
                  ChecksumError(tmp_path / "f.gz", "mnist", "a" * 64, "b" * 64)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and vars(copy) == vars(error)
        assert str(copy) == str(error)


# ---------------------------------------------------------------- labels and sizes

@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_label_out_of_range_names_file_index_and_value(env, gz):
    write_dataset(env / "mnist", gz=gz)
    labels = env / "mnist" / FILES["train_labels"]
    labels = labels if gz else labels.with_suffix("")
    write(labels, idx_bytes(np.array([1, 2, 200, 3, 250], np.uint8)))
    # raw files are never SHA-verified (load_mnist verifies only .gz), so this is what catches them
    load = (lambda: load_idx_dataset(env / "mnist")) if gz else (
        lambda: load_mnist(env, download=False))
    with pytest.raises(DataError, match=re.escape(f"{labels}: label 200 at index 2 is outside "
                                                  f"[0, 10) (2 of 5 labels are)")):
        load()


def test_num_classes_bounds_the_labels(tmp_path):
    write_dataset(tmp_path, marker=4)
    assert load_idx_dataset(tmp_path, num_classes=5).num_classes == 5
    with pytest.raises(DataError, match=r"label 4 at index 0 is outside \[0, 4\)") as info:
        load_idx_dataset(tmp_path, num_classes=4)
    assert "num_classes=N" in info.value.hint and "num_classes=" not in info.value.message
    for bad in (0, -1, 2.5, "10"):
        with pytest.raises(ArgumentError, match="`num_classes` must be a positive integer"):
            load_idx_dataset(tmp_path, num_classes=bad)


def test_dataset_spec_gives_the_number_of_classes(env, fake_mnist, monkeypatch):
    mirror, _ = fake_mnist   # labels are all 9
    assert DATASETS["mnist"].num_classes == 10 and load_mnist().num_classes == 10
    spec = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", spec.sha256, spec.mirrors, 9))
    with pytest.raises(DataError, match=r"label 9 at index 0 is outside \[0, 9\)"):
        load_mnist(download=False)
    with pytest.raises(ArgumentError, match="`num_classes` must be a positive integer"):
        DatasetSpec("x", {}, (), num_classes=0)


def test_empty_split_is_refused_at_load_time(tmp_path):
    write_dataset(tmp_path, n_test=0)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz and .*"
                                        r"t10k-labels-idx1-ubyte.gz hold 0 samples"):
        load_idx_dataset(tmp_path)


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


# ---------------------------------------------------------------- the real Fashion-MNIST files

def real_file(dataset: str, role: str) -> Path | None:
    """The real ``<PURENN_DATA>/<dataset>/`` file of ``role`` (gzipped, as upstream), if there."""
    root = os.environ.get("PURENN_DATA")
    path = Path(root) / dataset / FILES[role] if root else None
    return path if path is not None and path.is_file() else None


def requires_files(*wanted: tuple[str, str]):
    missing = [f"{d}/{FILES[role]}" for d, role in wanted if real_file(d, role) is None]
    return pytest.mark.skipif(bool(missing), reason="needs the real files in $PURENN_DATA: "
                              + ", ".join(missing))


@requires_files(("fashion-mnist", "test_labels"), ("mnist", "test_images"))
def test_real_fashion_labels_among_mnist_files_are_named(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    shutil.copy(real_file("mnist", "test_images"), folder)
    shutil.copy(real_file("fashion-mnist", "test_labels"), folder)
    with pytest.raises(WrongDatasetError) as info:
        load_mnist(tmp_path, splits=("test",), download=False)
    e = info.value
    assert (e.path, e.requested, e.actual) == (folder / FILES["test_labels"], "mnist",
                                               "fashion-mnist")
    assert "delet" not in str(e).lower() and "dataset='fashion-mnist'" in e.hint


@requires_files(*[("fashion-mnist", role) for role in FILES])
def test_real_fashion_folder_loaded_as_mnist_is_named(monkeypatch):
    """The issue's reproduction: a Fashion-MNIST folder given without dataset="fashion-mnist"."""
    monkeypatch.setattr(data, "_urlopen", lambda url: pytest.fail(f"download of {url}"))
    folder = Path(os.environ["PURENN_DATA"]) / "fashion-mnist"
    with pytest.raises(WrongDatasetError) as info:
        load_mnist(folder, download=False)
    assert info.value.actual == "fashion-mnist" and info.value.requested == "mnist"
    assert info.value.path.parent == folder
    ds = load_mnist(folder, dataset="fashion-mnist", splits=("test",), download=False)
    assert ds.train is None and ds.test.labels[0] == 9
    np.testing.assert_array_equal(np.bincount(ds.test.labels), [1000] * 10)
