"""`purenn mnist --patience` (early stopping, watching the validation set) through the command line,
with `--checkpoint-dir`, `purenn resume` and `purenn reproduce`, on the tiny_mnist stand-in
(tests/cli/conftest.py); a new run with --patience and no --validation is refused, while records
of such runs made before still reproduce; and `purenn resume` of a training state saved from
Python, which holds no command to continue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import purenn as pn
from purenn.io.checkpoints import read_checkpoint
from purenn.io.training_checkpoints import load_training_state
from purenn.recipes.records import write_run_record
from purenn.recipes.runs import RunConfig, run_preset
from purenn.training_state import TrainingState
from purenn_cli.main import app

runner = CliRunner()

# a rate high enough that the validation loss rises again within a few epochs: patience 1 stops
# the run and keeps an earlier epoch's params
PATIENT = ["mnist", "--preset", "mlp", "--epochs", "6", "--batch-size", "32", "--lr", "0.2",
           "--patience", "1", "--validation", "0.2", "--threads", "1"]


def _flat(output: str) -> str:
    return " ".join(output.split())  # rich may wrap long lines


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return _flat(result.output)


def test_patience_records_early_stopping_and_the_history(tiny_mnist, tmp_path):
    rec = tmp_path / "run.json"
    output = _invoke(*PATIENT, "--data-dir", str(tiny_mnist), "--record", str(rec))
    record = json.loads(rec.read_text())
    stopping = record["early_stopping"]
    best = stopping["best_epoch"]
    assert stopping == {"monitor": "val_loss", "patience": 1, "stopped_early": True, "best_epoch": best}
    history = record["history"]
    assert len(history) == best + 1 < 6  # stopped one epoch after the best, before the sixth
    assert [e["epoch"] for e in history] == list(range(1, best + 2))
    val = [e["val_loss"] for e in history]
    assert val[best - 1] == min(val) and val[best] >= val[best - 1]
    # the params kept, and recorded, are the best epoch's, not the last's
    assert record["digest"] == history[best - 1]["digest"] != history[-1]["digest"]
    assert record["config"]["run"]["patience"] == record["config"]["resolved"]["patience"] == 1
    assert f"stopped early after epoch {best + 1}: the validation loss had not improved" in output
    assert f"keeping epoch {best}'s params" in output
    assert record["config"]["evaluated_on"] == "validation"


def test_patience_without_a_validation_set_is_refused_for_a_new_run(tiny_mnist, tmp_path):
    rec = tmp_path / "run.json"
    command = [*PATIENT, "--data-dir", str(tiny_mnist), "--record", str(rec)]
    i = command.index("--validation")
    del command[i : i + 2]
    result = runner.invoke(app, command)
    output = _flat(result.output)
    assert result.exit_code == 2, output
    assert ("--patience without --validation would keep the epoch whose test loss was the lowest, choosing "
            "by the test set") in output and "--validation 0.1" in output
    assert "epoch 1" not in output and not rec.exists()  # refused before any training


def _old_patience_record(tiny_mnist: Path, path: Path) -> dict:
    """A record of a run with patience and no validation set, as purenn wrote before the rule
    (through the library, which still runs such configs: records must repeat)."""
    config = RunConfig("mlp", epochs=6, batch_size=32, lr=0.2, patience=1, threads=1)
    record = run_preset(config, pn.load_mnist(tiny_mnist)).record()
    for key in ("validation", "data_seed", "vary_split", "init_from", "init_digest"):
        del record["config"]["run"][key]
    del record["config"]["evaluated_on"]  # as records written before validation splits
    write_run_record(path, record)
    return record


def test_without_patience_the_record_has_no_early_stopping(tiny_mnist, tmp_path):
    rec = tmp_path / "run.json"
    _invoke("mnist", "--preset", "mlp", "--epochs", "2", "--batch-size", "32", "--threads", "1",
            "--data-dir", str(tiny_mnist), "--record", str(rec))
    record = json.loads(rec.read_text())
    assert "early_stopping" not in record and len(record["history"]) == 2
    assert record["config"]["run"]["patience"] is None
    assert "patience" not in record["config"]["resolved"]


def test_resume_of_a_finished_run_writes_the_same_results_again(tiny_mnist, tmp_path):
    """The folder keeps the finished state (stopped early, with the best epoch's params beside
    the last): resuming it (with --record and --save: resume writes only what it is given), or
    rerunning the command, writes the record and checkpoint again, with the best epoch's params."""
    folder, rec, ckpt = tmp_path / "ckpt", tmp_path / "run.json", tmp_path / "model.npz"
    command = [*PATIENT, "--data-dir", str(tiny_mnist), "--record", str(rec), "--save", str(ckpt),
               "--checkpoint-dir", str(folder)]
    _invoke(*command)
    first = json.loads(rec.read_text())
    saved = load_training_state(folder / "training.npz").state
    assert saved.finished and saved.early_stopping.stopped
    assert saved.best_params is not None
    assert pn.params_digest(saved.params, state=saved.model_state) == first["history"][-1]["digest"]

    stopped_at = f"the end of epoch {len(first['history'])} of 6"
    resume = ["resume", str(folder), "--record", str(rec), "--save", str(ckpt), "--data-dir", str(tiny_mnist)]
    for again, says in ((resume, f"stopped at {stopped_at}; finished; writing its results"),
                        (command, f"continuing from {stopped_at}")):
        rec.unlink()
        ckpt.unlink()
        output = _invoke(*again)
        assert says in output, output
        second = json.loads(rec.read_text())
        best = first["early_stopping"]["best_epoch"]
        assert second["digest"] == first["digest"] == first["history"][best - 1]["digest"]
        assert second["history"] == first["history"]
        assert second["early_stopping"] == first["early_stopping"]
        assert second["config"] == first["config"]
        back = read_checkpoint(ckpt)
        assert pn.params_digest(back.params, state=back.state) == first["digest"]


