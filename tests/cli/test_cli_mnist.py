"""`purenn mnist`, `evaluate` and `reproduce` through Typer's CliRunner, on a small synthetic
dataset in MNIST's IDX layout (the ``tiny_mnist`` fixture of tests/cli/conftest.py) and on the
real files when PURENN_DATA points at them."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from _mnist import requires_mnist
from typer.testing import CliRunner

from purenn import Dense, Sequential
from purenn.io.checkpoints import load_checkpoint, save_checkpoint
from purenn_cli.main import app

runner = CliRunner()


def _accuracy(output: str) -> float:
    """The final test accuracy (the last one printed; the progress bars show one per epoch)."""
    found = re.findall(r"test accuracy ([\d.]+)%", output)
    assert found, output
    return float(found[-1]) / 100


def test_seed_preset_runs_and_reports(tiny_mnist):
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--epochs", "2", "--limit", "200",
                                 "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 0, result.output
    assert "seed preset on 200" in result.output
    assert "confusion matrix" in result.output
    assert "training took" in result.output
    assert _accuracy(result.output) > 0.5  # ten bands are easy; chance is 0.1


def independent_params_digest(params) -> str:
    """purenn.io.records.params_digest's documented layout, rebuilt with hashlib and json: the
    tag ``purenn.params_digest/1\\0``, the structure as canonical JSON (dict keys sorted; tuples,
    lists and dicts told apart; each leaf as its little-endian dtype string and shape), then every
    leaf's raw little-endian bytes in C order, in that order."""
    raw: list[bytes] = []

    def outline(node):
        if isinstance(node, dict):
            return {"dict": [[k, outline(node[k])] for k in sorted(node)]}
        if isinstance(node, (tuple, list)):
            return {type(node).__name__: [outline(v) for v in node]}
        a = np.ascontiguousarray(node, dtype=np.asarray(node).dtype.newbyteorder("<"))
        raw.append(a.tobytes())
        return {"dtype": a.dtype.str, "shape": list(a.shape)}

    structure = json.dumps(outline(params), sort_keys=True, separators=(",", ":")).encode()
    assert len(raw) >= 2  # a model with weights and biases
    return hashlib.sha256(b"purenn.params_digest/1\0" + structure + b"".join(raw)).hexdigest()


