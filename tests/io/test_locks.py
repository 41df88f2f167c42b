"""Folder locks (purenn.io.locks): a held lock is refused naming its file and owner, a dead
owner's lock on this host is taken over (by exactly one of several runs racing for it), another
host's lock is never taken over, an unreadable one counts as held; with real files and processes."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from purenn.errors import ArgumentError
from purenn.io import locks
from purenn.io.locks import LOCK_FILE, MAX_COMMAND, MAX_LOCK_BYTES, acquire, locked, release

HOST = socket.gethostname()


def _dead_pid() -> int:
    """The pid of a process that has ended (pids are reused only after wrapping around)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout)


@pytest.fixture
def alive():
    """A process of this host that runs for the test's duration; its pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc.pid
    proc.kill()
    proc.wait(timeout=60)


def _owner(**fields) -> dict:
    return {"host": HOST, "pid": _dead_pid(), "started": "2025-01-31T12:00:00+00:00",
            "command": "purenn mnist --checkpoint-dir x", "token": "ab" * 16, **fields}


def _write_lock(folder: Path, **fields) -> dict:
    owner = _owner(**fields)
    (folder / LOCK_FILE).write_text(json.dumps(owner))
    return owner


def _lock_token(folder: Path) -> str:
    return json.loads((folder / LOCK_FILE).read_text())["token"]


def test_acquire_writes_its_owner_and_release_removes_it(tmp_path):
    held = acquire(tmp_path, command="purenn mnist --epochs 3")
    assert held.path == str(tmp_path / LOCK_FILE) and held.replaced is None
    written = json.loads((tmp_path / LOCK_FILE).read_text())
    assert written == {"host": HOST, "pid": os.getpid(), "started": held.owner.started,
                       "command": "purenn mnist --epochs 3", "token": held.owner.token}
    assert release(held) and not (tmp_path / LOCK_FILE).exists()
    assert not release(held)  # already gone


def test_a_lock_held_by_a_running_process_is_refused(tmp_path, alive):
    _write_lock(tmp_path, pid=alive)
    before = (tmp_path / LOCK_FILE).read_bytes()
    with pytest.raises(ArgumentError) as refused:
        acquire(tmp_path)
    message = refused.value.message
    assert f"{tmp_path / LOCK_FILE} is held by pid {alive} on {HOST}" in message
    assert "purenn mnist --checkpoint-dir x" in message and "still running" in message
    assert f"if that process has surely ended, delete {tmp_path / LOCK_FILE}" in message
    assert (tmp_path / LOCK_FILE).read_bytes() == before


def test_a_second_acquire_in_this_process_is_refused(tmp_path):
    with locked(tmp_path) as held:
        with pytest.raises(ArgumentError, match="still running"):
            acquire(tmp_path)
        assert _lock_token(tmp_path) == held.owner.token


def test_another_hosts_lock_is_refused_even_when_its_pid_is_free_here(tmp_path):
    """Whether a process of another host runs cannot be known here: a shared network folder
    must not look free because the pid means nothing on this host."""
    _write_lock(tmp_path, host="node-elsewhere.example")  # a pid no process here has
    with pytest.raises(ArgumentError) as refused:
        acquire(tmp_path)
    message = refused.value.message
    assert f"held by pid {json.loads((tmp_path / LOCK_FILE).read_text())['pid']} on node-elsewhere.example" in message
    assert "another host" in message and f"delete {tmp_path / LOCK_FILE}" in message


def test_a_dead_owners_lock_on_this_host_is_taken_over(tmp_path):
    old = _write_lock(tmp_path)
    with locked(tmp_path, command="purenn resume x") as held:
        assert held.replaced is not None
        assert (held.replaced.pid, held.replaced.token) == (old["pid"], old["token"])
        assert _lock_token(tmp_path) == held.owner.token
        assert not (tmp_path / (LOCK_FILE + ".takeover")).exists()  # released at once
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_stale_takeover_lock_is_taken_over_too(tmp_path):
    """A run killed while taking over leaves its takeover lock: the next one still gets in."""
    old = _write_lock(tmp_path)
    (tmp_path / (LOCK_FILE + ".takeover")).write_text(json.dumps(_owner()))
    with locked(tmp_path) as held:
        assert held.replaced is not None and held.replaced.pid == old["pid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_stale_locks_three_deep_are_refused_not_taken_over(tmp_path):
    """The lock and its takeover lock may be taken over (above); when the takeover lock's own
    takeover lock is stale as well, something keeps killing runs here: refused, for a person."""
    _write_lock(tmp_path)
    for suffix in (".takeover", ".takeover.takeover"):
        (tmp_path / (LOCK_FILE + suffix)).write_text(json.dumps(_owner()))
    with pytest.raises(ArgumentError, match=r"\.takeover\.takeover is held by pid \d+ on .*, whose "
                                            "process has ended, but its takeover locks are stale too"):
        acquire(tmp_path)


def test_a_lock_that_keeps_vanishing_is_given_up_on(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "_create", lambda path, me: False)  # someone else's, each time
    monkeypatch.setattr(locks, "_read", lambda path: None)  # and gone when looked at
    with pytest.raises(ArgumentError, match="keeps changing hands"):
        acquire(tmp_path)


def test_a_live_takeover_lock_means_another_run_is_taking_over(tmp_path, alive):
    _write_lock(tmp_path)
    (tmp_path / (LOCK_FILE + ".takeover")).write_text(json.dumps(_owner(pid=alive)))
    with pytest.raises(ArgumentError, match=f"{LOCK_FILE}.takeover is held by pid {alive}"):
        acquire(tmp_path)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"\xff\xfe not utf-8", "not the JSON of a lock"),
    (b"{\"host\": ", "not the JSON of a lock"),
    (b"[" * 2000 + b"]" * 2000, "not the JSON of a lock"),  # deeper than Python recurses
    (b"[1, 2]", "not the fields of a lock"),
    (json.dumps({"host": HOST, "pid": 5}).encode(), "not the fields of a lock"),
])
def test_an_unreadable_lock_counts_as_held(tmp_path, content, reason):
    (tmp_path / LOCK_FILE).write_bytes(content)
    with pytest.raises(ArgumentError) as refused:
        acquire(tmp_path)
    message = refused.value.message
    assert f"{tmp_path / LOCK_FILE} is there but cannot be read as a purenn lock ({reason})" in message
    assert f"delete {tmp_path / LOCK_FILE}" in message
    assert (tmp_path / LOCK_FILE).read_bytes() == content


@pytest.mark.parametrize("field, value", [
    ("pid", 0), ("pid", -1), ("pid", True), ("pid", 2**31), ("pid", "12"), ("host", ""), ("host", 3),
    ("token", None),
])
def test_a_garbled_owner_counts_as_held(tmp_path, field, value):
    _write_lock(tmp_path, **{field: value})
    with pytest.raises(ArgumentError, match="cannot be read as a purenn lock"):
        acquire(tmp_path)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_lock_that_is_not_a_file_counts_as_held(tmp_path, kind):
    lock = tmp_path / LOCK_FILE
    lock.mkdir() if kind == "folder" else os.mkfifo(lock)
    with pytest.raises(ArgumentError, match="cannot be read as a purenn lock"):
        acquire(tmp_path)  # never waiting on the FIFO
    assert lock.is_dir() if kind == "folder" else lock.is_fifo()


def test_a_lock_of_max_lock_bytes_is_read_and_one_byte_more_is_not(tmp_path):
    owner = _owner()
    text = json.dumps(owner)
    (tmp_path / LOCK_FILE).write_text(text + " " * (MAX_LOCK_BYTES - len(text)))
    assert (tmp_path / LOCK_FILE).stat().st_size == MAX_LOCK_BYTES
    with locked(tmp_path) as held:  # read, judged stale, taken over
        assert held.replaced is not None and held.replaced.pid == owner["pid"]
    (tmp_path / LOCK_FILE).write_text(text + " " * (MAX_LOCK_BYTES + 1 - len(text)))
    with pytest.raises(ArgumentError, match=f"is {MAX_LOCK_BYTES + 1} bytes, more than the {MAX_LOCK_BYTES}"):
        acquire(tmp_path)


def test_the_command_is_kept_up_to_max_command_characters(tmp_path):
    for n in (MAX_COMMAND, MAX_COMMAND + 1):
        with locked(tmp_path, command="x" * n) as held:
            assert held.owner.command == "x" * MAX_COMMAND
            assert json.loads((tmp_path / LOCK_FILE).read_text())["command"] == "x" * MAX_COMMAND


def test_the_largest_owner_still_fits_in_a_lock(tmp_path, monkeypatch):
    """A command of characters JSON writes as 12 bytes each, on a host with a 255-character
    name: the lock is under MAX_LOCK_BYTES, so it reads back and releases."""
    monkeypatch.setattr(locks.socket, "gethostname", lambda: "h" * 255)
    with locked(tmp_path, command="\U0001F600" * (MAX_COMMAND + 5)) as held:
        assert (tmp_path / LOCK_FILE).stat().st_size <= MAX_LOCK_BYTES
        assert held.owner.command == "\U0001F600" * MAX_COMMAND
    assert not (tmp_path / LOCK_FILE).exists()


def test_release_leaves_a_lock_that_is_no_longer_its_own(tmp_path):
    held = acquire(tmp_path)
    other = _write_lock(tmp_path)  # someone removed ours by hand and took the folder
    assert not release(held)
    assert _lock_token(tmp_path) == other["token"]


def test_locked_releases_when_the_block_fails(tmp_path):
    with pytest.raises(KeyboardInterrupt), locked(tmp_path):
        raise KeyboardInterrupt
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_hostile_owner_is_shown_printably(tmp_path, alive):
    _write_lock(tmp_path, pid=alive, command="\x1b]0;pwned\x07rm -rf ~\n" + "y" * 500)
    with pytest.raises(ArgumentError) as refused:
        acquire(tmp_path)
    message = refused.value.message
    assert "\x1b" not in message and "\x07" not in message and "\n" not in message
    assert "?]0;pwned?rm -rf ~?" in message and "y" * 501 not in message


def test_a_full_disk_while_writing_the_lock_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(locks.os, "fsync", full)
    with pytest.raises(OSError) as failed:
        acquire(tmp_path)
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(tmp_path / LOCK_FILE)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


# --- races ---------------------------------------------------------------------------------------


def _interleave(monkeypatch, at_read: int, competitor) -> None:
    """Run ``competitor()`` (another run's whole acquire) right after this run's ``at_read``-th
    read of a lock file, as if the scheduler had switched to it there."""
    real, seen = locks._read, {"reads": 0, "inside": False}

    def read(path):
        data = real(path)
        if not seen["inside"]:
            seen["reads"] += 1
            if seen["reads"] == at_read:
                seen["inside"] = True
                competitor()
                seen["inside"] = False
        return data

    monkeypatch.setattr(locks, "_read", read)


def _compete(folder: Path, outcomes: list) -> None:
    try:
        outcomes.append(acquire(folder))
    except ArgumentError as e:
        outcomes.append(e)


def test_a_run_that_another_beat_to_a_takeover_refuses(tmp_path, monkeypatch):
    """Both find the dead lock; the other takes it over between our look and our takeover: we
    must refuse, never remove the other's fresh lock."""
    dead = _write_lock(tmp_path)
    other: list = []
    _interleave(monkeypatch, 1, lambda: _compete(tmp_path, other))
    with pytest.raises(ArgumentError, match="still running"):
        acquire(tmp_path)
    assert other[0].replaced.pid == dead["pid"]
    assert _lock_token(tmp_path) == other[0].owner.token


def test_a_run_arriving_during_a_takeover_is_refused(tmp_path, monkeypatch):
    """The other run looks while we hold the takeover lock, between our check that the lock is
    still the dead one and its removal: it must wait its turn (refused), not take over too."""
    dead = _write_lock(tmp_path)
    other: list = []
    _interleave(monkeypatch, 2, lambda: _compete(tmp_path, other))
    held = acquire(tmp_path)
    assert held.replaced is not None and held.replaced.pid == dead["pid"]
    assert isinstance(other[0], ArgumentError) and ".takeover is held by" in other[0].message
    assert _lock_token(tmp_path) == held.owner.token


RACER = """
import os, sys, time
from purenn.errors import ArgumentError
from purenn.io.locks import acquire, release
folder, go, done, ready = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
try:
    held = acquire(folder)
except ArgumentError:
    print("refused", flush=True)
    sys.exit(0)
print("won", flush=True)
while not os.path.exists(done):  # hold it until every racer has tried
    time.sleep(0.001)
release(held)
"""


@pytest.mark.parametrize("round_", range(3))
def test_of_several_processes_racing_for_a_dead_lock_exactly_one_gets_it(tmp_path, round_):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _write_lock(folder)
    go, done = tmp_path / "go", tmp_path / "done"
    ready = [tmp_path / f"ready{i}" for i in range(6)]
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), str(go), str(done), str(r)],
                               stdout=subprocess.PIPE, text=True) for r in ready]
    deadline = time.monotonic() + 120  # a hang guard only
    while not all(r.exists() for r in ready):  # every racer waits for the go
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.01)
    go.touch()
    try:
        said = [r.stdout.readline().strip() for r in racers]  # each says one word, then waits or ends
    finally:
        done.touch()
        for r in racers:
            r.communicate(timeout=60)
    assert sorted(said) == ["refused"] * 5 + ["won"], said
    assert all(r.returncode == 0 for r in racers)
    assert not (folder / LOCK_FILE).exists()  # the winner released it when it ended
