"""Resume equivalence end to end, with real processes: `purenn mnist --checkpoint-dir` stopped by
SIGINT (mid-epoch) or killed by SIGKILL after its first epoch was saved, then `purenn resume`,
gives a record whose digest equals that of the same command never interrupted. For the `mlp`,
`cnn` (dropout) and `resnet` (BatchNorm) presets, on a small stand-in for MNIST."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _mnist_files import write_tiny_mnist
from typer.testing import CliRunner

from purenn_cli.main import app

runner = CliRunner()

# each epoch long enough (about a second here) for a signal to land inside the run
COMMANDS = {
    "mlp": ["--preset", "mlp", "--batch-size", "16", "--limit", "2400"],
    "cnn": ["--preset", "cnn", "--batch-size", "16", "--limit", "2400"],
    "resnet": ["--preset", "resnet", "--batch-size", "16", "--limit", "1000"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """2400 training images: ten bright bands, as tests/cli/conftest.py's tiny_mnist."""
    return write_tiny_mnist(tmp_path_factory.mktemp("resume-data"), train=2400, test=100, seed=1)


def _purenn(*args: str) -> list[str]:
    return [sys.executable, "-m", "purenn_cli.main", *args]


def _command(preset: str, data: Path, folder: Path, record: Path) -> list[str]:
    return ["mnist", *COMMANDS[preset], "--epochs", "2", "--threads", "1", "--data-dir", str(data),
            "--record", str(record), "--checkpoint-dir", str(folder)]


def _digest(record: Path) -> tuple[str, list[str]]:
    r = json.loads(record.read_text())
    return r["digest"], [e["digest"] for e in r["history"]]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict[str, tuple[str, list[str]]]:
    out = {}
    for preset in COMMANDS:
        folder = tmp_path_factory.mktemp(f"whole-{preset}")
        record = folder / "run.json"
        done = subprocess.run(_purenn(*_command(preset, data, folder / "ckpt", record)),
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        out[preset] = _digest(record)
    return out


def _continue_with(output: str) -> list[str]:
    """The command after "Continue with: " in ``output`` (one line: errors are not wrapped)."""
    found = re.search(r"Continue with: (.*)", output)
    assert found, output
    return shlex.split(found.group(1))


def _interrupt(command: list[str], state: Path, how: int, delay: float) -> subprocess.CompletedProcess:
    """Start ``command``, wait until its first training state is saved, wait ``delay`` more
    seconds, send ``how``; return the finished process (with its ``pid``)."""
    proc = subprocess.Popen(_purenn(*command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not state.exists():
        assert proc.poll() is None, f"ended before saving a state: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, "no training state saved in 300 s"
        time.sleep(0.005)
    time.sleep(delay)
    assert proc.poll() is None, "the run finished before the signal: make its epochs longer"
    proc.send_signal(how)
    output, _ = proc.communicate(timeout=300)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, output)
    done.pid = proc.pid  # type: ignore[attr-defined]
    return done


@pytest.mark.parametrize("preset", list(COMMANDS))
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_params(preset, how, data, tmp_path, uninterrupted):
    folder, record = tmp_path / "ckpt", tmp_path / "run.json"
    stopped = _interrupt(_command(preset, data, folder, record), folder / "training.npz", how,
                         delay=0.1 if how == signal.SIGINT else 0.0)
    if how == signal.SIGINT:
        assert stopped.returncode == 130, stopped.stdout
        assert "after step" in stopped.stdout  # stopped mid-epoch, and saved there
        command = _continue_with(stopped.stdout)  # the command it prints, as printed
        assert command == ["purenn", "resume", str(folder), "--record", str(record), "--data-dir", str(data)]
    else:
        assert stopped.returncode == -signal.SIGKILL
        assert (folder / "purenn.lock").exists()  # a SIGKILL leaves its lock behind
        command = ["purenn", "resume", str(folder), "--record", str(record), "--data-dir", str(data)]
    assert not record.exists()  # nothing the run was asked for is written before it ends
    resumed = subprocess.run(_purenn(*command[1:]), capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "continuing" in resumed.stdout
    if how == signal.SIGKILL:  # the dead run's lock, taken over
        assert f"taking over {folder / 'purenn.lock'} from pid {stopped.pid} on" in resumed.stdout
    assert _digest(record) == uninterrupted[preset]  # final params and every epoch's
    assert not (folder / "purenn.lock").exists()  # released at the end


def test_sigterm_saves_and_says_how_to_continue(data, tmp_path, uninterrupted):
    folder, record = tmp_path / "ckpt", tmp_path / "run.json"
    stopped = _interrupt(_command("mlp", data, folder, record), folder / "training.npz",
                         signal.SIGTERM, delay=0.2)
    assert stopped.returncode == 143 and "interrupted by SIGTERM" in stopped.stdout
    assert not (folder / "purenn.lock").exists()  # released on the way out
    # rerunning the same command continues the saved run too
    again = subprocess.run(_purenn(*_command("mlp", data, folder, record)), capture_output=True,
                           text=True, timeout=600, check=False)
    assert again.returncode == 0 and "continuing from epoch" in again.stdout, again.stdout
    assert _digest(record) == uninterrupted["mlp"]


def test_a_folder_holding_another_runs_state_is_refused(data, tmp_path, uninterrupted):
    folder, record = tmp_path / "ckpt", tmp_path / "run.json"
    stopped = _interrupt(_command("mlp", data, folder, record), folder / "training.npz",
                         signal.SIGKILL, delay=0.0)
    assert stopped.returncode == -signal.SIGKILL
    other = _command("mlp", data, folder, record)
    other[other.index("--epochs") + 1] = "4"  # the saved run has 2
    result = runner.invoke(app, other)
    assert result.exit_code == 2
    assert "holds a run with other settings (--epochs: 2 in the saved run, 4 now)" in result.output
    assert f"purenn resume {folder}" in result.output


def test_resume_of_a_folder_without_a_state(tmp_path):
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2 and "holds no training state" in result.output
    (tmp_path / "training.npz").write_bytes(b"not a zip")
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2 and "cannot be continued" in result.output


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs processes")
def test_the_checkpoint_dir_option_needs_a_folder(data, tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["mnist", "--preset", "mlp", "--limit", "10", "--data-dir", str(data),
                                 "--checkpoint-dir", str(tmp_path / "file")])
    assert result.exit_code == 2 and "exists and is not a folder" in result.output
