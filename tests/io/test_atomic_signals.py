"""Interrupted saves leave no litter (purenn.io.atomic), with real processes and real signals: a
child process writes slowly inside ``atomic_writer``; SIGTERM or SIGINT ends it with the temporary
file removed and the old file intact; after SIGKILL (which nothing can catch) the temporary file
stays, and the next save to the same path removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from purenn.io.atomic import atomic_write_bytes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Writes to argv[1] forever (a chunk every 10 ms) inside atomic_writer, after saying "started".
# SIGINT gets Python's usual handler back: a job started in the background may inherit it ignored.
_SLOW_WRITER = textwrap.dedent("""
    import signal, sys, time
    from purenn.io.atomic import atomic_writer
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with atomic_writer(sys.argv[1]) as f:
        f.write(b"new" * 1000)
        f.flush()
        print("started", flush=True)
        while True:
            f.write(b"more" * 1000)
            f.flush()
            time.sleep(0.01)
""")


def _start_writer(path):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line != "started\n":
        proc.kill()
        raise AssertionError(f"the writer did not start: {line!r} {proc.communicate()[1]}")
    return proc


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


@pytest.mark.parametrize("signum, returncode", [
    (signal.SIGTERM, 128 + signal.SIGTERM),  # SystemExit(143), as a shell reports a TERM
    (signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt: Python ends by SIGINT itself
])
def test_terminated_writer_leaves_no_temporary_file(tmp_path, signum, returncode):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old contents")
    proc = _start_writer(path)
    assert len(_temporaries(tmp_path)) == 1  # the write is under way
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == returncode, err
    assert _temporaries(tmp_path) == [], err
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_after_sigkill_the_next_save_removes_the_stale_temporary_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old contents")
    proc = _start_writer(path)
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    (stale,) = _temporaries(tmp_path)  # nothing could clean up
    assert stale.startswith(f".model.npz.{proc.pid}.")
    assert path.read_bytes() == b"old contents"

    atomic_write_bytes(path, b"saved again")
    assert _temporaries(tmp_path) == []
    assert path.read_bytes() == b"saved again"


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    path = tmp_path / "model.npz"
    proc = _start_writer(path)
    try:
        (theirs,) = _temporaries(tmp_path)
        atomic_write_bytes(path, b"ours")  # another save to the same path meanwhile
        assert _temporaries(tmp_path) == [theirs]
        assert path.read_bytes() == b"ours"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert _temporaries(tmp_path) == []
