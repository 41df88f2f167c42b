"""`--checkpoint-dir` and `purenn resume` with hostile or shared folders: one run at a time holds a
folder (its lock names the owner; a dead owner's lock on this host is taken over, another host's
never), outputs that would replace the training state, the lock or each other are refused up
front, resume writes only the files named on its own command line, a folder that cannot be
written is refused before training, and a disk that fills up during the run costs a warning, not
the run."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _mnist_files import write_tiny_mnist
from typer.testing import CliRunner

import purenn.io.atomic
import purenn.io.locks
import purenn_cli.mnist
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn_cli.checkpoint_dir import MAX_SHOWN_PATH
from purenn_cli.main import app
from purenn_cli.signals import sigterm_exits

runner = CliRunner()
HOST = socket.gethostname()
LOCK = "purenn.lock"


def _flat(output: str) -> str:
    return " ".join(output.split())  # rich may wrap long lines


def _mnist(data: Path, *args: str) -> list[str]:
    return ["mnist", "--preset", "seed", "--epochs", "2", "--limit", "50", "--threads", "1",
            "--data-dir", str(data), *args]


def _invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return _flat(result.output)


def _purenn(*args: str) -> list[str]:
    return [sys.executable, "-m", "purenn_cli.main", *args]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60, check=True)
    return int(done.stdout)


def _write_lock(folder: Path, host: str = HOST, pid: int | None = None) -> bytes:
    text = json.dumps({"host": host, "pid": _dead_pid() if pid is None else pid,
                       "started": "2025-01-31T12:00:00+00:00", "command": "purenn mnist --seed 7",
                       "token": "cd" * 16}).encode()
    (folder / LOCK).write_bytes(text)
    return text


# --- one run at a time -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory) -> Path:
    return write_tiny_mnist(tmp_path_factory.mktemp("slow-data"), train=2400, test=100, seed=1)


def test_a_second_run_on_a_busy_folder_is_refused_while_the_first_runs(slow_data, tmp_path):
    """Real processes: while one run trains in the folder, another `purenn mnist` and a `purenn
    resume` of it are refused, naming the lock and its owner; the first is untouched by them."""
    folder = tmp_path / "ckpt"
    first_record, second_record = tmp_path / "first.json", tmp_path / "second.json"
    command = ["mnist", "--preset", "mlp", "--batch-size", "16", "--limit", "2400", "--epochs", "50",
               "--threads", "1", "--data-dir", str(slow_data), "--checkpoint-dir", str(folder)]
    first = subprocess.Popen(_purenn(*command, "--record", str(first_record)), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300  # hang guard
        while not (folder / "training.npz").exists():  # it holds the lock and has saved an epoch
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        state = (folder / "training.npz").read_bytes()
        for second in (command + ["--record", str(second_record)], ["resume", str(folder)]):
            refused = subprocess.run(_purenn(*second), capture_output=True, text=True, timeout=300,
                                     check=False)
            output = _flat(refused.stdout)
            assert refused.returncode == 2, output
            assert f"{folder / LOCK} is held by pid {first.pid} on {HOST}" in output
            assert "still running" in output and f"delete {folder / LOCK}" in output
            assert "epoch" not in output.replace("--epochs", "")  # refused before any training
        assert first.poll() is None, "the first run ended before the others tried: make it longer"
        assert not second_record.exists()
        saved_by_first = load_training_state(folder / "training.npz").state.epoch
        assert saved_by_first >= 1 and state  # the folder is the first run's
    finally:
        first.send_signal(signal.SIGINT)
        output, _ = first.communicate(timeout=300)
    assert first.returncode == 130, output
    assert "the training state is saved in" in output
    assert not (folder / LOCK).exists()  # released on the way out


def test_a_dead_runs_lock_is_taken_over_with_a_message(tiny_mnist, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _write_lock(folder)
    dead = json.loads((folder / LOCK).read_text())["pid"]
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))
    assert f"taking over {folder / LOCK} from pid {dead} on {HOST}" in output
    assert "which is no longer running" in output
    assert not (folder / LOCK).exists() and (folder / "training.npz").exists()


@pytest.mark.parametrize("command", ["mnist", "resume"])
def test_a_lock_from_another_host_is_refused(tiny_mnist, tmp_path, command):
    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))  # a finished run's state
    state = (folder / "training.npz").read_bytes()
    lock = _write_lock(folder, host="node-elsewhere.example")  # its pid is free here
    args = (_mnist(tiny_mnist, "--checkpoint-dir", str(folder)) if command == "mnist"
            else ["resume", str(folder), "--data-dir", str(tiny_mnist)])
    output = _invoke(*args, code=2)
    assert f"{folder / LOCK} is held by pid" in output and "on node-elsewhere.example" in output
    assert "cannot be known from here" in output and f"delete {folder / LOCK}" in output
    assert (folder / LOCK).read_bytes() == lock and (folder / "training.npz").read_bytes() == state


def test_sigterm_outside_training_exits_through_finally_blocks():
    released = []
    with pytest.raises(SystemExit) as ended, sigterm_exits():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)  # interrupted by the signal's exception at once
        finally:
            released.append(True)
    assert ended.value.code == 143 and released == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_test_set_is_predicted_ends_the_command_as_outside_training(
        tiny_mnist, tmp_path, monkeypatch, signum, code):
    """Training ended and its state is saved; a signal during the test-set prediction (inside
    run_preset, where the stop requests still catch it) then ends the command, as it did when
    the prediction ran outside them: nothing is written, and resume writes the outputs."""
    real = purenn_cli.mnist.run_preset

    def signalled_after_training(*args, **kwargs):
        result = real(*args, **kwargs)
        signal.raise_signal(signum)  # a real signal, taken by the run's stop requests
        return result

    monkeypatch.setattr(purenn_cli.mnist, "run_preset", signalled_after_training)
    folder, save = tmp_path / "ckpt", tmp_path / "m.npz"
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), "--save", str(save)), code=code)
    if signum == signal.SIGINT:
        assert "interrupted during training (Ctrl-C): no checkpoint or record was written" in output
    assert not save.exists() and not (folder / LOCK).exists()
    monkeypatch.setattr(purenn_cli.mnist, "run_preset", real)
    output = _invoke("resume", str(folder), "--save", str(save), "--data-dir", str(tiny_mnist))
    assert "the run stopped at the end of epoch 2 of 2; finished; writing its results" in output
    assert save.exists()


# --- outputs that collide ----------------------------------------------------------------------


@pytest.mark.parametrize("option, name", [("--save", "training.npz"), ("--record", "training.npz"),
                                          ("--save", LOCK), ("--record", LOCK)])
def test_outputs_naming_the_state_or_the_lock_are_refused(tiny_mnist, tmp_path, option, name):
    folder = tmp_path / "ckpt"
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), option, str(folder / name)),
                     code=2)
    assert f"{option} ({folder / name}) is the" in output and "writing it would replace it" in output
    assert not folder.exists()  # refused before anything was made
    # and through another spelling of the same path
    folder.mkdir()
    other = tmp_path / "ckpt" / ".." / "ckpt" / name
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), option, str(other)), code=2)
    assert "writing it would replace it" in output and list(folder.iterdir()) == []


def test_resume_refuses_colliding_outputs(tiny_mnist, tmp_path):
    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))
    state = (folder / "training.npz").read_bytes()
    same = str(tmp_path / "run.out")
    for args, says in ((["--save", same, "--record", same], "--save and --record name the same file"),
                       (["--save", str(folder / "training.npz")], "is the training state"),
                       (["--record", str(folder / LOCK)], "is the folder's lock file")):
        output = _invoke("resume", str(folder), "--data-dir", str(tiny_mnist), *args, code=2)
        assert says in output, output
    assert (folder / "training.npz").read_bytes() == state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert sorted(p.name for p in folder.iterdir()) == ["training.npz"]


# --- resume writes only what its own command line names -----------------------------------------


def _craft(folder: Path, outputs: dict) -> None:
    """Rewrite the folder's training state with ``outputs`` as the paths it stores."""
    saved = load_training_state(folder / "training.npz")
    save_training_state(folder / "training.npz", saved.model, saved.state,
                        metadata={**saved.metadata, "outputs": outputs})


