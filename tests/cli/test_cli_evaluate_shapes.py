"""`purenn evaluate --input-shape`: a checkpoint whose first layer takes images as 28 x 28 x 1
samples (not flat 784-pixel rows) is evaluated on reshaped images, checked from its layers'
shapes before it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import purenn as pn
from purenn.io.checkpoints import save_checkpoint
from purenn_cli.main import app

runner = CliRunner()
CONV = pn.Sequential([pn.Conv2D(1, 2, 3), pn.ReLU(), pn.Flatten(), pn.Dense(26 * 26 * 2, 10)])


@pytest.fixture
def conv_checkpoint(tmp_path) -> Path:
    path = tmp_path / "conv.npz"
    save_checkpoint(path, CONV, CONV.init(np.random.default_rng(0)))
    return path


def _text(result) -> str:
    return " ".join(result.output.split())


def test_a_model_taking_images_is_evaluated_with_their_shape(conv_checkpoint, tiny_mnist):
    result = runner.invoke(app, ["evaluate", str(conv_checkpoint), "--data-dir", str(tiny_mnist),
                                 "--input-shape", "28,28,1"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "on 100 samples" in result.output


def test_without_the_shape_it_is_refused_saying_which_option(conv_checkpoint, tiny_mnist):
    result = runner.invoke(app, ["evaluate", str(conv_checkpoint), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert "the model does not fit mnist's images" in _text(result)
    assert "needs --input-shape, e.g. --input-shape 28,28,1" in _text(result)


@pytest.mark.parametrize("shape, message", [
    ("28,28,2", "--input-shape 28,28,2 holds 1568 values per sample, but the images have 784"),
    ("784", "the model does not fit mnist's images"),
    ("28,x", "--input-shape: expected positive integers separated by commas"),
])
def test_a_shape_that_does_not_fit_is_refused_before_the_model_runs(conv_checkpoint, tiny_mnist, monkeypatch,
                                                                    shape, message):
    import purenn_cli.evaluate

    monkeypatch.setattr(purenn_cli.evaluate, "predict", lambda *a, **k: pytest.fail("the model ran"))
    result = runner.invoke(app, ["evaluate", str(conv_checkpoint), "--data-dir", str(tiny_mnist),
                                 "--input-shape", shape])
    assert result.exit_code == 2 and message in _text(result), result.output
