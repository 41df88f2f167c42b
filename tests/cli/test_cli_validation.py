"""`purenn mnist --validation FRACTION [--data-seed N] [--vary-split]`: each epoch watches the
validation set and says so, the test set is read once per run, and the record says where each
metric came from; without --validation, runs are what they were (labelled "test")."""

from __future__ import annotations

import json

import pytest
from _reads import SampleReads
from typer.testing import CliRunner

import purenn as pn
from purenn.recipes import runs
from purenn.recipes import train as train_module
from purenn.splits import split_indices
from purenn_cli.main import app

runner = CliRunner()
COMMON = ["mnist", "--preset", "mlp", "--epochs", "3", "--batch-size", "32", "--threads", "1"]


def _flat(output: str) -> str:
    return " ".join(output.split())


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return _flat(result.output)


def test_with_validation_the_test_set_is_read_once_per_run(tiny_mnist, tmp_path, monkeypatch):
    reads = SampleReads(pn.load_mnist(tiny_mnist).test.images).install(monkeypatch)
    rec = tmp_path / "run.json"
    output = _invoke(*COMMON, "--validation", "0.2", "--data-dir", str(tiny_mnist), "--record", str(rec))
    assert reads.counts.tolist() == [1] * 100
    assert "validation accuracy" in output and "accuracy on the validation set" in output
    assert "test accuracy" in output and "(read once, after training)" in output
    assert "mlp preset on 300 mnist training samples (20% held out for validation, stratified, split by data seed 0)" in output
    config = json.loads(rec.read_text())["config"]
    assert config["evaluated_on"] == "validation"
    assert (config["train_samples"], config["validation_samples"]) == (240, 60)
    assert (config["run"]["validation"], config["run"]["data_seed"], config["run"]["vary_split"]) == (0.2, 0, False)
    # and reproducing it reads the test set once more
    assert "reproduced" in _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist))
    assert reads.counts.tolist() == [2] * 100


def test_without_validation_the_test_set_is_watched_every_epoch_as_before(tiny_mnist, tmp_path, monkeypatch):
    reads = SampleReads(pn.load_mnist(tiny_mnist).test.images).install(monkeypatch)
    rec = tmp_path / "run.json"
    output = _invoke(*COMMON, "--data-dir", str(tiny_mnist), "--record", str(rec))
    assert reads.counts.tolist() == [4] * 100  # three epochs, then the final outputs
    assert "validation accuracy" not in output and "held out" not in output
    assert "test accuracy" in output and "per epoch, first to last:" in output and "read once" not in output
    config = json.loads(rec.read_text())["config"]
    assert config["evaluated_on"] == "test" and "validation_samples" not in config
    assert "validation" not in config["resolved"] and config["train_samples"] == 300


def _validated_on(monkeypatch, data_dir, *options: str) -> list[int]:
    """The training samples (indices) a run of ``options`` validated on: the rows fit was given
    as its validation set."""
    train = pn.load_mnist(data_dir).train
    index = {row.tobytes(): i for i, row in enumerate(train.images)}
    given = []
    real = train_module.fit  # where run_preset's training calls fit

    def fit(*args, validation=None, **kwargs):
        given.append(sorted(index[row.tobytes()] for row in validation[0]))
        return real(*args, validation=validation, **kwargs)

    monkeypatch.setattr(train_module, "fit", fit)
    _invoke(*COMMON, "--epochs", "1", "--validation", "0.2", *options, "--data-dir", str(data_dir))
    return given[-1]


def test_a_seed_changes_the_split_only_with_vary_split(tiny_mnist, monkeypatch):
    labels = pn.load_mnist(tiny_mnist).train.labels
    fixed = _validated_on(monkeypatch, tiny_mnist, "--seed", "0")
    assert fixed == split_indices(labels, 0.2, seed=0)[1].tolist() and len(fixed) == 60
    assert _validated_on(monkeypatch, tiny_mnist, "--seed", "1") == fixed  # initialisation and order only
    assert _validated_on(monkeypatch, tiny_mnist, "--seed", "0", "--data-seed", "0") == fixed
    other = _validated_on(monkeypatch, tiny_mnist, "--seed", "0", "--data-seed", "5")
    assert other != fixed and other == split_indices(labels, 0.2, seed=5)[1].tolist()
    varied = [_validated_on(monkeypatch, tiny_mnist, "--seed", seed, "--vary-split") for seed in ("0", "1")]
    assert varied[0] != varied[1] and fixed not in varied
    assert varied[1] == split_indices(labels, 0.2, seed=(0, 1, 1))[1].tolist()


@pytest.mark.parametrize("options", [["--data-seed", "3"], ["--vary-split"]])
def test_split_options_need_validation(tiny_mnist, options):
    result = runner.invoke(app, [*COMMON, *options, "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert "--data-seed and --vary-split choose the validation split: give --validation FRACTION too" in _flat(
        result.output)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1", "nan"])
def test_a_fraction_outside_zero_to_one_is_refused(tiny_mnist, value):
    result = runner.invoke(app, [*COMMON, "--validation", value, "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2
    assert "Invalid value for '--validation': must be a real number in (0, 1)" in _flat(result.output)


def test_a_split_that_cannot_be_made_is_refused_by_name(tiny_mnist):
    result = runner.invoke(app, [*COMMON, "--validation", "0.001", "--limit", "20", "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 2, result.output
    output = _flat(result.output)
    assert "--validation: a validation fraction of 0.001 of 20 samples holds out none" in output
    assert "Traceback" not in output and "epochs" not in output  # refused before anything ran


def test_an_experiment_passes_the_split_to_each_run(tiny_mnist, tmp_path):
    rec = tmp_path / "exp.json"
    _invoke(*COMMON, "--epochs", "1", "--validation", "0.2", "--vary-split", "--seeds", "0,1", "--jobs", "1",
            "--data-dir", str(tiny_mnist), "--record", str(rec))
    for seed in (0, 1):
        config = json.loads((tmp_path / f"exp.seed{seed}.json").read_text())["config"]
        assert config["evaluated_on"] == "validation" and config["run"]["vary_split"] is True
        assert config["run"]["seed"] == seed