def test_resume_never_writes_or_reads_a_path_the_state_file_names(tiny_mnist, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))
    victim, other = tmp_path / "precious.txt", tmp_path / "notes.json"
    victim.write_bytes(b"unrelated data \x00\x01")
    other.write_text('{"mine": true}')
    empty = tmp_path / "no-data"
    empty.mkdir()  # reading the data from here would fail
    _craft(folder, {"save": str(victim), "record": str(other), "data_dir": str(empty)})
    monkeypatch.setenv("PURENN_DATA", str(tiny_mnist))
    output = _invoke("resume", str(folder))
    assert victim.read_bytes() == b"unrelated data \x00\x01"
    assert other.read_text() == '{"mine": true}'
    assert f"the original run was given --save {victim} --record {other} --data-dir {empty}" in output
    assert "resume uses only the paths on its own command line" in output
    assert f"run: purenn resume {folder} --save {victim} --record {other} --data-dir {empty}" in output
    # given on the command line, they are written
    save, record = tmp_path / "m.npz", tmp_path / "r.json"
    output = _invoke("resume", str(folder), "--save", str(save), "--record", str(record))
    assert save.exists() and json.loads(record.read_text())["digest"]
    assert f"the original run was given --data-dir {empty};" in output  # only what was not given


def test_resume_shows_no_unprintable_path_from_the_state_file(tiny_mnist, tmp_path):
    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))
    _craft(folder, {"save": "/tmp/\x1b]0;pwned\x07", "record": "x" * 5000, "data_dir": ["/etc"]})
    result = runner.invoke(app, ["resume", str(folder), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "x" * 5000 not in result.output
    assert "the original run was given" not in result.output


def test_stored_paths_are_shown_up_to_max_shown_path_characters(tiny_mnist, tmp_path):
    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)))
    longest, too_long = "/" + "a" * (MAX_SHOWN_PATH - 1), "/" + "b" * MAX_SHOWN_PATH
    _craft(folder, {"save": longest, "record": too_long})
    output = _invoke("resume", str(folder), "--data-dir", str(tiny_mnist))
    assert f"the original run was given --save {longest};" in output and "b" * 100 not in output


