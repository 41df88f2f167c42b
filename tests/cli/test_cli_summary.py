"""`purenn summary`, the summary `purenn mnist` prints, and the resnet preset end to end."""

from __future__ import annotations

import json
import re

import numpy as np
from typer.testing import CliRunner

import purenn as pn
from purenn.io.checkpoints import read_checkpoint
from purenn_cli.main import app

runner = CliRunner()


def _accuracy(output: str) -> float:
    return float(re.findall(r"test accuracy ([\d.]+)%", output)[-1]) / 100


def test_resnet_preset_trains_saves_evaluates_and_reproduces(tiny_mnist, tmp_path):
    ckpt, rec = tmp_path / "resnet.npz", tmp_path / "resnet.json"
    result = runner.invoke(app, ["mnist", "--preset", "resnet", "--epochs", "1", "--limit", "64",
                                 "--batch-size", "16", "--data-dir", str(tiny_mnist),
                                 "--save", str(ckpt), "--record", str(rec)], terminal_width=120)
    assert result.exit_code == 0, result.output
    # the compact summary before training: the model's own layers, the block not opened
    assert "the resnet model" in result.output and "Residual()" in result.output
    assert "padding" not in result.output.split("epoch 1/1")[0]
    s = pn.summary(read_checkpoint(ckpt).model, 784)
    assert f"{s.params:,} parameters" in result.output

    saved = read_checkpoint(ckpt)
    assert pn.params_digest(saved.params, state=saved.state) == json.loads(rec.read_text())["digest"]
    fresh = saved.model.init_state()
    assert pn.params_digest(saved.state) != pn.params_digest(fresh)  # running statistics were saved

    evaluated = runner.invoke(app, ["evaluate", str(ckpt), "--data-dir", str(tiny_mnist)])
    assert evaluated.exit_code == 0, evaluated.output
    assert _accuracy(evaluated.output) == _accuracy(result.output)

    again = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert again.exit_code == 0 and "not reproduced" not in again.output, again.output


def test_summary_of_a_checkpoint(tiny_mnist, tmp_path):
    ckpt = tmp_path / "cnn.npz"
    assert runner.invoke(app, ["mnist", "--preset", "cnn", "--epochs", "1", "--limit", "16",
                               "--data-dir", str(tiny_mnist), "--save", str(ckpt)]).exit_code == 0
    result = runner.invoke(app, ["summary", str(ckpt)], terminal_width=150)
    assert result.exit_code == 0, result.output
    s = pn.summary(read_checkpoint(ckpt).model, 784)
    for row in s.table():
        assert re.search(r"\s+".join(re.escape(c) for c in row if c), result.output), row
    assert f"{s.params:,} parameters" in result.output
    other = runner.invoke(app, ["summary", str(ckpt), "--input-shape", "28,28,1"], terminal_width=150)
    assert other.exit_code == 0 and "input (28, 28, 1)" in other.output


def test_summary_of_an_api_checkpoint_needs_the_input_shape(tmp_path):
    model = pn.Sequential([pn.Dense(5, 3), pn.BatchNorm(3), pn.Tanh()])
    pn.save_checkpoint(tmp_path / "m.npz", model, model.init(np.random.default_rng(0)),
                       state=model.init_state())
    result = runner.invoke(app, ["summary", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "give --input-shape" in result.output
    result = runner.invoke(app, ["summary", str(tmp_path / "m.npz"), "--input-shape", "5"],
                           terminal_width=150)
    assert result.exit_code == 0 and "BatchNorm(3)" in result.output and "6 state values" in result.output
    result = runner.invoke(app, ["summary", str(tmp_path / "m.npz"), "--input-shape", "4"])
    assert result.exit_code == 2 and "cannot take inputs of shape (4,)" in result.output
    result = runner.invoke(app, ["summary", str(tmp_path / "m.npz"), "--input-shape", "5,-1"])
    assert result.exit_code == 2 and "positive integers separated by commas" in result.output


def test_summary_of_a_missing_file(tmp_path):
    result = runner.invoke(app, ["summary", str(tmp_path / "nope.npz")])
    assert result.exit_code == 2 and "checkpoint file not found" in result.output


def test_summary_keeps_every_column_on_narrow_terminals(tmp_path):
    from purenn.recipes.presets import PRESETS

    model = PRESETS["resnet"].model
    pn.save_checkpoint(tmp_path / "resnet.npz", model, model.init(np.random.default_rng(0)),
                       state=model.init_state(), metadata={"run": {"preset": "resnet"}})
    s = pn.summary(model, 784)
    for width in (120, 80, 60, 45):
        result = runner.invoke(app, ["summary", str(tmp_path / "resnet.npz")], env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert max(map(len, lines)) <= width, (width, result.output)
        header = next(line for line in lines if line.strip().startswith("layer"))
        assert header.split() == ["layer", "output", "shape", "params", "state"], (width, header)
        body = lines[lines.index(header) + 2:]
        for row, line in zip(s.table(), body):  # every row keeps its shape, params and state
            assert line.rstrip().endswith("   ".join(c for c in row[1:] if c).strip()) or all(
                c in line for c in row[1:] if c), (width, row, line)
        short = [line for line in body[: len(s.rows)] if "…" in line]
        assert bool(short) == (width < 120), width  # names are abbreviated only when needed
