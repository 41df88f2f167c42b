"""Atomic file writes (purenn.io.atomic): a write either replaces the file whole or leaves the
old one, with no temporary file left behind and the old file's permissions kept; only regular
files are ever replaced (a real FIFO, and a device node when run as root); every error names the
user's path; stale temporary files of dead writers are removed. Real processes killed by real
signals are in test_atomic_signals.py."""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

import purenn.io.atomic as atomic
from purenn.errors import ArgumentError, CheckpointError, RecordError
from purenn.io.atomic import (
    atomic_write_bytes, atomic_write_text, atomic_writer, check_writable, read_regular_file,
)
from purenn.io.checkpoints import load_checkpoint, save_checkpoint
from purenn.io.records import make_record, read_record, write_record
from purenn.layers import Dense


def test_atomic_write_replaces(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    atomic_write_text(path, "trois\n")
    assert path.read_text() == "trois\n"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_writer(path) as f:
            f.write(b"new partial")
            raise RuntimeError("disk on fire")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_fsync_failure_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("io error")))
    with pytest.raises(OSError, match="io error"):
        atomic_write_bytes(path, b"x")
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_permissions(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write_bytes(path, b"new")
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_atomic_writer_errors(tmp_path):
    with pytest.raises(ValueError, match="`mode` must be one of"):
        with atomic_writer(tmp_path / "x", "ab"):
            pass
    with pytest.raises(ArgumentError, match=r"cannot write '.*/no/x': folder '.*/no' does not exist"):
        atomic_write_bytes(tmp_path / "no" / "x", b"")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- which paths may be written


def test_check_writable_accepts_new_and_regular_files(tmp_path):
    check_writable(tmp_path / "new.npz")
    (tmp_path / "old.npz").write_bytes(b"old")
    check_writable(tmp_path / "old.npz")
    os.symlink(tmp_path / "old.npz", tmp_path / "link.npz")
    check_writable(tmp_path / "link.npz")  # a link to a regular file
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.npz")
    check_writable(tmp_path / "dangling.npz")  # a link to nothing: the target is missing
    assert sorted(os.listdir(tmp_path)) == ["dangling.npz", "link.npz", "old.npz"]  # wrote nothing
    assert (tmp_path / "old.npz").read_bytes() == b"old"


def test_check_writable_refuses_with_the_users_path(tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    cases = [
        ("", "empty path"),
        (f"{tmp_path}/folder/", r"names a folder"),
        (str(tmp_path / "folder"), r"it is a directory"),
        (str(tmp_path), r"it is a directory"),
        (str(tmp_path / "missing" / "m.npz"), r"folder '.*missing' does not exist"),
        (str(tmp_path / "file" / "m.npz"), r"'.*file' is not a folder"),
        (str(tmp_path / "nul\0byte"), r"embedded null"),
    ]
    for path, problem in cases:
        with pytest.raises(ArgumentError, match=problem) as info:
            check_writable(path)
        assert repr(path) in info.value.message or path == ""
        assert ".tmp" not in info.value.message
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError, match=r"cannot write 'folder': it is a directory"):
        check_writable("folder")  # relative paths are named as given


def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: every folder is writable")
        with pytest.raises(ArgumentError, match=r"folder '.*ro' is not writable"):
            check_writable(folder / "m.npz")
    finally:
        os.chmod(folder, 0o755)


def _snapshot(path):
    st = os.lstat(path)
    return st.st_ino, st.st_mode, st.st_rdev, st.st_size, st.st_mtime_ns


def _assert_refused_and_untouched(path, kind):
    before = _snapshot(path)
    with pytest.raises(ArgumentError, match=rf"cannot write '{re.escape(str(path))}': it is {kind}"):
        check_writable(path)
    for write in (lambda: atomic_write_bytes(path, b"new"), lambda: atomic_write_text(path, "new")):
        with pytest.raises(ArgumentError, match=kind):
            write()
    with pytest.raises(CheckpointError, match=kind):
        save_checkpoint(path, Dense(2, 1), Dense(2, 1).init(np.random.default_rng(0)))
    with pytest.raises(RecordError, match=kind):
        write_record(path, _record())
    assert _snapshot(path) == before
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]


