"""`purenn evaluate` of a file's model: checked from its layers' shapes before it runs. The
fan-out attack of issue 17 (an 81 KB checkpoint of Parallel blocks over 400 Identity layers that
made evaluate use 2.7 GB before failing) is refused with a message naming the size and the
limit, having allocated next to nothing."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import purenn as pn
import purenn_cli.evaluate
from purenn.io.checkpoints import save_checkpoint
from purenn.summary import MAX_SAMPLE_VALUES
from purenn_cli.main import app

runner = CliRunner()


def _saved(tmp_path: Path, model: pn.Layer, name: str = "model.npz") -> Path:
    path = tmp_path / name
    save_checkpoint(path, model, model.init(np.random.default_rng(0)))
    return path


def _never_run(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was run")

    monkeypatch.setattr(purenn_cli.evaluate, "predict", refuse)


def test_a_fan_out_model_is_refused_before_it_runs(tiny_mnist, tmp_path, monkeypatch):
    model = pn.Sequential([pn.Parallel([pn.Identity()] * 400)] * 3)
    path = _saved(tmp_path, model, "fanout.npz")
    assert path.stat().st_size < 2**18  # 236 KiB
    tracemalloc.start()
    try:
        result = runner.invoke(app, ["evaluate", str(path), "--data-dir", str(tiny_mnist)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "fanout.npz: the model computes 100,603,507,200 values per sample of shape (784,)" in text
    assert f"more than the {MAX_SAMPLE_VALUES:,} purenn runs (MAX_SAMPLE_VALUES)" in text
    assert peak < 8 * 2**20, peak  # the file, the 100 test images, the model's records


def test_a_model_giving_the_wrong_number_of_outputs_is_refused_before_it_runs(tiny_mnist, tmp_path, monkeypatch):
    _never_run(monkeypatch)
    path = _saved(tmp_path, pn.Sequential([pn.Dense(784, 5)]), "five.npz")
    result = runner.invoke(app, ["evaluate", str(path), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2, result.output
    assert "five.npz: the model gives outputs of shape (5,) per sample, but mnist has 10 classes" in \
        " ".join(result.output.split())


def test_a_model_not_taking_the_images_is_refused_before_it_runs(tiny_mnist, tmp_path, monkeypatch):
    _never_run(monkeypatch)
    path = _saved(tmp_path, pn.Sequential([pn.Dense(100, 10)]))
    result = runner.invoke(app, ["evaluate", str(path), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2, result.output
    assert "the model does not fit mnist's images" in result.output


@pytest.mark.parametrize("model", [pn.Sequential([pn.Dense(784, 10)]),
                                   pn.Sequential([pn.Parallel([pn.Identity(), pn.Dense(784, 6)]),
                                                  pn.Dense(790, 10)])])
def test_a_model_within_the_limit_is_evaluated(tiny_mnist, tmp_path, model):
    result = runner.invoke(app, ["evaluate", str(_saved(tmp_path, model)), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output
