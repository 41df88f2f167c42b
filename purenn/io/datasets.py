"""MNIST and other four-file IDX datasets: find them, download them if missing, load them.

A dataset is the four upstream files ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (an uncompressed copy without
``.gz`` is accepted too), two per split (:data:`SPLITS`: ``"train"`` and ``"test"``). Loading only
some splits (``splits=("test",)``) looks for, verifies and downloads only their files.

Where they are looked for, first match wins (a folder matches when it holds every file of the
splits asked for):

1. ``data_dir`` if given (``--data-dir`` on the command line), and nowhere else; it must be an
   existing folder (a mistyped one is an error: nothing is created or downloaded there);
2. otherwise ``$PURENN_DATA``, if set, then the cache ``$XDG_CACHE_HOME/purenn`` (or
   ``~/.cache/purenn``).

In each of those roots the folder ``<root>/<dataset>/`` (e.g. ``<root>/mnist/``) is tried first,
then ``<root>/`` itself, so both ``PURENN_DATA=/data`` with ``/data/mnist/*.gz`` and
``data_dir="/data/mnist"`` work. Since MNIST and Fashion-MNIST use the same file names, keep each
in its own ``<root>/<dataset>/`` folder.

Missing files are downloaded (``download=True``) into ``<data_dir>/<dataset>/`` when ``data_dir``
was given (only that last folder is created), else into ``<cache>/<dataset>/`` (created with its
parents on demand) — never into ``$PURENN_DATA``, which is treated as a possibly shared, read-only
store. Each file is tried from each mirror in turn, checked against its known SHA-256 and only
then moved into place (temp file + ``os.replace``), so a failed or tampered download leaves
nothing behind. This module never prints.

What is checked when loading: every file's IDX structure (:func:`~purenn.io.idx.read_idx`), the
images' and labels' shapes and types, equal counts, at least one sample per split, and every
label in ``[0, num_classes)``. With ``verify`` a ``.gz`` file's SHA-256 is also compared with the
upstream one; a mismatch raises :class:`WrongDatasetError` when the file is another known
dataset's, else :class:`ChecksumError`. Uncompressed files are never SHA-256-verified (the known
digests are of the ``.gz`` files), so for them a damaged or swapped file passes whenever its
structure and labels are valid (any byte is a valid pixel).

Errors keep ``message`` neutral (what is wrong, and fixes that work everywhere, such as setting
``PURENN_DATA``) and put Python-only advice (an argument to pass) in ``hint``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from purenn.errors import (
    ArgumentError,
    ChecksumError,
    DataError,
    DatasetNotFoundError,
    DownloadError,
    WrongDatasetError,
)
from purenn.io.download import Opener, fetch_file, open_url, sha256_file
from purenn.io.idx import read_idx
from purenn.io.provenance import note_read
from purenn.tree import readonly
from purenn.validation import Rule, check, positive_int, to_int

__all__ = [
    "DATASETS",
    "FILES",
    "SPLITS",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DownloadError",
    "Split",
    "WrongDatasetError",
    "default_cache_dir",
    "download_dataset",
    "load_idx_dataset",
    "load_mnist",
    "read_idx",
    "search_dirs",
]

#: The four files of a dataset, by role (``<split>_images``, ``<split>_labels``).
FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: The splits of a dataset, in the order they are loaded.
SPLITS: tuple[str, ...] = ("train", "test")


@attrs.frozen
class DatasetSpec:
    """A known dataset: its name, the SHA-256 of each compressed file, its mirrors and its
    number of classes (labels must be in ``[0, num_classes)``)."""

    name: str
    sha256: Mapping[str, str]  # file name (as in FILES) -> hex digest
    mirrors: tuple[str, ...]   # base URLs ending in "/"
    num_classes: int = attrs.field(default=10, converter=to_int, validator=positive_int)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }, ("https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/"), num_classes=10),
    "fashion-mnist": DatasetSpec("fashion-mnist", {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }, ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        num_classes=10),
}

def _urlopen(url: str) -> Any:
    """How this module's downloads open a URL (tests replace it to keep off the network)."""
    return open_url(url)


