"""Provenance: what a run's result came from, besides its settings. Every run record (and every
run of an experiment) holds it, so that a result can be traced to its data and code, and
``purenn reproduce`` can say which data file differs before it trains.

:func:`provenance` gathers, as plain JSON data:

- ``command``: the exact command line (``sys.argv``) of the process that started the run;
- ``purenn``: purenn's version;
- ``git``: ``{"purenn": ..., "code": ...}``, each ``{"commit": 40 hex digits, "dirty": bool}``
  when that code runs from a git checkout (purenn's own, and the folder of the caller's run
  function), else null; asked of ``git`` itself, within :data:`GIT_SECONDS`;
- ``function``: the run function as ``module:qualname`` (a run of the caller's code);
- ``data_files``: ``{path: SHA-256}`` of each data file the run read (:func:`file_digests`);
- ``samples``: ``{"train": {"count", "sha256"}, "test": ...}``, a digest of the sample indices
  trained and tested on, in order (:func:`indices_digest`).

Files loaded through :mod:`purenn.io.datasets` while :func:`reading` is active are noted
(:func:`note_read`), so a run of the caller's code records the data files purenn loaded for it.
Digests of files are computed once per process for an unchanged file (same size, modification
time and inode). This module never prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from purenn.errors import ArgumentError
from purenn.version import __version__

if TYPE_CHECKING:  # datasets imports this module (note_read): no import of it at load time
    from purenn.io.datasets import Dataset

__all__ = [
    "GIT_SECONDS",
    "code_folder",
    "command_line",
    "data_differences",
    "dataset_files",
    "file_digests",
    "file_sha256",
    "function_name",
    "git_state",
    "indices_digest",
    "note_read",
    "provenance",
    "reading",
    "samples",
]

#: The longest wait, in seconds, for ``git`` to say a folder's commit and whether its tree is
#: dirty (a local repository answers in milliseconds; a huge one, or a hung network file
#: system, gets no more than this and is recorded as unknown).
GIT_SECONDS = 5.0
_INDICES_TAG = b"purenn.sample_indices/1\0"
_HASHED: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> SHA-256
_TRACKERS: list[set[str]] = []
_LOCK = threading.Lock()


def command_line() -> list[str]:
    """This process's command line, as it was given (``sys.argv``)."""
    return [str(a) for a in sys.argv]


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"commit": ..., "dirty": bool}`` of the git checkout holding ``folder`` (dirty: a
    tracked file differs from the commit), or None when it is in none, ``git`` is missing, or it
    does not answer within :data:`GIT_SECONDS`."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None or len(commit.strip()) != 40:
        return None
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if changes is None:
        return None
    return {"commit": commit.strip(), "dirty": bool(changes.strip())}


def _git(folder: str | os.PathLike[str], *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", os.fspath(folder), *args], capture_output=True, text=True,
                              timeout=GIT_SECONDS, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def function_name(fn: Any) -> str:
    """``module:qualname`` of a function (``"study:train"``); ``__main__:train`` for one
    defined in a script run directly."""
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}:{qualname}"


