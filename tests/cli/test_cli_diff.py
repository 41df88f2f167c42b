"""Where two runs part: per-epoch digests in records, `purenn reproduce` naming the first epoch
that differs, and `purenn diff` showing two records side by side."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import purenn as pn
from purenn.io.checkpoints import read_checkpoint
from purenn_cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tiny_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    args = ["mnist", "--preset", "mlp", "--epochs", "3", "--limit", "120", "--batch-size", "16",
            "--data-dir", str(tiny_mnist), "--record", str(folder / "a.json"), "--save", str(folder / "a.npz")]
    assert runner.invoke(app, args).exit_code == 0
    other = [a if a != "a.json" else a for a in args]
    other[other.index("--record") + 1] = str(folder / "seed1.json")
    assert runner.invoke(app, [*other[:-2], "--seed", "1"]).exit_code == 0
    return folder


def test_the_record_keeps_a_digest_per_epoch_and_the_last_is_the_final(run):
    record = json.loads((run / "a.json").read_text())
    digests = [e["digest"] for e in record["history"]]
    assert len(set(digests)) == 3 and digests[-1] == record["digest"]
    saved = read_checkpoint(run / "a.npz")
    assert record["digest"] == pn.params_digest(saved.params, state=saved.state)
    assert {"python", "numpy", "blas", "blas_threads", "cpu"} <= record["versions"].keys()


def _edited(run, name: str, epoch: int, final: bool) -> str:
    """a.json as if its run had parted at ``epoch``: that epoch's digest other, and with
    ``final`` every later one's and the final one too (a record must keep them agreeing)."""
    record = json.loads((run / "a.json").read_text())
    for entry in record["history"][epoch - 1:] if final else [record["history"][epoch - 1]]:
        entry["digest"] = "0" * 64
    if final:
        record["digest"] = "0" * 64
    path = run / name
    path.write_text(json.dumps(record))
    return str(path)


