"""Downloading one file: from the first of its mirrors that serves it with the right SHA-256,
written atomically, so a failed or tampered download leaves nothing behind. This module never
prints; :mod:`purenn.io.datasets` downloads a data set's files with it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from purenn.errors import DownloadError
from purenn.io.atomic import atomic_writer

__all__ = ["Opener", "open_url", "fetch_file", "sha256_file"]

#: ``opener(url)`` returns a context manager with ``read(n)``; :func:`open_url` by default.
Opener = Callable[[str], Any]


def open_url(url: str) -> Any:
    """``urllib.request.urlopen(url)``, giving up on a mirror silent for 60 seconds."""
    return urllib.request.urlopen(url, timeout=60)


def fetch_file(name: str, sha256: str, directory: str | os.PathLike[str],
               mirrors: Sequence[str], *, opener: Opener | None = None) -> Path:
    """Download ``name`` from the first mirror that serves it with the right SHA-256.

    ``directory`` is created if missing, but not its parent: a mistyped path is refused. The
    bytes go to a temp file in ``directory`` (:func:`purenn.io.atomic.atomic_writer`) that is
    moved into place only once verified; on any failure nothing is left behind. Raises
    :class:`DownloadError` listing each mirror's failure if none worked.
    """
    opener = opener or open_url
    directory = Path(directory)
    _make_download_folder(directory, name)
    failures = []
    for base in mirrors:
        url = base if base.endswith(name) else base.rstrip("/") + "/" + name
        try:
            return _fetch_from(url, directory / name, sha256, opener)
        except _ChecksumMismatch as e:
            failures.append(f"  {url}: SHA-256 {e} does not match the expected {sha256}; refused")
        except (OSError, ValueError) as e:  # URLError, HTTPError, timeouts are OSErrors
            failures.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {name} into {directory}; every mirror failed:\n"
                        + "\n".join(failures))


def _make_download_folder(directory: Path, name: str) -> None:
    """Create ``directory`` (not its parents) and check it is writable."""
    try:
        directory.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise DownloadError(f"cannot create {directory} to download {name} into: its parent "
                            f"folder {directory.parent} does not exist") from None
    except OSError as e:
        raise DownloadError(f"cannot create {directory} to download {name} into "
                            f"({e.strerror or e})", hint="pass a writable data_dir") from None
    if not os.access(directory, os.W_OK):
        raise DownloadError(f"cannot write {name} into {directory} (permission denied)",
                            hint="pass a writable data_dir")


def _fetch_from(url: str, path: Path, sha256: str, opener: Opener) -> Path:
    """Download ``url`` to ``path`` if its SHA-256 is ``sha256``; else nothing is written."""
    # atomic_writer moves the file into place only when the block ends cleanly
    with atomic_writer(path) as out, opener(url) as response:
        digest = hashlib.sha256()
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != sha256:
            raise _ChecksumMismatch(digest.hexdigest())
    return path


class _ChecksumMismatch(DownloadError):
    """A downloaded file's SHA-256 (the exception's argument) is not the expected one (one
    mirror's failure: :func:`fetch_file` tries the next)."""


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file at ``path`` (hex), read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