def code_folder(fn: Any) -> Path | None:
    """The folder of the file defining ``fn`` (None when it has none: a builtin, a REPL)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    where = getattr(module, "__file__", None)
    return Path(where).resolve().parent if where else None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of the regular file ``path`` (read a MiB at a time; remembered while the
    file's size, modification time and inode stay the same). An
    :class:`~purenn.errors.ArgumentError` for a missing file or one that is not a regular file
    (a FIFO would never end)."""
    where = os.fspath(path)
    try:
        info = os.stat(where)
    except (OSError, ValueError) as e:
        raise ArgumentError(f"data file {where!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ArgumentError(f"data file {where!r} is not a regular file")
    key = (os.path.abspath(where), info.st_size, info.st_mtime_ns, info.st_ino)
    if key not in _HASHED:
        digest = hashlib.sha256()
        try:
            with open(where, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except OSError as e:
            raise ArgumentError(f"data file {where!r} cannot be read: {e.strerror or e}") from None
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def file_digests(paths: Iterable[str | os.PathLike[str]]) -> dict[str, str]:
    """``{absolute path: SHA-256}`` of each file (:func:`file_sha256`)."""
    return {os.path.abspath(os.fspath(p)): file_sha256(p) for p in paths}


def indices_digest(indices: Any) -> str:
    """The SHA-256 (hex) of a sequence of sample indices, in order: a version tag, then the
    indices as little-endian int64. The same samples in another order give another digest."""
    array = np.asarray(indices)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise ArgumentError(f"sample indices must be a 1-d sequence of integers, got an array of "
                            f"dtype {array.dtype} and shape {array.shape}")
    return hashlib.sha256(_INDICES_TAG + array.astype("<i8").tobytes()).hexdigest()


def samples(**splits: Any) -> dict[str, dict[str, Any]]:
    """``{"train": {"count": n, "sha256": indices_digest(...)}, ...}`` for each split given
    (``samples(train=range(100), test=range(50))``); splits given as None are left out."""
    out = {}
    for name, indices in splits.items():
        if indices is not None:
            array = np.asarray(indices)
            out[name] = {"count": int(array.size), "sha256": indices_digest(array)}
    return out


def dataset_files(dataset: Dataset) -> list[Path]:
    """The files a loaded dataset was read from (the two of each split it holds: ``.gz``, or
    the uncompressed twin the loader takes when there is no ``.gz``), those still there."""
    from purenn.io.datasets import FILES, SPLITS

    found = []
    for split in SPLITS:
        if getattr(dataset, split, None) is None:
            continue
        for part in ("images", "labels"):
            name = FILES[f"{split}_{part}"]
            for candidate in (dataset.directory / name, dataset.directory / name.removesuffix(".gz")):
                if candidate.is_file():
                    found.append(candidate)
                    break
    return found


def note_read(*paths: str | os.PathLike[str]) -> None:
    """Tell every active :func:`reading` block that purenn read these data files."""
    with _LOCK:
        for tracker in _TRACKERS:
            tracker.update(os.path.abspath(os.fspath(p)) for p in paths)


@contextlib.contextmanager
def reading() -> Iterator[set[str]]:
    """While inside, the data files purenn loads (:func:`note_read`) are added to the set the
    block gets, as absolute paths."""
    tracker: set[str] = set()
    with _LOCK:
        _TRACKERS.append(tracker)
    try:
        yield tracker
    finally:
        with _LOCK:
            _TRACKERS.remove(tracker)


def provenance(*, data_files: dict[str, str] | None = None, sample_indices: dict[str, Any] | None = None,
               function: Any = None, command: list[str] | None = None) -> dict[str, Any]:
    """A run's provenance (see the module's docstring): ``data_files`` as
    :func:`file_digests` gives them, ``sample_indices`` as :func:`samples` gives them,
    ``function`` the caller's run function (its name and its checkout's git state), ``command``
    (default: this process's)."""
    here = Path(__file__).resolve().parent
    code = code_folder(function) if function is not None else None
    record: dict[str, Any] = {
        "command": command_line() if command is None else list(command),
        "purenn": __version__,
        "git": {"purenn": git_state(here), "code": None if code is None else git_state(code)},
        "data_files": dict(data_files or {}),
        "samples": dict(sample_indices or {}),
    }
    if function is not None:
        record["function"] = function_name(function)
    return record


def data_differences(recorded: dict[str, str], found: dict[str, str], *, by_name: bool) -> list[str]:
    """What differs between the data files a record names (``{path: SHA-256}``) and the files
    found now: ``by_name`` matches them by file name (a data set found in another folder), else
    by path. One sentence per file that differs or is missing."""
    def key(path: str) -> str:
        return os.path.basename(path) if by_name else path

    now = {key(p): (p, digest) for p, digest in found.items()}
    out = []
    for path, digest in recorded.items():
        if key(path) not in now:
            out.append(f"{key(path)} is not there" + (f" (the run read it from {path})" if by_name else ""))
        elif now[key(path)][1] != digest:
            where, actual = now[key(path)]
            out.append(f"{where} has SHA-256 {actual[:16]}..., the run read one of {digest[:16]}...")
    return out