def test_reproduce_a_record_from_before_early_stopping(tiny_mnist, tmp_path):
    """Records written before early stopping existed have no 'patience' in config.run or
    config.resolved: they still reproduce."""
    rec = tmp_path / "run.json"
    _invoke("mnist", "--preset", "mlp", "--epochs", "2", "--batch-size", "32", "--threads", "1",
            "--data-dir", str(tiny_mnist), "--record", str(rec))
    record = json.loads(rec.read_text())
    del record["config"]["run"]["patience"]
    record["config"]["resolved"].pop("patience", None)
    assert "patience" not in json.dumps(record["config"])
    rec.write_text(json.dumps(record))
    output = _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist))
    assert "reproduced" in output and "not reproduced" not in output


def test_reproduce_a_record_with_patience(tiny_mnist, tmp_path):
    rec = tmp_path / "run.json"
    _invoke(*PATIENT, "--data-dir", str(tiny_mnist), "--record", str(rec))
    output = _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist))
    assert "reproduced" in output and "not reproduced" not in output
    assert "accuracy on the validation set" in output
    # and the early stopping is part of what is repeated: without it, the run goes on
    record = json.loads(rec.read_text())
    record["config"]["run"]["patience"] = None
    del record["config"]["resolved"]["patience"], record["early_stopping"]
    record["digest"] = record["history"][-1]["digest"]  # without early stopping, the last epoch's params
    rec.write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    assert result.exit_code == 1 and "not reproduced" in result.output



def test_reproduce_an_old_record_with_patience_and_no_validation_set(tiny_mnist, tmp_path):
    """The rule is for new runs: a record whose patience watched the test set still repeats."""
    rec = tmp_path / "old.json"
    record = _old_patience_record(tiny_mnist, rec)
    assert record["early_stopping"]["stopped_early"]
    output = _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist))
    assert "reproduced" in output and "not reproduced" not in output
    assert "the test loss had not improved" in output and "per epoch, first to last:" in output


def _python_state(folder: Path, metadata: dict | None) -> None:
    """A training state saved from Python (as a user of fit's checkpoint callback would)."""
    model = pn.Sequential([pn.Dense(3, 4), pn.Tanh(), pn.Dense(4, 2)])
    x = np.random.default_rng(0).standard_normal((20, 3))
    y = (x[:, 0] > 0).astype(int)
    saved: list[TrainingState] = []
    pn.fit(model, model.init(np.random.default_rng(0)), x, y, lr=0.1, epochs=2, batch_size=8,
           loss="softmax_cross_entropy", checkpoint=saved.append)
    folder.mkdir()
    pn.save_training_state(folder / "training.npz", model, saved[0], metadata=metadata)


@pytest.mark.parametrize("metadata", [None, {"run": "mlp"}, {"run": {"preset": "mlp", "colour": "red"}},
                                      {"outputs": {}}], ids=["none", "a string", "unknown field", "no run"])
def test_resume_of_a_state_saved_from_python_says_to_continue_in_python(tmp_path, metadata):
    folder = tmp_path / "from-python"
    _python_state(folder, metadata)
    result = runner.invoke(app, ["resume", str(folder)])
    assert result.exit_code == 2, result.output
    output = _flat(result.output)
    assert f"{folder / 'training.npz'} cannot be continued" in output
    assert "saved from Python" in output
    assert "continue it from Python with fit(..., resume=load_training_state(path).state)" in output
    assert "Traceback" not in result.output
    # the same folder given to `purenn mnist --checkpoint-dir` is refused as well
    result = runner.invoke(app, ["mnist", "--preset", "mlp", "--checkpoint-dir", str(folder)])
    assert result.exit_code == 2, result.output
    assert "cannot be continued" in _flat(result.output) and "choose another folder" in _flat(result.output)


def test_reproduce_of_a_record_missing_its_last_epoch_is_not_reproduced(tiny_mnist, tmp_path):
    """A patience record with the epoch after the best dropped (still a valid record: the kept
    epoch and the final digest are there) is not what the run gives: every common epoch's digest
    and the final one agree, and only the number of epochs tells them apart."""
    rec = tmp_path / "run.json"
    _invoke(*PATIENT, "--data-dir", str(tiny_mnist), "--record", str(rec))
    record = json.loads(rec.read_text())
    epochs = len(record["history"])
    assert record["early_stopping"]["best_epoch"] == epochs - 1
    del record["history"][-1]
    rec.write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(rec), "--data-dir", str(tiny_mnist)])
    text = _flat(result.output)
    assert result.exit_code == 1, text
    assert "not reproduced: the final params digest matches, but not every epoch's" in text
    assert (f"the runs part at epoch {epochs}: every common epoch agrees, but the record has "
            f"{epochs - 1} epochs and this run {epochs}") in text
