"""`purenn mnist --init-from MODEL.npz`: a run starting from a checkpoint's params and state, its
record keeping the file's name and params digest, and `purenn reproduce RUN.json --init-from
MODEL.npz`, which checks the file it is given before training (never reading a path from the
record); with --checkpoint-dir and `purenn resume` too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import purenn as pn
from purenn.io.checkpoints import read_checkpoint, save_checkpoint
from purenn.recipes.presets import PRESETS
from purenn_cli.main import app

runner = CliRunner()
COMMON = ["mnist", "--preset", "seed", "--epochs", "1", "--limit", "40", "--threads", "1"]


def _flat(output: str) -> str:
    return " ".join(output.split())


def _invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return _flat(result.output)


@pytest.fixture(scope="module")
def source(tiny_mnist, tmp_path_factory) -> tuple[Path, dict]:
    """A checkpoint of a one-epoch run of the seed preset, and that run's record."""
    folder = tmp_path_factory.mktemp("source")
    _invoke(*COMMON, "--data-dir", str(tiny_mnist), "--save", str(folder / "start.npz"),
            "--record", str(folder / "start.json"))
    return folder / "start.npz", json.loads((folder / "start.json").read_text())


def test_a_run_from_a_checkpoint_records_it_and_reproduces_with_it(tiny_mnist, source, tmp_path):
    start, start_record = source
    rec = tmp_path / "on.json"
    output = _invoke(*COMMON, "--init-from", str(start), "--data-dir", str(tiny_mnist), "--record", str(rec))
    assert f"starting from the params of start.npz (params digest {start_record['digest'][:16]}...)" in output
    record = json.loads(rec.read_text())
    run = record["config"]["run"]
    assert (run["init_from"], run["init_digest"]) == ("start.npz", start_record["digest"])
    assert record["config"]["resolved"]["init_digest"] == start_record["digest"]
    assert record["digest"] != start_record["digest"]
    # the second epoch of the same run, in one go, is where this one ends (seed: nothing random)
    two = tmp_path / "two.json"
    _invoke(*COMMON, "--epochs", "2", "--data-dir", str(tiny_mnist), "--record", str(two))
    assert json.loads(two.read_text())["digest"] == record["digest"]

    copy = tmp_path / "renamed.npz"
    copy.write_bytes(start.read_bytes())  # the digest names the params, not the file
    output = _invoke("reproduce", str(rec), "--init-from", str(copy), "--data-dir", str(tiny_mnist))
    assert "reproduced" in output and "not reproduced" not in output


def test_reproduce_without_the_checkpoint_asks_for_it(tiny_mnist, source, tmp_path):
    start, start_record = source
    rec = tmp_path / "on.json"
    _invoke(*COMMON, "--init-from", str(start), "--data-dir", str(tiny_mnist), "--record", str(rec))
    output = _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist), code=2)
    assert (f"the recorded run started from the checkpoint start.npz (params digest {start_record['digest']}): "
            "give that file with --init-from PATH") in output
    assert "reproducing" not in output  # nothing trained


def test_reproduce_with_another_checkpoint_names_it_before_training(tiny_mnist, source, tmp_path):
    start, start_record = source
    rec = tmp_path / "on.json"
    _invoke(*COMMON, "--init-from", str(start), "--data-dir", str(tiny_mnist), "--record", str(rec))
    other = tmp_path / "other.npz"
    _invoke(*COMMON, "--seed", "1", "--data-dir", str(tiny_mnist), "--save", str(other))
    digest = pn.params_digest(read_checkpoint(other).params)
    output = _invoke("reproduce", str(rec), "--init-from", str(other), "--data-dir", str(tiny_mnist), code=2)
    assert (f"--init-from: {other} has params digest {digest}, but the recorded run started from start.npz "
            f"(params digest {start_record['digest']}): give that file") in output
    assert "reproducing" not in output


def test_reproduce_never_opens_the_path_a_record_names(tiny_mnist, source, tmp_path, monkeypatch):
    """A record may come from anywhere: the name it keeps is only shown."""
    start, _ = source
    rec = tmp_path / "on.json"
    _invoke(*COMMON, "--init-from", str(start), "--data-dir", str(tiny_mnist), "--record", str(rec))
    monkeypatch.chdir(start.parent)  # where a relative "start.npz" would be found
    output = _invoke("reproduce", str(rec), "--data-dir", str(tiny_mnist), code=2)
    assert "give that file with --init-from PATH" in output


