"""An experiment's processes, for real: SIGTERM stops it saying so (exit 143), Ctrl-C as ever
(130), and an experiment killed outright (SIGKILL) leaves no worker or manager running: they see
their parent gone and exit by themselves (``purenn xor --sweep N --jobs 2`` in a subprocess; its
children are read from /proc). An experiment interrupted by SIGINT, then SIGTERM, and continued
gives the uninterrupted one's record, every digest; a run stopped mid-way continues from its
training state."""

from __future__ import annotations

import json
import os
import shutil
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


# --- an interrupted experiment loses nothing ----------------------------------------------------

# 6 runs (lr x seeds) of about a second each, one at a time
EXPERIMENT = ["mnist", "--preset", "mlp", "--epochs", "2", "--limit", "200", "--batch-size", "4",
              "--threads", "1", "--seeds", "0-2", "--set", "lr=1e-3,4e-3"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from _mnist_files import write_tiny_mnist

    return write_tiny_mnist(tmp_path_factory.mktemp("data"), train=200, test=50)


def _purenn(args, cwd, out):
    with (cwd / out).open("w") as f:
        return subprocess.Popen([sys.executable, "-m", "purenn_cli.main", *args], stdout=f,
                                stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def _finished(path: Path) -> int:
    """How many runs the experiment record at ``path`` holds finished (0 before it exists)."""
    try:
        return json.loads(path.read_text())["summary"]["ok"]
    except (OSError, ValueError, KeyError):
        return 0


def _digests(path: Path) -> list:
    record = json.loads(path.read_text())
    return [(r["group"], r["seed"], r["status"], r["digest"]) for r in record["runs"]]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    proc = _purenn([*EXPERIMENT, "--jobs", "1", "--data-dir", str(tiny_data), "--record", "exp.json"], folder, "out.txt")
    assert proc.wait(timeout=HANG_GUARD * 3) == 0, (folder / "out.txt").read_text()
    return folder


def test_an_experiment_interrupted_twice_continues_to_the_uninterrupted_result(tiny_data, uninterrupted, tmp_path):
    args = [*EXPERIMENT, "--data-dir", str(tiny_data), "--record", "exp.json"]
    record = tmp_path / "exp.json"
    # Ctrl-C after 2 runs have finished: they are kept, the others are not started
    proc = _purenn([*args, "--jobs", "1"], tmp_path, "first.txt")
    _until(lambda: _finished(record) >= 2, "two runs to finish")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=HANG_GUARD) == 130
    said = " ".join((tmp_path / "first.txt").read_text().split())
    kept = _finished(record)
    assert 2 <= kept <= 3 and "Traceback" not in said  # runs of a second, stopped within 0.1 s of the 2nd
    assert (f"interrupted (Ctrl-C): the runs in progress were stopped; {kept} finished run(s) of "
            f"6 are kept in exp.json. Continue with: purenn resume exp.json (or run the same command "
            "again)") in said, said
    statuses = [s for _, _, s, _ in _digests(record)]
    assert statuses == ["ok"] * kept + ["not_started"] * (6 - kept)
    # the same command again (in two workers now) continues it; SIGTERM once 4 have finished
    proc = _purenn([*args, "--jobs", "2"], tmp_path, "second.txt")
    _until(lambda: _finished(record) >= kept + 1, "another run to finish")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD) == 143
    said = " ".join((tmp_path / "second.txt").read_text().split())
    assert f"continuing exp.json: {kept} of 6 runs finished before" in said
    assert "interrupted (SIGTERM): the runs in progress were stopped" in said and "Traceback" not in said
    # purenn resume runs what is missing, and the result is the uninterrupted one, every digest
    proc = _purenn(["resume", "exp.json", "--data-dir", str(tiny_data)], tmp_path, "third.txt")
    assert proc.wait(timeout=HANG_GUARD * 2) == 0, (tmp_path / "third.txt").read_text()
    assert _digests(record) == _digests(uninterrupted / "exp.json")
    whole = json.loads((uninterrupted / "exp.json").read_text())
    for run in json.loads(record.read_text())["runs"]:
        mine = json.loads((tmp_path / run["record"]).read_text())
        theirs = json.loads((uninterrupted / run["record"]).read_text())
        assert [h["digest"] for h in mine["history"]] == [h["digest"] for h in theirs["history"]]
        assert mine["digest"] == theirs["digest"] == run["digest"]
    assert sorted(p.name for p in tmp_path.glob("exp*")) == sorted(
        ["exp.json", *(r["record"] for r in whole["runs"])])  # nothing else written
    # each run's provenance holds the command line that ran it
    commands = {tuple(r["provenance"]["command"][1:3]) for r in json.loads(record.read_text())["runs"]}
    assert commands == {("mnist", "--preset"), ("resume", "exp.json")}


def test_a_run_interrupted_mid_way_resumes_from_its_checkpoint(tiny_data, uninterrupted, tmp_path):
    args = [*EXPERIMENT, "--jobs", "1", "--data-dir", str(tiny_data), "--record", "exp.json",
            "--checkpoint-dir", "states"]
    state = tmp_path / "states" / "g0-seed0" / "training.npz"
    proc = _purenn(args, tmp_path, "first.txt")
    _until(state.exists, "the first run to save its state after epoch 1")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=HANG_GUARD) == 130
    assert _finished(tmp_path / "exp.json") == 0  # stopped in its second epoch, or just after
    # the state is what the run continues from: a damaged one fails that run, naming it
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copytree(tmp_path / "states", damaged / "states")
    shutil.copy(tmp_path / "exp.json", damaged / "exp.json")
    (damaged / "states" / "g0-seed0" / "training.npz").write_bytes(b"PK\x03\x04 not an archive")
    proc = _purenn(["resume", "exp.json", "--data-dir", str(tiny_data), "--checkpoint-dir", "states"],
                   damaged, "out.txt")
    assert proc.wait(timeout=HANG_GUARD * 2) == 1
    failed = [r for r in json.loads((damaged / "exp.json").read_text())["runs"] if r["status"] != "ok"]
    assert [(r["group"], r["seed"]) for r in failed] == [(0, 0)] and "training.npz" in failed[0]["error"]
    proc = _purenn(["resume", "exp.json", "--data-dir", str(tiny_data), "--checkpoint-dir", "states"],
                   tmp_path, "second.txt")
    assert proc.wait(timeout=HANG_GUARD * 2) == 0, (tmp_path / "second.txt").read_text()
    assert _digests(tmp_path / "exp.json") == _digests(uninterrupted / "exp.json")
    first = json.loads((tmp_path / "exp.g0.seed0.json").read_text())
    assert [h["digest"] for h in first["history"]] == [
        h["digest"] for h in json.loads((uninterrupted / "exp.g0.seed0.json").read_text())["history"]]
