"""MNIST and other four-file IDX datasets: find them, download them if missing, load them.

A dataset is the four upstream files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (an uncompressed copy without
``.gz`` is accepted too).

Where they are looked for, first match wins (a folder matches when it holds all four files):

1. ``data_dir`` if given (``--data-dir`` on the command line), and nowhere else;
2. otherwise ``$PURENN_DATA``, if set, then the cache ``$XDG_CACHE_HOME/purenn`` (or
   ``~/.cache/purenn``).

In each of those roots the folder ``<root>/<dataset>/`` (e.g. ``<root>/mnist/``) is tried first,
then ``<root>/`` itself, so both ``PURENN_DATA=/data`` with ``/data/mnist/*.gz`` and
``data_dir="/data/mnist"`` work. Since MNIST and Fashion-MNIST use the same file names, keep each
in its own ``<root>/<dataset>/`` folder.

Missing files are downloaded (``download=True``) into ``<data_dir>/<dataset>/`` when ``data_dir``
was given, else into ``<cache>/<dataset>/`` — never into ``$PURENN_DATA``, which is treated as a
possibly shared, read-only store. Each file is tried from each mirror in turn, checked against its
known SHA-256 and only then moved into place (temp file + ``os.replace``), so a failed or
tampered download leaves nothing behind. This module never prints.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np

from purenn.errors import DataError, DatasetNotFoundError, DownloadError
from purenn.io.atomic import atomic_writer
from purenn.io.idx import read_idx
from purenn.tree import readonly

__all__ = [
    "DataError", "DatasetNotFoundError", "DownloadError", "Split", "Dataset", "DatasetSpec",
    "DATASETS", "FILES", "read_idx", "load_mnist", "load_idx_dataset", "download_dataset",
    "fetch_file", "search_dirs", "default_cache_dir",
]

#: The four files of a dataset, by role.
FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}




@attrs.frozen
class DatasetSpec:
    """A known dataset: its name, the SHA-256 of each compressed file, and its mirrors."""

    name: str
    sha256: Mapping[str, str]  # file name (as in FILES) -> hex digest
    mirrors: tuple[str, ...]   # base URLs ending in "/"


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }, ("https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/")),
    "fashion-mnist": DatasetSpec("fashion-mnist", {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }, ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")),
}

#: ``opener(url)`` returns a context manager with ``read(n)``; urllib's by default.
Opener = Callable[[str], Any]


def _urlopen(url: str) -> Any:
    return urllib.request.urlopen(url, timeout=60)


@attrs.frozen(eq=False)
class Split:
    """One split: ``images`` float32 in [0, 1], ``(N, rows*cols)`` or ``(N, rows, cols, 1)``;
    ``labels`` int64 ``(N,)``. Both read-only."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@attrs.frozen(eq=False)
class Dataset:
    """A loaded dataset: ``train`` and ``test`` splits, its name and the folder it came from."""

    train: Split
    test: Split
    name: str
    directory: Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/purenn`` if that variable is set, else ``~/.cache/purenn``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "purenn"


def search_dirs(dataset: str = "mnist",
                data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders looked in, in order (see the module docstring)."""
    if data_dir is not None:
        roots = [Path(data_dir)]
    else:
        env = os.environ.get("PURENN_DATA")
        roots = ([Path(env)] if env else []) + [default_cache_dir()]
    return [d for root in roots for d in (root / dataset, root)]


def _locate(directory: Path, name: str) -> Path | None:
    """``directory/name`` or its uncompressed twin (name without ``.gz``), if either is a file."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path) -> list[str]:
    return [name for name in FILES.values() if _locate(directory, name) is None]


def load_idx_dataset(directory: str | os.PathLike[str], *, flatten: bool = True,
                     name: str = "", sha256: Mapping[str, str] | None = None) -> Dataset:
    """Load the four IDX files in ``directory`` (no lookup, no download).

    Images become float32 ``x / 255`` in [0, 1], shape ``(N, rows*cols)`` when ``flatten``
    (MNIST: ``(60000, 784)`` and ``(10000, 784)``), else ``(N, rows, cols, 1)`` channels-last.
    Labels become int64 ``(N,)``. ``sha256`` (file name -> digest), if given, is checked for the
    ``.gz`` files first. Raises :class:`DataError` naming the file(s) on any problem.
    """
    directory = Path(directory)
    missing = _missing(directory)
    if missing:
        raise DatasetNotFoundError(f"{directory}: missing {', '.join(missing)}")
    # every file is there (checked above): _locate finds each
    paths = {role: _locate(directory, fname) or directory / fname for role, fname in FILES.items()}
    if sha256:
        for path in paths.values():
            actual = _sha256_file(path) if path.name in sha256 else None
            if actual is not None and actual != sha256[path.name]:
                raise DataError(
                    f"{path}: SHA-256 is {actual}, expected {sha256[path.name]} for "
                    f"{name or 'this dataset'}; the file is damaged or from another dataset — "
                    f"delete it and download it again (or load it with verify=False)")
    return Dataset(
        train=_load_split(paths["train_images"], paths["train_labels"], flatten),
        test=_load_split(paths["test_images"], paths["test_labels"], flatten),
        name=name or directory.name, directory=directory)


def _load_split(images_path: Path, labels_path: Path, flatten: bool) -> Split:
    raw, labels = read_idx(images_path), read_idx(labels_path)
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, rows, cols), found "
                        f"{raw.dtype} of shape {raw.shape}; is it the right file?")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), found "
                        f"{labels.dtype} of shape {labels.shape}; is it the right file?")
    if len(raw) != len(labels):
        raise DataError(f"{images_path} holds {len(raw)} images but {labels_path} holds "
                        f"{len(labels)} labels; one of them is from another dataset or damaged")
    n, rows, cols = raw.shape
    images = np.divide(raw, np.float32(255), dtype=np.float32)
    images = images.reshape(n, rows * cols) if flatten else images.reshape(n, rows, cols, 1)
    return Split(readonly(images), readonly(labels.astype(np.int64)))