def _record():
    return make_record(config={}, seed=0, digest="0" * 64)


def test_a_fifo_is_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _assert_refused_and_untouched(fifo, "a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "link-to-pipe"
    os.symlink(fifo, link)  # symlinks are followed when deciding
    _assert_refused_and_untouched(link, "a FIFO")
    assert os.path.islink(link) and os.readlink(link) == str(fifo)


def test_a_character_device_is_never_replaced(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    null = os.stat("/dev/null")
    device = tmp_path / "null-copy"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, null.st_rdev)
    except PermissionError:
        pytest.skip("this container may not create device nodes")
    _assert_refused_and_untouched(device, "a character device")
    st = os.lstat(device)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev
    assert sorted(os.listdir(tmp_path)) == ["null-copy"]


def test_a_directory_is_never_replaced(tmp_path):
    folder = tmp_path / "out.npz"
    folder.mkdir()
    (folder / "keep").write_text("kept")
    _assert_refused_and_untouched(folder, "a directory")
    assert (folder / "keep").read_text() == "kept"


def test_a_special_file_appearing_during_the_write_is_not_replaced(tmp_path):
    path = tmp_path / "r.json"
    with pytest.raises(ArgumentError, match="it is a FIFO"):
        with atomic_writer(path, "w") as f:
            f.write("{}")
            os.mkfifo(path)  # someone puts a FIFO there while we write
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert os.listdir(tmp_path) == ["r.json"]


# ---------------------------------------------------------------- errors name the user's path


def test_system_errors_name_the_target_never_the_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(OSError, match=rf"cannot write '{re.escape(str(path))}': No space left") as info:
        atomic_write_bytes(path, b"new")
    assert info.value.errno == errno.ENOSPC and ".tmp" not in str(info.value)
    monkeypatch.undo()

    real_replace = os.replace

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link", src, None, dst)

    monkeypatch.setattr(atomic.os, "replace", cross_device)
    with pytest.raises(OSError, match=rf"cannot write '{re.escape(str(path))}'") as info:
        atomic_write_bytes(path, b"new")
    assert ".tmp" not in str(info.value) and info.value.errno == errno.EXDEV
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]


def test_errors_about_other_files_pass_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        with atomic_writer(tmp_path / "out.bin") as f:
            f.write(open(tmp_path / "source.bin", "rb").read())  # noqa: SIM115
    assert info.value.filename == str(tmp_path / "source.bin")
    with pytest.raises(ConnectionError, match="mirror down"):  # e.g. a download in the block
        with atomic_writer(tmp_path / "out.bin"):
            raise ConnectionError("mirror down")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- temporary files


def test_temporary_file_names_carry_the_writers_pid(tmp_path):
    with atomic_writer(tmp_path / "m.npz") as f:
        f.write(b"x")
        (tmp,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert re.fullmatch(rf"\.m\.npz\.{os.getpid()}\.[a-z0-9_]+\.tmp", tmp), tmp
    assert os.listdir(tmp_path) == ["m.npz"]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = _dead_pid()
    live = os.getpid()
    stale = tmp_path / f".m.npz.{dead}.abc123.tmp"
    mine = tmp_path / f".m.npz.{live}.def456.tmp"  # a live writer's (here: this process's)
    other_target = tmp_path / f".other.npz.{dead}.abc123.tmp"
    unrelated = tmp_path / ".m.npz.notes"
    for p in (stale, mine, other_target, unrelated):
        p.write_bytes(b"partial")
    atomic_write_bytes(tmp_path / "m.npz", b"new")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["m.npz", mine.name, other_target.name, unrelated.name]
    )


# ---------------------------------------------------------------- SIGTERM in this process


