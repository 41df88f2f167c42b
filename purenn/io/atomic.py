"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file in the target's own directory (so the final rename stays on one
file system), is flushed and ``fsync``-ed, then ``os.replace``-d over the target in one step. If
anything fails before that step (an exception, a full disk, Ctrl-C, a ``SIGTERM``) the temporary
file is removed and the old file, if there was one, is left exactly as it was.

What may be written: :func:`check_writable` says, before any work starts, whether a path can be
(the path is not empty, its folder exists and is writable, and the target is missing or a regular
file: a directory, device, FIFO or socket is never replaced, symlinks followed when deciding).
``atomic_writer`` runs the same check itself, and again just before the rename.

Temporary files are named ``.NAME.<pid>.<random>.tmp``, next to ``NAME``. A process killed
outright (``SIGKILL``, a power cut) cannot clean up, so each write first removes the temporary
files of its own target left by processes that no longer exist (never those of a live writer).

Every error names the path the caller gave, never the temporary file. For reading,
:func:`read_regular_file` refuses the same special files (opening a FIFO to read would wait
forever for a writer). The new file keeps the old
file's permission bits, or gets the usual ``0o666 & ~umask`` when it is new. A symlink at
``path`` is replaced by a regular file (when it points to one, or nowhere).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

from purenn.errors import ArgumentError

__all__ = [
    "check_writable", "atomic_writer", "atomic_write_bytes", "atomic_write_text", "read_regular_file",
    "same_file", "check_distinct", "process_alive",
]

_MODES = ("wb", "w", "wt")
_STORAGE_ERRNOS = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EIO", "EFBIG", "EROFS")
                   if hasattr(errno, name)}