def load_mnist(data_dir: str | os.PathLike[str] | None = None, *, download: bool = True,
               dataset: str = "mnist", flatten: bool = True, verify: bool = True,
               mirrors: Sequence[str] | None = None, opener: Opener | None = None) -> Dataset:
    """Find (see :func:`search_dirs`), download if missing, and load a known dataset.

    ``dataset`` is a key of :data:`DATASETS` (``"mnist"``, ``"fashion-mnist"``). Returns a
    :class:`Dataset` with ``train`` and ``test`` splits, images float32 in [0, 1] of shape
    ``(N, 784)`` (``flatten=False``: ``(N, 28, 28, 1)``) and int64 labels ``(N,)``.
    ``verify`` checks each ``.gz`` file's SHA-256 against the upstream one. ``mirrors`` and
    ``opener`` override where and how files are downloaded.
    Raises :class:`DatasetNotFoundError` (files absent and ``download=False``),
    :class:`DownloadError` (every mirror failed) or :class:`DataError` (a damaged file).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r} is not known; choose one of {sorted(DATASETS)} "
                         f"or load a folder of IDX files with load_idx_dataset(directory)")
    spec = DATASETS[dataset]
    dirs = search_dirs(dataset, data_dir)
    found = next((d for d in dirs if not _missing(d)), None)
    if found is None:
        target = (Path(data_dir) if data_dir is not None else default_cache_dir()) / dataset
        if not download:
            raise DatasetNotFoundError(_not_found_message(spec, dirs, target, "download=False"))
        try:
            found = download_dataset(dataset, target, mirrors=mirrors, opener=opener)
        except DownloadError as e:
            why = _not_found_message(spec, dirs, target, "download failed")
            raise DownloadError(f"{e}\n{why}") from None
    return load_idx_dataset(found, flatten=flatten, name=dataset,
                            sha256=spec.sha256 if verify else None)


def _not_found_message(spec: DatasetSpec, dirs: list[Path], target: Path, why: str) -> str:
    def status(d: Path) -> str:
        missing = _missing(d)
        if len(missing) == len(FILES):
            return "none of them there"
        return f"missing {', '.join(missing)}"
    looked = "\n".join(f"  {d}  ({status(d)})" for d in dirs)
    return (f"{spec.name}: the data files were not found and not downloaded ({why}).\n"
            f"Needed (gzip IDX, as distributed upstream): {', '.join(FILES.values())}\n"
            f"Looked in:\n{looked}\n"
            f"Put the four files in a folder <root>/{spec.name}/ and pass data_dir=<root> "
            f"(--data-dir on the command line) or set PURENN_DATA=<root>; or allow the download, "
            f"which writes them to {target}.")


def download_dataset(dataset: str = "mnist", directory: str | os.PathLike[str] | None = None, *,
             mirrors: Sequence[str] | None = None, opener: Opener | None = None) -> Path:
    """Download the files of ``dataset`` missing from ``directory`` (default
    ``<cache>/<dataset>``) and return the folder. Files already there are kept."""
    spec = DATASETS[dataset]
    directory = Path(directory) if directory is not None else default_cache_dir() / dataset
    for name in _missing(directory):
        fetch_file(name, spec.sha256[name], directory,
                   spec.mirrors if mirrors is None else mirrors, opener=opener)
    return directory


def fetch_file(name: str, sha256: str, directory: str | os.PathLike[str],
               mirrors: Sequence[str], *, opener: Opener | None = None) -> Path:
    """Download ``name`` from the first mirror that serves it with the right SHA-256.

    The bytes go to a temp file in ``directory`` (:func:`purenn.io.atomic.atomic_writer`) that is
    moved into place only once verified; on any failure nothing is left behind. Raises :class:`DownloadError` listing each mirror's
    failure if none worked.
    """
    opener = opener or _urlopen
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {directory} to download {name} into "
                            f"({e.strerror or e}); choose a writable data_dir") from None
    if not os.access(directory, os.W_OK):
        raise DownloadError(f"cannot write {name} into {directory} (permission denied); "
                            f"choose a writable data_dir")
    failures = []
    for base in mirrors:
        url = base if base.endswith(name) else base.rstrip("/") + "/" + name
        try:
            # atomic_writer moves the file into place only when the block ends cleanly
            with atomic_writer(directory / name) as out, opener(url) as response:
                digest = hashlib.sha256()
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                if digest.hexdigest() != sha256:
                    raise _ChecksumMismatch(digest.hexdigest())
            return directory / name
        except _ChecksumMismatch as e:
            failures.append(f"  {url}: SHA-256 {e} does not match the expected {sha256}; refused")
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts are OSErrors
            failures.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {name} into {directory}; every mirror failed:\n"
                        + "\n".join(failures))


class _ChecksumMismatch(Exception):
    """A downloaded file's SHA-256 (the exception's argument) is not the expected one."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