@attrs.frozen(eq=False)
class Split:
    """One split: ``images`` float32 in [0, 1], ``(N, rows*cols)`` or ``(N, rows, cols, 1)``;
    ``labels`` int64 ``(N,)`` in ``[0, num_classes)``, ``N >= 1``. Both read-only."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@attrs.frozen(eq=False)
class Dataset:
    """A loaded dataset: its ``train`` and ``test`` splits (``None`` for a split not asked for,
    see ``splits=`` of :func:`load_mnist`), its name, the folder it came from and its number of
    classes (every label is in ``[0, num_classes)``)."""

    train: Split | None
    test: Split | None
    name: str
    directory: Path
    num_classes: int = 10


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


_splits_rule = Rule(
    f"a non-empty tuple of split names from {SPLITS}, e.g. ('test',)",
    lambda v: isinstance(v, (tuple, list, set, frozenset)) and all(isinstance(s, str) for s in v),
    lambda v: len(v) > 0 and all(s in SPLITS for s in v),
)


def _check_splits(splits: Collection[str]) -> tuple[str, ...]:
    """``splits`` checked, deduplicated and in :data:`SPLITS` order."""
    check("splits", splits, _splits_rule)
    return tuple(s for s in SPLITS if s in splits)


def _roles(splits: Sequence[str]) -> list[str]:
    """The roles (keys of :data:`FILES`) of the files ``splits`` need."""
    return [f"{s}_{part}" for s in splits for part in ("images", "labels")]


def _names(splits: Sequence[str]) -> list[str]:
    """The file names ``splits`` need."""
    return [FILES[role] for role in _roles(splits)]


def _locate(directory: Path, name: str) -> Path | None:
    """``directory/name`` or its uncompressed twin (name without ``.gz``), if either is a file."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path, names: Sequence[str] = tuple(FILES.values())) -> list[str]:
    return [name for name in names if _locate(directory, name) is None]


def _folder_problem(folder: Path) -> str | None:
    """``"does not exist"`` or ``"is not a folder"``, or None for an existing folder."""
    if folder.is_dir():
        return None
    return "is not a folder" if folder.exists() else "does not exist"


def load_idx_dataset(directory: str | os.PathLike[str], *, flatten: bool = True,
                     name: str = "", sha256: Mapping[str, str] | None = None,
                     splits: Collection[str] = SPLITS, num_classes: int = 10) -> Dataset:
    """Load the IDX files of ``splits`` in ``directory`` (no lookup, no download).

    Images become float32 ``x / 255`` in [0, 1], shape ``(N, rows*cols)`` when ``flatten``
    (MNIST: ``(60000, 784)`` and ``(10000, 784)``), else ``(N, rows, cols, 1)`` channels-last.
    Labels become int64 ``(N,)``. A split not in ``splits`` is ``None`` in the result.
    ``sha256`` (file name -> digest), if given, is checked for the ``.gz`` files first.

    Checked for every file: its IDX structure, the shapes and types, equal image and label
    counts, at least one sample, and every label in ``[0, num_classes)``. Uncompressed files
    (no ``.gz``) are never SHA-256-checked, so for them these checks are all there is: a file
    with valid structure and labels but wrong pixels loads.

    Raises :class:`DatasetNotFoundError` (no such folder, or files missing),
    :class:`WrongDatasetError` (a file is another known dataset's), :class:`ChecksumError`
    (a damaged or unknown file) or :class:`DataError` naming the file on any other problem.
    """
    directory = Path(directory)
    splits = _check_splits(splits)
    num_classes = check("num_classes", num_classes, positive_int, to_int)
    paths = _find_files(directory, splits)
    note_read(*paths.values())  # an experiment's run records the data files it read
    if sha256:
        for path in paths.values():
            _verify(path, name or directory.name, sha256)
    loaded = {s: _load_split(paths[f"{s}_images"], paths[f"{s}_labels"], flatten, num_classes)
              for s in splits}
    return Dataset(train=loaded.get("train"), test=loaded.get("test"),
                   name=name or directory.name, directory=directory, num_classes=num_classes)


def _find_files(directory: Path, splits: Sequence[str]) -> dict[str, Path]:
    """The path of each file ``splits`` need, by role; DatasetNotFoundError if any is missing."""
    problem = _folder_problem(directory)
    if problem:
        raise DatasetNotFoundError(f"{directory}: the folder {problem}")
    missing = _missing(directory, _names(splits))
    if missing:
        raise DatasetNotFoundError(f"{directory}: missing {', '.join(missing)}")
    # every file is there (checked above): _locate finds each
    return {role: _locate(directory, FILES[role]) or directory / FILES[role]
            for role in _roles(splits)}