def test_reproduce_names_the_first_epoch_that_differs(run, tiny_mnist):
    same = runner.invoke(app, ["reproduce", str(run / "a.json"), "--data-dir", str(tiny_mnist)])
    assert same.exit_code == 0, same.output
    assert "reproduced: every epoch's params digest and the final one match" in " ".join(same.output.split())
    edited = _edited(run, "edited.json", 2, final=False)
    result = runner.invoke(app, ["reproduce", edited, "--data-dir", str(tiny_mnist)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "the final params digest matches, but not every epoch's" in text
    assert "the runs part at epoch 2" in text and "epochs 1-1 agree" in text
    assert "environment (Python, NumPy, BLAS and its threads, CPU) is the same here" in text


def test_reproduce_names_the_fingerprint_fields_that_differ(run, tiny_mnist):
    record = json.loads((run / "a.json").read_text())
    for entry in record["history"]:  # another machine: other params from epoch 1 on
        entry["digest"] = "1" * 64
    record["digest"] = "1" * 64
    record["versions"]["blas_threads"] = 64
    record["versions"]["cpu"] = "a CPU from elsewhere"
    (run / "moved.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["reproduce", str(run / "moved.json"), "--data-dir", str(tiny_mnist)],
                           terminal_width=300)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "the runs part at epoch 1" in text
    assert "blas_threads (64 then" in text and "cpu (a CPU from elsewhere then" in text


def test_diff_marks_the_first_epoch_where_runs_part(run):
    edited = _edited(run, "diff.json", 2, final=True)
    result = runner.invoke(app, ["diff", str(run / "a.json"), edited], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    rows = [line for line in result.output.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len(rows) == 3
    assert "≠ first" in rows[1] and "≠" not in rows[0] and "first" not in rows[2]
    assert "the runs part at epoch 2" in result.output


def test_diff_shows_settings_and_machines_side_by_side(run):
    result = runner.invoke(app, ["diff", str(run / "a.json"), str(run / "seed1.json")], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    seed_row = next(line for line in result.output.splitlines() if line.strip().startswith("seed "))
    assert "0" in seed_row and "1" in seed_row and "≠" in seed_row
    assert "blas_threads" in result.output and "≠ first" in result.output
    same = runner.invoke(app, ["diff", str(run / "a.json"), str(run / "a.json")], env={"COLUMNS": "250"})
    assert same.exit_code == 0 and "same final params" in same.output and "≠" not in same.output


def test_diff_of_a_file_that_is_not_a_record(run, tmp_path):
    (tmp_path / "x.json").write_text("[]")
    result = runner.invoke(app, ["diff", str(run / "a.json"), str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "must be a JSON object" in result.output


# ---------------------------------------------------------------- experiment records

SMALL = ["mnist", "--preset", "mlp", "--epochs", "2", "--limit", "96", "--batch-size", "16", "--threads", "1"]


@pytest.fixture(scope="module")
def experiments(tiny_mnist, tmp_path_factory):
    """Experiments of seeds 0-1 and 0,2, and a run of seed 1 alone, of the same settings."""
    folder = tmp_path_factory.mktemp("experiments")
    for name, seeds in (("e01", "0-1"), ("e02", "0,2")):
        result = runner.invoke(app, [*SMALL, "--seeds", seeds, "--jobs", "1", "--data-dir", str(tiny_mnist),
                                     "--record", str(folder / f"{name}.json")])
        assert result.exit_code == 0, result.output
    alone = runner.invoke(app, [*SMALL, "--seed", "1", "--data-dir", str(tiny_mnist), "--record", str(folder / "one.json")])
    assert alone.exit_code == 0, alone.output
    return folder


def _diff(a, b):
    result = runner.invoke(app, ["diff", str(a), str(b)], env={"COLUMNS": "250"})
    return result, " ".join(result.output.split())


def test_a_run_against_an_experiment_is_compared_with_its_run_of_that_seed(experiments):
    result, text = _diff(experiments / "one.json", experiments / "e01.json")
    assert result.exit_code == 0, result.output
    assert f"A: {experiments / 'one.json'} (a run record: mlp preset, seed 1)" in text
    assert f"B: {experiments / 'e01.json'} (an experiment record: mnist, 2 seeds)" in text
    assert "comparing with B's run of seed 1 (its run record e01.seed1.json)" in text
    assert "same final params" in text
    back, text = _diff(experiments / "e01.json", experiments / "one.json")  # either way round
    assert back.exit_code == 0 and "comparing with A's run of seed 1" in text


def test_an_experiment_without_the_runs_seed_says_what_it_compares(experiments):
    result, text = _diff(experiments / "one.json", experiments / "e02.json")
    assert result.exit_code == 1, result.output
    assert ("comparing with B's run of seed 0 (its run record e02.seed0.json); it has no finished run "
            "of seed 1, so its first finished run") in text
    seed_row = next(line for line in result.output.splitlines() if line.strip().startswith("seed "))
    assert "≠" in seed_row and "the final params differ" in text


def test_two_experiments_are_compared_seed_by_seed(experiments):
    same, text = _diff(experiments / "e01.json", experiments / "e01.json")
    assert same.exit_code == 0 and "same runs: all 2 seeds give the same params" in text
    assert "an experiment record: mnist, 2 seeds" in text and "≠" not in same.output
    other, text = _diff(experiments / "e01.json", experiments / "e02.json")
    assert other.exit_code == 1, other.output
    assert "the experiments differ in 2 of 3 seeds (1, 2)" in text
    rows = {line.split()[0]: line for line in other.output.splitlines() if re.match(r"\s+\d+\s", line)}
    assert "≠" not in rows["0"] and "≠" in rows["1"] and "≠" in rows["2"]


def test_an_xor_experiment_has_no_run_record_to_compare(experiments, tmp_path):
    sweep = runner.invoke(app, ["xor", "--sweep", "2", "--epochs", "5", "--jobs", "1", "--record", str(tmp_path / "x.json")])
    assert sweep.exit_code == 0, sweep.output
    result, text = _diff(experiments / "one.json", tmp_path / "x.json")
    assert result.exit_code == 2 and "B is an XOR experiment, whose runs keep no run record" in text