def test_sigterm_raises_only_while_writing(tmp_path):
    # the signal itself is sent to a child process in test_atomic_signals.py: sent here, a
    # regression would end the test run
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the test runner has its own SIGTERM handler")
    with atomic_writer(tmp_path / "m.npz") as f:
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(SystemExit) as info:
            handler(signal.SIGTERM, None)
        assert info.value.code == 128 + signal.SIGTERM
        f.write(b"x")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(RuntimeError):
        with atomic_writer(tmp_path / "m.npz"):
            raise RuntimeError("failed write")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_programs_own_sigterm_handler_is_left_alone(tmp_path):
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with atomic_writer(tmp_path / "m.npz") as f:
            assert signal.getsignal(signal.SIGTERM) is handler
            f.write(b"x")
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_writing_from_another_thread_works(tmp_path):
    errors = []

    def write():
        try:
            atomic_write_bytes(tmp_path / "m.npz", b"from a thread")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=write)
    t.start()
    t.join()
    assert errors == [] and (tmp_path / "m.npz").read_bytes() == b"from a thread"


# ---------------------------------------------------------------- reading refuses special files too


def _within_seconds(fn, seconds=5.0):
    """Run ``fn`` in a thread; its exception or result, failing if it blocks (opening a FIFO)."""
    outcome = []

    def run():
        try:
            outcome.append(("result", fn()))
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome.append(("error", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert outcome, f"{fn} blocked for {seconds} s"
    return outcome[0]


def test_loaders_refuse_a_fifo_without_waiting_on_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for load, error in [(read_regular_file, ArgumentError), (load_checkpoint, CheckpointError),
                        (read_record, RecordError)]:
        kind, value = _within_seconds(lambda load=load: load(fifo))
        assert kind == "error" and isinstance(value, error), value
        assert f"'{fifo}' is a FIFO (named pipe), not a regular file" in str(value)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_read_regular_file(tmp_path):
    (tmp_path / "f").write_bytes(b"bytes\r\n")
    os.symlink(tmp_path / "f", tmp_path / "link")
    assert read_regular_file(tmp_path / "link") == b"bytes\r\n"
    with pytest.raises(ArgumentError, match="is a directory, not a regular file"):
        read_regular_file(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing")


def test_read_regular_file_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, limit=100) == b"x" * 100  # just at the limit: read
    with pytest.raises(ArgumentError, match="is 100 bytes, more than the 99 bytes"):
        read_regular_file(path, limit=99)  # just above it: refused before reading


def test_check_distinct(tmp_path):
    from purenn.io.atomic import check_distinct

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("{}")
    check_distinct({"--save": a, "--record": b, "--other": None}, {"the record": tmp_path / "c"})
    with pytest.raises(ArgumentError, match=r"--save and --record name the same file"):
        check_distinct({"--save": a, "--record": tmp_path / "x" / ".." / "a.json"})
    (tmp_path / "link.json").symlink_to(a)
    with pytest.raises(ArgumentError, match=r"-o .* is the record, which this command reads"):
        check_distinct({"-o": tmp_path / "link.json"}, {"the record": a})
    os.link(a, tmp_path / "hard.json")
    with pytest.raises(ArgumentError, match="same file"):
        check_distinct({"--save": a, "--record": tmp_path / "hard.json"})


def test_check_distinct_follows_symlinks_to_files_that_do_not_exist_yet(tmp_path):
    """Outputs are usually not there yet, so only resolving symlinks can tell that two of them
    are one file (os.path.samefile needs both to exist): a symlinked folder, and a dangling link."""
    from purenn.io.atomic import check_distinct

    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(ArgumentError, match=r"--save and --record name the same file"):
        check_distinct({"--save": tmp_path / "real" / "m.npz", "--record": tmp_path / "alias" / "m.npz"})
    (tmp_path / "dangling.json").symlink_to(tmp_path / "real" / "state.npz")
    with pytest.raises(ArgumentError, match=r"--record .* is the training state, which this command reads"):
        check_distinct({"--record": tmp_path / "dangling.json"},
                       {"the training state": tmp_path / "real" / "state.npz"})
    assert not (tmp_path / "real" / "m.npz").exists() and not (tmp_path / "real" / "state.npz").exists()
    check_distinct({"--save": tmp_path / "alias" / "m.npz", "--record": tmp_path / "alias" / "r.json"})