def test_a_stopped_run_prints_the_resume_command_with_its_outputs(tiny_mnist, tmp_path, monkeypatch):
    folder, record = tmp_path / "my ckpt", tmp_path / "run.json"
    _stop_at_once(monkeypatch)
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), "--record", str(record)),
                     code=143)
    assert (f"Continue with: purenn resume '{folder}' --record {record} --data-dir {tiny_mnist}"
            in output)


# --- folders that cannot be written, disks that fill up ------------------------------------------


@pytest.fixture
def read_only(tmp_path):
    """A folder this process cannot write: chmod, or (as root, whom chmod does not stop)
    chattr +i where the file system supports it; otherwise the test is skipped."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = (os.access(folder, os.W_OK) and shutil.which("chattr") is not None and
                 subprocess.run(["chattr", "+i", str(folder)], capture_output=True,
                                check=False).returncode == 0)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("no way to make a folder read-only for this user here")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_read_only_checkpoint_dir_is_refused_before_training(tiny_mnist, read_only):
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(read_only)), code=2)
    assert f"--checkpoint-dir: cannot write '{read_only / 'training.npz'}'" in output
    assert "is not writable" in output and "epoch" not in output.replace("--epochs", "")
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(read_only / "sub")), code=2)
    assert f"--checkpoint-dir: cannot create {read_only / 'sub'}" in output


def test_a_lock_that_cannot_be_created_is_a_clear_refusal(tiny_mnist, tmp_path, monkeypatch):
    """The lock file is the first thing written: a folder that passes the checks but cannot be
    written (a read-only mount seen as writable, a full disk) is refused there."""
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(purenn.io.locks.os, "fsync", full)
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(tmp_path / "ckpt")), code=2)
    assert f"--checkpoint-dir: cannot create the lock file {tmp_path / 'ckpt' / LOCK}" in output
    assert "No space left on device" in output and "epoch" not in output.replace("--epochs", "")


def _full_disk_for(monkeypatch, *names: str) -> None:
    """Writes of these file names fail as on a full disk: creating their temporary file raises
    ENOSPC inside purenn.io.atomic's writer, as a real full disk would there."""
    real = tempfile.mkstemp

    def mkstemp(*args, prefix=None, **kwargs):
        if prefix is not None and any(prefix.startswith(f".{name}.") for name in names):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(purenn.io.atomic.tempfile, "mkstemp", mkstemp)


