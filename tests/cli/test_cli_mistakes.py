"""No user mistake gives a traceback: every option of every command, swept with bad values (nan,
inf, negative, zero, huge, empty, wrong type, impossible paths), ends in a message and an exit
code; and the commands' own edges (bare `purenn`, --version, Ctrl-C, divergence)."""

from __future__ import annotations

from pathlib import Path

import os
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from purenn_cli.main import app

runner = CliRunner()
COMMANDS: dict[str, Any] = typer.main.get_command(app).commands  # type: ignore[attr-defined]
PATHS = {"data_dir", "save", "record", "model", "checkpoint_dir", "run_a", "run_b", "records", "output",
         "json_file"}

NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e400", "2.5", "", "abc"]
HUGE = "99999999999999999999"
# options where a huge value is legitimate and would just run for that long: no huge value
LONG_RUNNING = {("xor", "epochs"), ("xor", "sweep"), ("mnist", "epochs")}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, tiny_mnist):
    """A checkpoint, a run record and a training state of a small run, for evaluate, reproduce,
    summary, diff and resume."""
    folder = tmp_path_factory.mktemp("run")
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--epochs", "1", "--limit", "20",
                                 "--data-dir", str(tiny_mnist), "--save", str(folder / "m.npz"),
                                 "--record", str(folder / "r.json"),
                                 "--checkpoint-dir", str(folder / "ckpt")])
    assert result.exit_code == 0, result.output
    return folder


def invocation(command: str, param: Any, value: str, data: Path, run: Path) -> list[str]:
    """A quick, valid invocation of ``command`` with ``value`` given to ``param``."""
    positional = {"evaluate": [str(run / "m.npz")], "reproduce": [str(run / "r.json")],
                  "summary": [str(run / "m.npz")], "diff": [str(run / "r.json")] * 2,
                  "resume": [str(run / "ckpt")], "plot": [str(run / "r.json")],
                  "compare": [str(run / "r.json")] * 2}
    options = {
        "xor": ["--epochs", "2"],
        "mnist": ["--preset", "seed", "--epochs", "1", "--limit", "8", "--data-dir", str(data)],
        "evaluate": ["--data-dir", str(data)],
        "reproduce": ["--data-dir", str(data)],
        "summary": [],
        "diff": [],
        "resume": [],
        "plot": ["-o", str(run / "plot.png")],
        "compare": [],
        "lr-find": ["--preset", "seed", "--steps", "3", "--limit", "8", "--data-dir", str(data)],
    }[command]
    args = list(positional.get(command, []))
    if param.param_type_name == "argument":
        names = [p.name for p in COMMANDS[command].params if p.param_type_name == "argument"]
        args[names.index(param.name)] = value
        return [command, *args, *options]
    return [command, *args, *options, param.opts[0], value]


def bad_values(command: str, param: Any, tmp_path: Path) -> list[str]:
    if param.name in PATHS:
        fifo = tmp_path / "not-a-regular-file"
        return ["", str(tmp_path), "/nonexistent/dir/file", str(fifo)]
    values = list(NUMBERS)
    if (command, param.name) not in LONG_RUNNING:
        values.append(HUGE)
    return values


def parameters():
    for name, command in sorted(COMMANDS.items()):
        for param in command.params:
            if param.name != "help" and not getattr(param, "is_flag", False):
                yield pytest.param(name, param, id=f"{name}-{param.name}")


def test_the_sweep_covers_every_command():
    assert {p.values[0] for p in parameters()} == {"xor", "mnist", "evaluate", "reproduce", "summary",
                                                   "diff", "resume", "plot", "lr-find", "compare"}


@pytest.mark.parametrize("command, param", list(parameters()))
def test_bad_values_give_a_message_never_a_traceback(command, param, tiny_mnist, small_run, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" is the current folder to a Path option: keep the repo clean
    os.mkfifo(tmp_path / "not-a-regular-file")
    for value in bad_values(command, param, tmp_path):
        args = invocation(command, param, value, tiny_mnist, small_run)
        result = runner.invoke(app, args)
        shown = f"purenn {' '.join(args)}\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit), shown
        assert "Traceback" not in result.output, shown
        if result.exit_code != 0:
            assert "rror" in result.output or "Usage" in result.output, shown


def test_bare_purenn_shows_help_and_succeeds():
    result = runner.invoke(app, [])
    assert result.exit_code == 0 and "Commands" in result.output and "mnist" in result.output


def test_version():
    import purenn

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"purenn {purenn.__version__}"


def test_nan_and_inf_learning_rates_are_refused_before_training():
    for value in ("nan", "inf", "-inf", "0", "-0.1"):
        result = runner.invoke(app, ["xor", "--lr", value])
        assert result.exit_code == 2 and "Invalid value for '--lr': must be a positive number" in result.output


def test_divergence_exits_1_and_writes_nothing(tiny_mnist, tmp_path):
    (tmp_path / "old.json").write_text("keep me")
    result = runner.invoke(app, ["mnist", "--preset", "mlp", "--lr", "1e30", "--limit", "200",
                                 "--epochs", "1", "--data-dir", str(tiny_mnist),
                                 "--save", str(tmp_path / "m.npz"), "--record", str(tmp_path / "old.json")])
    assert result.exit_code == 1, result.output
    assert "training diverged at epoch 1, step" in result.output and "smaller --lr" in result.output
    assert "RuntimeWarning" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "keep me"
    xor = runner.invoke(app, ["xor", "--lr", "1e300", "--epochs", "5"])
    assert xor.exit_code == 1 and "training diverged" in xor.output and "seed" not in xor.output.lower()


def test_output_paths_are_checked_before_training(tiny_mnist, tmp_path):
    for option, value, problem in (("--save", str(tmp_path), "is a directory"),
                                   ("--record", str(tmp_path / "no" / "r.json"), "does not exist")):
        result = runner.invoke(app, ["mnist", "--preset", "seed", "--limit", "10", "--data-dir",
                                     str(tiny_mnist), option, value])
        assert result.exit_code == 2 and f"{option}: cannot write" in result.output
        assert problem in result.output and "epoch" not in result.output  # no training ran
        assert ".tmp" not in result.output


def test_save_and_record_to_one_file_is_refused(tiny_mnist, tmp_path):
    same = str(tmp_path / "run.out")
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--limit", "10", "--data-dir",
                                 str(tiny_mnist), "--save", same, "--record", same])
    assert result.exit_code == 2 and "--save and --record name the same file" in result.output
    assert not (tmp_path / "run.out").exists()


def test_ctrl_c_during_training_says_nothing_was_written(tiny_mnist, tmp_path, monkeypatch):
    import purenn_cli.mnist

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(purenn_cli.mnist, "run_preset", interrupted)
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--data-dir", str(tiny_mnist),
                                 "--save", str(tmp_path / "m.npz")])
    assert result.exit_code == 130
    assert "interrupted during training (Ctrl-C): no checkpoint or record was written" in result.output
    assert not (tmp_path / "m.npz").exists()


def test_sweep_starts_at_the_given_seed():
    result = runner.invoke(app, ["xor", "--sweep", "3", "--seed", "5", "--epochs", "5"])
    assert result.exit_code == 0 and "of 3 seeds (5-7)" in result.output


def test_a_huge_loss_keeps_the_progress_line_short():
    from purenn_cli.progress import format_loss

    assert format_loss(1e6) == "1.000e+06" and format_loss(0.1234567) == "0.1235"
    assert len(format_loss(-1e300)) <= 11 and format_loss(float("nan")) == "nan"