def test_reproduce_refuses_a_checkpoint_for_a_run_that_started_from_scratch(tiny_mnist, source, tmp_path):
    rec = tmp_path / "plain.json"
    _invoke(*COMMON, "--data-dir", str(tiny_mnist), "--record", str(rec))
    output = _invoke("reproduce", str(rec), "--init-from", str(source[0]), "--data-dir", str(tiny_mnist), code=2)
    assert "--init-from: the recorded run started from its preset's initialisation" in output


def test_a_checkpoint_of_another_presets_model_is_refused(tiny_mnist, tmp_path):
    mlp = PRESETS["mlp"].model
    path = tmp_path / "mlp.npz"
    save_checkpoint(path, mlp, mlp.init(__import__("numpy").random.default_rng(0)))
    output = _invoke(*COMMON, "--init-from", str(path), "--data-dir", str(tiny_mnist), code=2)
    assert ("--init-from: 'mlp.npz' holds another model than the 'seed' preset's (it has 5 layers, the "
            "preset's model 6)") in output
    assert "epochs" not in output  # refused before the run


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not an .npz file"),
    (lambda p: None, "checkpoint file not found"),
    (lambda p: p.mkdir(), "directory"),
])
def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(tiny_mnist, tmp_path, make, problem):
    path = tmp_path / "bad.npz"
    make(path)
    output = _invoke(*COMMON, "--init-from", str(path), "--data-dir", str(tiny_mnist), code=2)
    assert output.startswith("error: --init-from:") and "bad.npz" in output, output
    assert problem.lower() in output.lower(), output


def test_writing_over_the_starting_checkpoint_is_refused(tiny_mnist, source, tmp_path):
    start = tmp_path / "start.npz"
    start.write_bytes(source[0].read_bytes())
    output = _invoke(*COMMON, "--init-from", str(start), "--save", str(start), "--data-dir", str(tiny_mnist), code=2)
    assert f"--save ({start}) is the --init-from checkpoint, which this command reads" in output
    assert start.read_bytes() == source[0].read_bytes()


def test_an_experiment_cannot_start_from_a_checkpoint(tiny_mnist, source):
    output = _invoke(*COMMON, "--seeds", "0,1", "--init-from", str(source[0]), "--data-dir", str(tiny_mnist), code=2)
    assert "--init-from is for a single run" in output


def test_a_checkpointed_run_from_a_checkpoint_resumes_without_it(tiny_mnist, source, tmp_path):
    """The folder's state holds the params: resume needs no --init-from, and writes the record
    the run gives, with the starting checkpoint's name and digest."""
    start = tmp_path / "start.npz"
    start.write_bytes(source[0].read_bytes())
    folder, rec, again = tmp_path / "ckpt", tmp_path / "run.json", tmp_path / "again.json"
    command = [*COMMON, "--epochs", "2", "--init-from", str(start), "--data-dir", str(tiny_mnist),
               "--checkpoint-dir", str(folder), "--record", str(rec)]
    _invoke(*command)
    start.unlink()
    output = _invoke("resume", str(folder), "--record", str(again), "--data-dir", str(tiny_mnist))
    assert "finished; writing its results" in output
    first, second = json.loads(rec.read_text()), json.loads(again.read_text())
    assert second["digest"] == first["digest"] and second["config"] == first["config"]
    assert first["config"]["run"]["init_from"] == "start.npz"


def test_a_checkpoint_folder_of_a_run_from_another_checkpoint_is_refused(tiny_mnist, source, tmp_path):
    start, start_record = source
    other = tmp_path / "other.npz"
    _invoke(*COMMON, "--seed", "1", "--data-dir", str(tiny_mnist), "--save", str(other))
    folder = tmp_path / "ckpt"
    command = [*COMMON, "--data-dir", str(tiny_mnist), "--checkpoint-dir", str(folder)]
    _invoke(*command, "--init-from", str(start))
    output = _invoke(*command, "--init-from", str(other), code=2)
    digest = pn.params_digest(read_checkpoint(other).params)
    assert (f"holds a run with other settings (--init-from: 'start.npz' in the saved run, 'other.npz' now; "
            f"the params digest of --init-from's checkpoint: '{start_record['digest']}' in the saved run, "
            f"'{digest}' now)") in output