def test_a_full_disk_during_training_warns_once_and_the_run_finishes(tiny_mnist, tmp_path, monkeypatch):
    folder, record, save = tmp_path / "ckpt", tmp_path / "run.json", tmp_path / "m.npz"
    _full_disk_for(monkeypatch, "training.npz")
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), "--record", str(record),
                             "--save", str(save)))
    assert output.count("could not save the training state") == 1  # two epochs, one warning
    assert (f"could not save the training state to {folder / 'training.npz'} at the end of epoch 1 "
            "of 2") in output
    assert "No space left on device" in output and "cannot be resumed from this point" in output
    assert f"{folder} holds no training state" in output
    assert record.exists() and save.exists() and not (folder / LOCK).exists()
    assert "Traceback" not in output


def test_an_interrupted_run_whose_state_was_not_saved_says_so(tiny_mnist, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    _full_disk_for(monkeypatch, "training.npz")
    _stop_at_once(monkeypatch)
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)), code=143)
    assert "the training state could not be saved" in output and "is saved in" not in output
    assert f"{folder} holds no training state" in output and "Continue with" not in output


@pytest.mark.parametrize("failing, written", [("--save", "--record"), ("--record", "--save")])
def test_an_output_that_cannot_be_written_does_not_stop_the_other(tiny_mnist, tmp_path, monkeypatch,
                                                                   failing, written):
    paths = {"--save": tmp_path / "m.npz", "--record": tmp_path / "r.json"}
    _full_disk_for(monkeypatch, paths[failing].name)
    output = _invoke(*_mnist(tiny_mnist, "--save", str(paths["--save"]), "--record", str(paths["--record"])),
                     code=1)
    assert f"{failing} {paths[failing]} was not written: cannot write '{paths[failing]}': No space left" in output
    assert paths[written].exists() and not paths[failing].exists()


def _stop_at_once(monkeypatch) -> None:
    """Training stops after its first step as if SIGTERM had arrived."""

    class Stop:
        name, exit_code = "SIGTERM", 143

        def __call__(self) -> bool:
            return True

    monkeypatch.setattr(purenn_cli.mnist, "stop_requests", lambda: contextlib.nullcontext(Stop()))


def test_resume_of_a_state_without_an_integrity_digest_says_it_was_not_verified(tiny_mnist, tmp_path,
                                                                                monkeypatch):
    import numpy as np

    folder = tmp_path / "ckpt"
    _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder), "--epochs", "1"))
    path = folder / "training.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["purenn"][()]))
    del header["digest"]  # as written by a purenn from before digests existed
    arrays["purenn"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    monkeypatch.setenv("PURENN_DATA", str(tiny_mnist))
    output = _invoke("resume", str(folder))
    assert f"note: {path} has no integrity digest" in output


def test_a_save_that_succeeds_after_a_failed_one_is_what_the_run_reports(tiny_mnist, tmp_path, monkeypatch):
    """A disk full for a while: epoch 1's save fails, the save made when the run is stopped in
    epoch 2 succeeds, so the run must say its state is saved and how to continue (a failure kept
    after a later save succeeded would say the state could not be saved)."""
    folder, saves = tmp_path / "ckpt", []
    real = tempfile.mkstemp

    def mkstemp(*args, prefix=None, **kwargs):
        if prefix is not None and prefix.startswith(".training.npz."):
            saves.append(prefix)
            if len(saves) == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, prefix=prefix, **kwargs)

    class Stop:  # SIGTERM arriving after epoch 2's first step (epoch 1's save has failed)
        name, exit_code, asked = "SIGTERM", 143, 0

        def __call__(self) -> bool:
            self.asked += bool(saves)  # asked once after epoch 1, then after each step
            return self.asked == 2

    monkeypatch.setattr(purenn.io.atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(purenn_cli.mnist, "stop_requests", lambda: contextlib.nullcontext(Stop()))
    output = _invoke(*_mnist(tiny_mnist, "--checkpoint-dir", str(folder)), code=143)
    assert len(saves) == 2 and output.count("could not save the training state") == 1
    assert f"the training state is saved in {folder}. Continue with: purenn resume {folder}" in output
    assert "could not be saved" not in output
    state = load_training_state(folder / "training.npz").state
    assert (state.epoch, state.step) == (1, 1)