def _verify(path: Path, dataset: str, sha256: Mapping[str, str]) -> None:
    """Check ``path``'s SHA-256 if ``sha256`` knows its name (the ``.gz`` files); a mismatch is
    a :class:`WrongDatasetError` if it is another known dataset's file, else a ChecksumError."""
    expected = sha256.get(path.name)
    if expected is None:
        return
    actual = sha256_file(path)
    if actual == expected:
        return
    known = _identify(actual, exclude=dataset)
    if known is not None:
        raise WrongDatasetError(path, dataset, *known)
    raise ChecksumError(path, dataset, expected, actual)


def _identify(digest: str, exclude: str) -> tuple[str, str] | None:
    """``(dataset, file name)`` of the file of a known dataset other than ``exclude`` whose
    SHA-256 is ``digest``, or None."""
    for key, spec in DATASETS.items():
        for file_name, known in spec.sha256.items():
            if known == digest and exclude not in (key, spec.name):
                return key, file_name
    return None


def _load_split(images_path: Path, labels_path: Path, flatten: bool, num_classes: int) -> Split:
    raw, labels = read_idx(images_path), read_idx(labels_path)
    _check_shapes(raw, images_path, labels, labels_path)
    _check_labels(labels, labels_path, num_classes)
    n, rows, cols = raw.shape
    images = np.divide(raw, np.float32(255), dtype=np.float32)
    images = images.reshape(n, rows * cols) if flatten else images.reshape(n, rows, cols, 1)
    return Split(readonly(images), readonly(labels.astype(np.int64)))


def _check_shapes(raw: np.ndarray, images_path: Path, labels: np.ndarray,
                  labels_path: Path) -> None:
    """uint8 images ``(N, rows, cols)`` and as many uint8 labels ``(N,)``, with ``N >= 1``."""
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, rows, cols), found "
                        f"{raw.dtype} of shape {raw.shape}; is it the right file?")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels of shape (N,), found "
                        f"{labels.dtype} of shape {labels.shape}; is it the right file?")
    if len(raw) != len(labels):
        raise DataError(f"{images_path} holds {len(raw)} images but {labels_path} holds "
                        f"{len(labels)} labels; one of them is from another dataset or damaged")
    if len(labels) == 0:
        raise DataError(f"{images_path} and {labels_path} hold 0 samples; a split needs at "
                        f"least one")


