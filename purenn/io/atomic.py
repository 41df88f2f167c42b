"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file in the target's own directory (so the final rename stays on one
file system), is flushed and ``fsync``-ed, then ``os.replace``-d over the target in one step. If
anything fails before that step (an exception, a full disk, Ctrl-C) the temporary file is removed
and the old file, if there was one, is left exactly as it was.

The new file keeps the old file's permission bits, or gets the usual ``0o666 & ~umask`` when it
is new. The path is used as given: a symlink at ``path`` is replaced by a regular file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_writer", "atomic_write_bytes", "atomic_write_text"]

_MODES = ("wb", "w", "wt")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb", *,
                  encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on a clean exit it atomically becomes ``path``.

    >>> with atomic_writer("model.npz") as f:
    ...     np.savez(f, w=w)

    ``mode`` is ``"wb"`` (bytes, the default) or ``"w"``/``"wt"`` (text in ``encoding``).
    On an exception inside the block the temporary file is deleted, ``path`` is untouched and the
    exception propagates.
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_writer: `mode` must be one of {_MODES}, got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding=encoding if text else None, newline="" if text else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding``, newlines as given."""
    with atomic_writer(path, "w", encoding=encoding) as f:
        f.write(text)


def _target_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) everywhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
