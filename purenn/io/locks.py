"""Lock files: one run at a time uses a folder (a ``--checkpoint-dir``), from any process or host.

A lock is a small JSON file, ``FOLDER/purenn.lock``, created with ``O_CREAT | O_EXCL`` (one
creator wins, on local disks and on NFSv3 or later alike) and holding its owner::

    {"host": "node7", "pid": 4242, "started": "2025-01-31T12:00:00+00:00",
     "command": "purenn mnist --checkpoint-dir runs/a", "token": "<random hex>"}

An existing lock is judged by its owner: from this host with a process that is gone (``kill(pid,
0)`` finds none), it is stale and taken over (:attr:`HeldLock.replaced` says from whom); from
this host and running, from another host (whether that process runs cannot be known from here:
a shared network folder must not look free because its pid means nothing here), or unreadable,
it is held, and :func:`acquire` raises :class:`~purenn.errors.ArgumentError` naming the lock
file, its owner, and how to remove it if the owner has surely ended.

Taking over is race-safe: the stale lock is removed only while holding its *takeover lock*
(``purenn.lock.takeover``, a lock of the same kind, itself taken over the same way if its holder
died), and only if it still holds the stale owner's token; then the lock is created as usual, so
of several runs finding one stale lock exactly one gets it. :func:`release` removes a lock only
while it still holds this owner's token.

Why not an OS lock (``fcntl``/``flock``, as the ``filelock`` and ``fasteners`` packages use): it
records no owner to name in a refusal, and on network folders it is unsupported or unreliable
(and a folder that looks unlocked is how two runs would overwrite each other's state).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import socket
from collections.abc import Iterator

import attrs

from purenn.errors import ArgumentError
from purenn.io.atomic import process_alive, read_regular_file

__all__ = [
    "LOCK_FILE",
    "MAX_COMMAND",
    "MAX_LOCK_BYTES",
    "HeldLock",
    "LockOwner",
    "acquire",
    "lock_path",
    "locked",
    "release",
]

LOCK_FILE = "purenn.lock"
MAX_LOCK_BYTES = 4096  # a lock purenn writes is a few hundred bytes; a larger file is not one
# characters of the owner's command kept in its lock (the rest cut off): at most 12 bytes each
# in JSON, with a host name of up to 255 characters the lock stays under MAX_LOCK_BYTES
MAX_COMMAND = 150
_TAKEOVER = ".takeover"
_MAX_DEPTH = 2  # a lock, its takeover lock, and the takeover lock's own: no deeper
_ATTEMPTS = 5  # a lock that vanishes between two looks (its owner ended) is tried again


@attrs.frozen
class LockOwner:
    """Who holds a lock: the host's name, the process id there, when it started (ISO 8601, UTC),
    its command line, and a random token telling two owners with the same pid apart."""

    host: str
    pid: int
    started: str
    command: str
    token: str

    def describe(self) -> str:
        """``"pid 4242 on node7 (started 2025-..., purenn mnist ...)"``, printable whatever the
        file held."""
        return (f"pid {self.pid} on {_printable(self.host)} (started {_printable(self.started)}: "
                f"{_printable(self.command)})")


@attrs.frozen
class HeldLock:
    """A lock this process holds: its file, its owner (this process), and the stale owner it
    was taken over from (None when the folder was free)."""

    path: str
    owner: LockOwner
    replaced: LockOwner | None = None


def lock_path(folder: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(folder), LOCK_FILE)


def acquire(folder: str | os.PathLike[str], *, command: str = "") -> HeldLock:
    """Take ``folder``'s lock for this process (``command``: what it runs, kept in the lock for
    the messages of others), taking over a stale one; :class:`ArgumentError` when it is held (see
    the module's docstring). The folder must exist; failing to create the file (a read-only
    folder, a full disk) raises the ``OSError``, naming the lock file."""
    path = lock_path(folder)
    me = LockOwner(socket.gethostname(), os.getpid(),
                   datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   command[:MAX_COMMAND], secrets.token_hex(16))
    return HeldLock(path, me, _acquire(path, me, depth=0))


def release(lock: HeldLock) -> bool:
    """Remove ``lock``'s file if it is still this owner's; whether it was."""
    return _release(lock.path, lock.owner)


@contextlib.contextmanager
def locked(folder: str | os.PathLike[str], *, command: str = "") -> Iterator[HeldLock]:
    """:func:`acquire` for the block, released on leaving it, however it is left."""
    held = acquire(folder, command=command)
    try:
        yield held
    finally:
        release(held)


def _acquire(path: str, me: LockOwner, depth: int) -> LockOwner | None:
    """Create ``path`` for ``me``; the stale owner replaced, or None."""
    for _ in range(_ATTEMPTS):
        if _create(path, me):
            return None
        seen = _read(path)
        if seen is None:
            continue  # released meanwhile: try again
        owner = _parse(path, seen)
        if not _stale(owner):
            raise _held(path, owner)
        if depth >= _MAX_DEPTH:
            raise _held(path, owner, stale=True)
        _remove_stale(path, seen, me, depth)
        if _create(path, me):
            return owner
    raise ArgumentError(f"{path} keeps changing hands (other runs are starting in this folder); "
                        "try again, or use another folder")


def _remove_stale(path: str, seen: bytes, me: LockOwner, depth: int) -> None:
    """Delete ``path`` if it still holds ``seen``, under its takeover lock (which another run
    taking over the same lock holds too: then that one's refusal is raised)."""
    takeover = path + _TAKEOVER
    _acquire(takeover, me, depth + 1)
    try:
        if _read(path) == seen:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    finally:
        _release(takeover, me)


def _create(path: str, me: LockOwner) -> bool:
    """Create ``path`` holding ``me``; False if it exists."""
    data = json.dumps(attrs.asdict(me)).encode()
    if len(data) > MAX_LOCK_BYTES:  # not with MAX_COMMAND's cut, unless the host name is absurd
        raise ArgumentError(f"cannot write the lock {path}: its owner takes {len(data)} bytes, "
                            f"more than the {MAX_LOCK_BYTES} a lock may have")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        return False
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException as e:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(e, OSError) and e.filename is None:  # a full disk: the system's own
            e.filename = path  # error, naming the file
        raise
    os.close(fd)
    return True


def _read(path: str) -> bytes | None:
    """The lock file's bytes; None when there is none."""
    try:
        return read_regular_file(path, limit=MAX_LOCK_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ArgumentError as e:  # a folder, FIFO or device there, or too large
        raise _unreadable(path, e.message) from None
    except OSError as e:
        raise _unreadable(path, e.strerror or str(e)) from None


def _parse(path: str, data: bytes) -> LockOwner:
    try:
        fields = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _unreadable(path, "empty" if not data else "not the JSON of a lock") from None
    if not isinstance(fields, dict) or set(fields) != {f.name for f in attrs.fields(LockOwner)}:
        raise _unreadable(path, "not the fields of a lock")
    pid = fields["pid"]
    strings = all(isinstance(fields[k], str) for k in ("host", "started", "command", "token"))
    if not (strings and fields["host"] and type(pid) is int and 0 < pid < 2**31):
        raise _unreadable(path, "its owner's host or pid is garbled")
    return LockOwner(**fields)


def _stale(owner: LockOwner) -> bool:
    """Whether ``owner`` surely no longer runs: from this host, its process gone."""
    return owner.host == socket.gethostname() and not process_alive(owner.pid)


def _held(path: str, owner: LockOwner, stale: bool = False) -> ArgumentError:
    who = owner.describe()
    if stale:
        why = "whose process has ended, but its takeover locks are stale too"
    elif owner.host == socket.gethostname():
        why = "which is still running: another run is using this folder"
    else:
        why = (f"on another host: whether it still runs cannot be known from here "
               f"({_printable(socket.gethostname())})")
    return ArgumentError(f"{path} is held by {who}, {why}; wait for it to end or use another "
                         f"folder; if that process has surely ended, delete {path} and try again")


def _unreadable(path: str, reason: str) -> ArgumentError:
    return ArgumentError(f"{path} is there but cannot be read as a purenn lock ({reason}); another "
                         "run may be creating it this moment, so the folder counts as in use; if no "
                         f"run is using this folder, delete {path} and try again")


def _release(path: str, me: LockOwner) -> bool:
    try:
        seen = _read(path)
        if seen is None or _parse(path, seen) != me:
            return False
        os.unlink(path)
    except (ArgumentError, OSError):
        return False
    return True


def _printable(text: str, limit: int = 200) -> str:
    """``text`` with characters that would act on a terminal (escapes, newlines) shown as ``?``,
    cut to ``limit`` characters: lock files are read from shared folders."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")