def _check_labels(labels: np.ndarray, labels_path: Path, num_classes: int) -> None:
    """Every label in ``[0, num_classes)``; else a DataError naming the first bad one."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"{labels_path}: label {int(labels[first])} at index {first} is outside [0, "
            f"{num_classes}) ({bad.size} of {labels.size} labels are); the file is damaged or not "
            f"the labels of a {num_classes}-class dataset",
            hint="load_idx_dataset(directory, num_classes=N) loads a dataset of N classes")


def load_mnist(data_dir: str | os.PathLike[str] | None = None, *, download: bool = True,
               dataset: str = "mnist", flatten: bool = True, verify: bool = True,
               splits: Collection[str] = SPLITS, mirrors: Sequence[str] | None = None,
               opener: Opener | None = None) -> Dataset:
    """Find (see :func:`search_dirs`), download if missing, and load a known dataset.

    ``dataset`` is a key of :data:`DATASETS` (``"mnist"``, ``"fashion-mnist"``). Returns a
    :class:`Dataset` with ``train`` and ``test`` splits, images float32 in [0, 1] of shape
    ``(N, 784)`` (``flatten=False``: ``(N, 28, 28, 1)``) and int64 labels ``(N,)``.
    ``splits`` (a tuple of names from :data:`SPLITS`) loads only those splits: only their files
    are looked for, verified and downloaded, and the other split is ``None``, e.g.
    ``load_mnist(splits=("test",)).test``. ``data_dir``, if given, must be an existing folder.
    ``verify`` checks each ``.gz`` file's SHA-256 against the upstream one (uncompressed files
    are never verified; see :func:`load_idx_dataset` for what is checked for them). ``mirrors``
    and ``opener`` override where and how files are downloaded.

    Raises :class:`DatasetNotFoundError` (``data_dir`` does not exist, or files absent and
    ``download=False``), :class:`DownloadError` (every mirror failed), :class:`WrongDatasetError`
    (a file is another known dataset's), :class:`ChecksumError` (a damaged or unknown file),
    :class:`DataError` (a file that is malformed, or labels out of range) or
    :class:`~purenn.errors.ArgumentError` (an unknown ``dataset`` or a bad ``splits``).
    """
    spec = _spec(dataset)
    splits = _check_splits(splits)
    if data_dir is not None:
        _check_data_dir(Path(data_dir), spec, splits)
    found = _find_or_download(spec, data_dir, splits, download, mirrors, opener)
    return load_idx_dataset(found, flatten=flatten, name=dataset, splits=splits,
                            sha256=spec.sha256 if verify else None,
                            num_classes=spec.num_classes)


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ArgumentError(f"dataset={dataset!r} is not known; choose one of {sorted(DATASETS)}",
                            hint="load a folder of IDX files with load_idx_dataset(directory)")
    return DATASETS[dataset]


def _check_data_dir(root: Path, spec: DatasetSpec, splits: Sequence[str]) -> None:
    """An explicit data folder must exist: a mistyped one is never created nor downloaded into."""
    problem = _folder_problem(root)
    if problem is None:
        return
    raise DatasetNotFoundError(
        f"{spec.name}: the data folder {root} {problem}; nothing was created or downloaded.\n"
        f"Give an existing folder holding {', '.join(_names(splits))} (in <folder>/{spec.name}/ "
        f"or in <folder> itself; the download fills an existing empty folder), or set "
        f"PURENN_DATA=<folder>, or leave the folder out to use the cache {default_cache_dir()}",
        hint="pass data_dir=None to look in $PURENN_DATA and the cache")


def _find_or_download(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None,
                      splits: Sequence[str], download: bool, mirrors: Sequence[str] | None,
                      opener: Opener | None) -> Path:
    """The first folder holding the files ``splits`` need, else the one they are downloaded to."""
    dirs = search_dirs(spec.name, data_dir)
    names = _names(splits)
    found = next((d for d in dirs if not _missing(d, names)), None)
    if found is not None:
        return found
    target = Path(data_dir) / spec.name if data_dir is not None else None
    shown = target or default_cache_dir() / spec.name
    if not download:
        raise _not_found(DatasetNotFoundError, spec, dirs, names, shown,
                         "downloading is turned off", "pass download=True to download them")
    try:
        return download_dataset(spec.name, target, splits=splits, mirrors=mirrors, opener=opener)
    except DownloadError as e:
        raise _not_found(DownloadError, spec, dirs, names, shown, "the download failed",
                         e.hint, cause=e.message) from None


def _not_found(cls: type[DatasetNotFoundError], spec: DatasetSpec, dirs: list[Path],
               names: list[str], target: Path, why: str, hint: str | None,
               cause: str = "") -> DatasetNotFoundError:
    """The error saying where ``names`` were looked for and where a download writes them."""
    def status(d: Path) -> str:
        if _folder_problem(d):
            return "no such folder"
        missing = _missing(d, names)
        return "none of them there" if len(missing) == len(names) else f"missing {', '.join(missing)}"
    looked = "\n".join(f"  {d}  ({status(d)})" for d in dirs)
    return cls((f"{cause}\n" if cause else "")
               + f"{spec.name}: the data files were not found and not downloaded ({why}).\n"
               f"Needed (gzip IDX, as distributed upstream): {', '.join(names)}\n"
               f"Looked in:\n{looked}\n"
               f"Put the files in a folder <root>/{spec.name}/ and set PURENN_DATA=<root>; or "
               f"allow the download, which writes them to {target}",
               hint="; ".join(h for h in ("pass data_dir=<root> to look there", hint) if h))


def download_dataset(dataset: str = "mnist", directory: str | os.PathLike[str] | None = None, *,
                     splits: Collection[str] = SPLITS, mirrors: Sequence[str] | None = None,
                     opener: Opener | None = None) -> Path:
    """Download the files of ``splits`` of ``dataset`` missing from ``directory`` and return
    the folder. Files already there are kept.

    ``directory`` defaults to ``<cache>/<dataset>``, created with its parents if need be; a
    ``directory`` given is created only if its parent folder exists.
    """
    spec = _spec(dataset)
    names = _names(_check_splits(splits))
    if directory is None:
        directory = _make_cache(default_cache_dir() / dataset)
    directory = Path(directory)
    for name in _missing(directory, names):
        fetch_file(name, spec.sha256[name], directory,
                   spec.mirrors if mirrors is None else mirrors, opener=opener or _urlopen)
    return directory


def _make_cache(directory: Path) -> Path:
    """Create the cache folder ``directory`` and its parents (the only folders created so)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the cache folder {directory} ({e.strerror or e}); "
                            f"set XDG_CACHE_HOME or PURENN_DATA to a writable folder",
                            hint="or pass data_dir= a writable folder") from None
    return directory
