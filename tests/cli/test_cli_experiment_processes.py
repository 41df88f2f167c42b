"""An experiment's processes, for real: SIGTERM stops it saying so (exit 143), Ctrl-C as ever
(130), and an experiment killed outright (SIGKILL) leaves no worker or manager running: they see
their parent gone and exit by themselves. The experiment is ``purenn xor --sweep N --jobs 2`` in
a subprocess; its children are read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HANG_GUARD = 60  # seconds: far longer than anything here takes; only there so a hang fails
# long enough runs that the sweep is still going when it is interrupted (seconds per seed)
COMMAND = [sys.executable, "-m", "purenn_cli.main", "xor", "--sweep", "40", "--epochs", "20000", "--jobs", "2"]

pytestmark = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task").is_dir(), reason="needs Linux's /proc")


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:  # the task ended meanwhile
            pass
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (ended, waiting to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _until(condition, what: str):
    """Poll ``condition()`` until it gives something true; fail after HANG_GUARD seconds."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting: {what}")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, set[int]]:
    """The sweep, running, and its child processes once the manager and both workers are up."""
    with (tmp_path / "out.txt").open("w") as out:  # the child keeps its own copy
        proc = subprocess.Popen(COMMAND, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                env={**os.environ, "COLUMNS": "200"})

    def started() -> set[int]:
        kids = _children(proc.pid)
        spawned = [k for k in kids if "spawn_main" in _cmdline(k)]  # the manager and the workers
        return kids if len(spawned) >= 3 else set()

    return proc, _until(started, "the experiment's manager and two workers")


@pytest.mark.parametrize("signum, code, says", [
    (signal.SIGTERM, 143, "interrupted (SIGTERM): the runs were stopped and nothing was written"),
    (signal.SIGINT, 130, "interrupted (Ctrl-C)"),
])
def test_a_signal_stops_the_experiment_and_says_which(tmp_path, signum, code, says):
    proc, children = _start(tmp_path)
    proc.send_signal(signum)
    assert proc.wait(timeout=HANG_GUARD) == code
    output = " ".join((tmp_path / "out.txt").read_text().split())
    assert says in output and "Traceback" not in output, output
    if signum == signal.SIGTERM:
        assert "Ctrl-C" not in output
    _until(lambda: not any(_running(c) for c in children), "the workers and manager to end")


def test_killing_the_experiment_leaves_no_worker_or_manager_running(tmp_path):
    proc, children = _start(tmp_path)
    assert len(children) >= 3
    proc.kill()  # SIGKILL: the experiment cannot stop anything itself
    proc.wait(timeout=HANG_GUARD)
    _until(lambda: not [c for c in children if _running(c)],
           f"the orphans {[(c, _cmdline(c)[:80]) for c in children if _running(c)]} to exit")