_SIGTERM_EXIT = 128 + signal.SIGTERM  # the shell's exit status for a process ended by SIGTERM
_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~purenn.errors.ArgumentError` naming ``path`` unless it can be written
    atomically: it is not empty and does not end in a separator, its folder exists and is a
    writable directory, and ``path`` is missing or a regular file (symlinks followed).

    Cheap, and writes nothing: call it before a long computation whose result goes to ``path``.
    """
    where = os.fspath(path)
    if where == "":
        raise ArgumentError("cannot write to an empty path; give a file name")
    if os.path.basename(where) == "":
        raise ArgumentError(f"cannot write {where!r}: it names a folder, not a file")
    _check_folder(where, os.path.dirname(os.path.abspath(where)))
    _check_target(where)


def _check_folder(where: str, folder: str) -> None:
    if not os.path.exists(folder):
        raise ArgumentError(f"cannot write {where!r}: folder {folder!r} does not exist")
    if not os.path.isdir(folder):
        raise ArgumentError(f"cannot write {where!r}: {folder!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArgumentError(f"cannot write {where!r}: folder {folder!r} is not writable")


def _check_target(where: str) -> None:
    """``where`` must be missing (a dangling symlink counts as missing) or a regular file."""
    try:
        mode = os.stat(where).st_mode  # follows symlinks: a link to /dev/null is a device
    except (FileNotFoundError, NotADirectoryError):
        return
    except (OSError, ValueError) as e:  # ValueError: an embedded NUL byte
        raise ArgumentError(f"cannot write {where!r}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(mode):
        raise ArgumentError(
            f"cannot write {where!r}: it is {_kind(mode)}; only a regular file is ever replaced"
        )


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: the same path once symlinks and ``..`` are resolved, or
    (both existing) the same inode, as a hard link is."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_distinct(outputs: dict[str, Any], inputs: dict[str, Any] | None = None) -> None:
    """Raise :class:`~purenn.errors.ArgumentError` when two of ``outputs`` name one file, or an
    output names one of ``inputs`` (which writing it would replace). Both map a label for the
    message (``"--save"``, ``"the training state"``) to a path; None values are skipped.

    >>> check_distinct({"--save": "m.npz", "--record": "m.npz"})   # ArgumentError: the same file
    """
    given = [(k, v) for k, v in outputs.items() if v is not None]
    for i, (name, path) in enumerate(given):
        for other, other_path in given[i + 1:]:
            if same_file(path, other_path):
                raise ArgumentError(f"{name} and {other} name the same file ({os.fspath(path)}); "
                                    "give each its own")
        for source, source_path in (inputs or {}).items():
            if source_path is not None and same_file(path, source_path):
                raise ArgumentError(f"{name} ({os.fspath(path)}) is {source}, which this command "
                                    "reads: writing it would replace it; choose another file")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (symlinks followed).

    A directory, FIFO, device or socket raises :class:`~purenn.errors.ArgumentError` ("'x' is a
    FIFO (named pipe), not a regular file") without waiting on it or reading from it; other
    failures raise the ``OSError`` that ``open`` gives (``FileNotFoundError``, ...).

    ``limit``: the most bytes the caller accepts; a larger file raises
    :class:`~purenn.errors.ArgumentError` ("'x' is 5000000 bytes, more than the 1048576 a ...
    may have") before anything is read, and a file that grows while being read is cut off there
    and refused too (never more than ``limit + 1`` bytes are held).
    """
    where = os.fspath(path)
    _refuse_special(where, os.stat(where).st_mode)  # before opening: opening a device may act
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no waiting
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        _refuse_special(where, info.st_mode)  # the file opened, whatever came meanwhile
        if limit is None:
            return f.read()
        if info.st_size > limit:
            raise _too_large(where, info.st_size, limit)
        # read(n) sets n bytes aside first: ask for the file's size (plus one, to see it growing)
        data = f.read(info.st_size + 1)
        if len(data) > info.st_size:  # it grew while being read: the rest, a MiB at a time
            chunks, got = [data], len(data)
            while got <= limit and (chunk := f.read(min(1 << 20, limit + 1 - got))):
                chunks.append(chunk)
                got += len(chunk)
            data = b"".join(chunks)
        if len(data) > limit:
            raise _too_large(where, len(data), limit, growing=True)
        return data


def _too_large(where: str, size: int, limit: int, growing: bool = False) -> ArgumentError:
    what = "grew past" if growing else f"is {size} bytes, more than"
    return ArgumentError(f"{where!r} {what} the {limit} bytes this kind of file may have; "
                         "it is not a file purenn wrote (or it is damaged)")


def _refuse_special(where: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise ArgumentError(f"{where!r} is {_kind(mode)}, not a regular file")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb", *,
                  encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on a clean exit it atomically becomes ``path``.

    >>> with atomic_writer("model.npz") as f:
    ...     np.savez(f, w=w)

    ``mode`` is ``"wb"`` (bytes, the default) or ``"w"``/``"wt"`` (text in ``encoding``).
    On an exception inside the block the temporary file is deleted, ``path`` is untouched and the
    exception propagates. A path :func:`check_writable` refuses raises its
    :class:`~purenn.errors.ArgumentError`; a failure of the system (a full disk, say) an
    ``OSError`` naming ``path``. In the main thread, a ``SIGTERM`` arriving while the block runs
    (with no handler of the program's own installed) raises ``SystemExit(143)``, so the
    temporary file is removed on the way out.
    """
    if mode not in _MODES:
        raise ArgumentError(f"atomic_writer: `mode` must be one of {_MODES}, got {mode!r}")
    where = os.fspath(path)
    check_writable(where)
    directory = os.path.dirname(os.path.abspath(where))
    _remove_stale_temporaries(where)
    with _sigterm_raises(), _naming_target(where):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(where), suffix=".tmp")
        try:
            text = "b" not in mode
            with os.fdopen(fd, mode, encoding=encoding if text else None,
                           newline="" if text else None) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _target_mode(where))
            _check_target(where)  # nothing else appeared there meanwhile (a FIFO, a folder)
            os.replace(tmp, where)
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


# --- temporary files --------------------------------------------------------------------------


def _temp_prefix(where: str) -> str:
    return f".{os.path.basename(where)}.{os.getpid()}."


def _temp_pattern(where: str) -> re.Pattern[str]:
    """Names of the temporary files of ``where``'s writers; group 1 is the writer's PID."""
    return re.compile(rf"\.{re.escape(os.path.basename(where))}\.(\d+)\.[A-Za-z0-9_]+\.tmp")


def _remove_stale_temporaries(where: str) -> list[str]:
    """Delete the temporary files of ``where`` whose writer process no longer exists (left by a
    ``SIGKILL`` or a crash); return their names. A live writer's file is never touched."""
    directory = os.path.dirname(os.path.abspath(where))
    pattern = _temp_pattern(where)
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not process_alive(int(match.group(1))) and _is_plain_file(entry):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _is_plain_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` may exist on this machine: False only when the system says there
    is none (so a file it left may be removed); True for a live process, another user's, and a
    number that is no process's (0, negative, too large), whose file is left alone."""
    if pid <= 0:
        return True  # not a PID a writer can have: leave the file alone
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; no such PID type
        return True
    return True


# --- errors and signals -----------------------------------------------------------------------


@contextlib.contextmanager
def _naming_target(where: str) -> Iterator[None]:
    """An ``OSError`` escaping the block about writing ``where`` (see :func:`_about_target`) is
    raised again naming ``where`` alone, never the temporary file; any other passes unchanged."""
    try:
        yield
    except OSError as e:
        if not _about_target(e, where):
            raise  # e.g. a network error in the caller's block: its own message is right
        raise _os_error_naming(e, where) from None


def _about_target(e: OSError, where: str) -> bool:
    """Whether ``e`` names ``where`` or its temporary file, or names no file but is a storage
    failure (a full disk, an I/O error) such as writing the temporary file gives."""
    names = [os.fsdecode(n) for n in (e.filename, e.filename2) if isinstance(n, (str, bytes))]
    if not names:
        return e.errno in _STORAGE_ERRNOS
    pattern = _temp_pattern(where)
    return all(n == where or pattern.fullmatch(os.path.basename(n)) for n in names)


def _os_error_naming(e: OSError, where: str) -> OSError:
    reason = e.strerror or str(e)
    if e.errno is None:
        return OSError(f"cannot write {where!r}: {reason}")
    return OSError(e.errno, f"cannot write {where!r}: {reason}")  # the errno's subclass


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the block runs, ``SIGTERM`` raises ``SystemExit(143)`` instead of ending the process
    on the spot, so cleanup code runs. Only in the main thread, and only when the handler is the
    default one: a program's own handler is left alone."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(_SIGTERM_EXIT)


# --- file modes and durability ----------------------------------------------------------------


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