def test_save_evaluate_record_reproduce(tiny_mnist, tmp_path):
    ckpt, rec = tmp_path / "model.npz", tmp_path / "run.json"
    args = ["mnist", "--preset", "mlp", "--epochs", "2", "--batch-size", "32", "--seed", "3",
            "--data-dir", str(tiny_mnist), "--save", str(ckpt), "--record", str(rec)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    trained = _accuracy(result.output)

    evaluated = runner.invoke(app, ["evaluate", str(ckpt), "--data-dir", str(tiny_mnist)])
    assert evaluated.exit_code == 0, evaluated.output
    assert _accuracy(evaluated.output) == trained

    record = json.loads(rec.read_text())
    assert record["seed"] == 3
    assert record["config"]["resolved"]["epochs"] == 2
    assert len(record["history"]) == 2
    assert set(record["versions"]) >= {"python", "numpy", "purenn"}
    assert record["metrics"]["test_accuracy"] == pytest.approx(trained, abs=1e-4)

    # the record's digest is the documented SHA-256 of the trained params (as the checkpoint
    # holds them), computed here without purenn's digest code: reproduce compares digests made by
    # one function on both sides, so a digest that missed a leaf would still "reproduce"
    _, saved = load_checkpoint(ckpt)
    assert record["digest"] == independent_params_digest(saved)

    again = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert again.exit_code == 0, again.output
    assert "reproduced" in again.output and "not reproduced" not in again.output

    record["digest"] = record["history"][-1]["digest"] = "0" * 64  # a record must keep them agreeing
    rec.write_text(json.dumps(record))
    tampered = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert tampered.exit_code == 1
    assert "not reproduced" in tampered.output


def test_cnn_preset_checkpoint_round_trip(tiny_mnist, tmp_path):
    ckpt = tmp_path / "cnn.npz"
    result = runner.invoke(app, ["mnist", "--preset", "cnn", "--epochs", "1", "--limit", "64",
                                 "--data-dir", str(tiny_mnist), "--save", str(ckpt)])
    assert result.exit_code == 0, result.output
    model, _ = load_checkpoint(ckpt)
    assert any(type(layer).__name__ == "Conv2D" for layer in model.layers)
    evaluated = runner.invoke(app, ["evaluate", str(ckpt), "--data-dir", str(tiny_mnist)])
    assert _accuracy(evaluated.output) == _accuracy(result.output)


def test_unknown_preset_is_refused(tiny_mnist):
    result = runner.invoke(app, ["mnist", "--preset", "transformer", "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert "`preset` must be one of the presets" in result.output and "'transformer'" in result.output
    assert "mlp" in result.output


def test_bad_lr_is_refused(tiny_mnist):
    result = runner.invoke(app, ["mnist", "--lr", "0", "--data-dir", str(tiny_mnist)])
    assert result.exit_code != 0
    assert "--lr" in result.output and "must be a positive number, got 0.0" in result.output


def _record(tiny_mnist: Path, tmp_path: Path) -> Path:
    rec = tmp_path / "run.json"
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--epochs", "1", "--limit", "50",
                                 "--data-dir", str(tiny_mnist), "--record", str(rec)])
    assert result.exit_code == 0, result.output
    return rec


def test_record_holds_the_full_configuration(tiny_mnist, tmp_path):
    config = json.loads(_record(tiny_mnist, tmp_path).read_text())["config"]
    assert config["run"]["preset"] == "seed" and config["train_samples"] == 50
    assert config["model"]["type"] == "Sequential"
    assert config["update"] == {"type": "SGD", "fields": {
        "lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}}


@pytest.mark.parametrize("preset", ["seed", "cnn"])  # cnn: with dropout
def test_a_run_alone_and_in_an_experiment_give_the_same_record(tiny_mnist, tmp_path, preset):
    """`purenn mnist` and an experiment's run (`--seeds`) both go through run_preset: the same
    settings give the same run record, but for the seconds the training took."""
    common = ["mnist", "--preset", preset, "--epochs", "2", "--limit", "60", "--batch-size", "20",
              "--threads", "1", "--data-dir", str(tiny_mnist)]
    alone = runner.invoke(app, [*common, "--seed", "3", "--record", str(tmp_path / "alone.json")])
    assert alone.exit_code == 0, alone.output
    inside = runner.invoke(app, [*common, "--seeds", "3", "--jobs", "1", "--record", str(tmp_path / "exp.json")])
    assert inside.exit_code == 0, inside.output
    records = [json.loads((tmp_path / name).read_text()) for name in ("alone.json", "exp.seed3.json")]
    for record in records:
        del record["metrics"]["train_seconds"]
    assert records[0] == records[1]


def test_reproduce_refuses_a_record_whose_model_differs(tiny_mnist, tmp_path):
    rec = _record(tiny_mnist, tmp_path)
    record = json.loads(rec.read_text())
    record["config"]["model"]["fields"]["layers"][0]["fields"]["out_features"] = 99
    rec.write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 1
    assert "not reproducible here" in result.output and "model" in result.output


@pytest.mark.parametrize("preset, repeatable", [("mlp", False), ("seed", True)])
def test_reproduce_of_a_record_made_before_adam_changed_says_so(tiny_mnist, tmp_path, preset, repeatable):
    """purenn 0.2.0 changed Adam's arithmetic (ADAM_CHANGED): a record of an Adam run made by
    0.1.0 is refused naming both versions, without training; an SGD run's still reproduces."""
    rec = tmp_path / "run.json"
    made = runner.invoke(app, ["mnist", "--preset", preset, "--epochs", "1", "--limit", "50", "--batch-size",
                               "10", "--data-dir", str(tiny_mnist), "--threads", "1", "--record", str(rec)])
    assert made.exit_code == 0, made.output
    record = json.loads(rec.read_text())
    record["versions"]["purenn"] = "0.1.0"
    rec.write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    text = " ".join(result.output.split())
    if repeatable:
        assert result.exit_code == 0 and "reproduced:" in text, text
        return
    assert result.exit_code == 1, text
    assert ("not reproducible here: the record was made by purenn 0.1.0, and purenn 0.2.0 changed "
            "Adam's arithmetic: the learning rate is applied on its own") in text
    assert "reproduce it with purenn 0.1.0" in text and "epoch 1/1" not in text  # nothing trained


@pytest.mark.parametrize("field, value, message", [
    ("limit", 0, "`config.run.limit` must be a positive integer or None, got 0"),
    ("epochs", -1, "`config.run.epochs` must be a positive integer or None, got -1"),
    ("lr", "x", "`config.run.lr` must be a positive number or None, got 'x'"),
    ("seed", -3, "`config.run.seed` must be a non-negative integer, got -3"),
    ("preset", "resnet", "`config.run.preset` is 'resnet' but `config.resolved.preset` is 'seed'"),
])
def test_reproduce_refuses_bad_fields_clearly(tiny_mnist, tmp_path, field, value, message):
    rec = _record(tiny_mnist, tmp_path)
    record = json.loads(rec.read_text())
    record["config"]["run"][field] = value
    rec.write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output  # rich wraps long lines


def test_evaluate_refuses_a_model_without_one_output_per_class(tiny_mnist, tmp_path):
    model = Sequential([Dense(784, 5)])
    ckpt = tmp_path / "five.npz"
    save_checkpoint(ckpt, model, model.init(np.random.default_rng(0)))
    result = runner.invoke(app, ["evaluate", str(ckpt), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert "has 10 classes" in result.output


def test_missing_data_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["mnist", "--limit", "10", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte.gz" in result.output
    assert "PURENN_DATA" in result.output


def test_evaluate_refuses_a_foreign_file(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("not a checkpoint")
    result = runner.invoke(app, ["evaluate", str(bad)])
    assert result.exit_code == 2
    assert "not an .npz" in result.output


def test_reproduce_refuses_a_foreign_file(tmp_path):
    bad = tmp_path / "run.json"
    bad.write_text("{}")
    result = runner.invoke(app, ["reproduce", str(bad)])
    assert result.exit_code == 2
    assert "run.json" in result.output




@requires_mnist
def test_seed_preset_on_real_mnist_learns():
    result = runner.invoke(app, ["mnist", "--preset", "seed", "--epochs", "1", "--limit", "5000"])
    assert result.exit_code == 0, result.output
    # the tutorial's own code reaches 64% after these 5000 samples (its tanh units start
    # saturated by the U[-0.5, 0.5) weights); chance is 10%
    assert _accuracy(result.output) > 0.55


@requires_mnist
def test_default_mlp_preset_reaches_98_percent_on_real_mnist():
    result = runner.invoke(app, ["mnist"])
    assert result.exit_code == 0, result.output
    assert _accuracy(result.output) >= 0.98


@requires_mnist
def test_cnn_preset_reaches_99_percent_on_real_mnist(tmp_path):
    ckpt = tmp_path / "cnn.npz"
    result = runner.invoke(app, ["mnist", "--preset", "cnn", "--save", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert _accuracy(result.output) >= 0.99
    evaluated = runner.invoke(app, ["evaluate", str(ckpt)])
    assert _accuracy(evaluated.output) == _accuracy(result.output)
