"""Experiments on the command line: `purenn mnist --seeds [--set ...]`, `purenn xor --sweep`,
`purenn reproduce EXP.json`, `purenn resume EXP.json`, `purenn plot`, and the terminal chart after
a run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import purenn as pn
from purenn.io.provenance import indices_digest
from purenn.recipes.runs import run_preset
from purenn_cli.main import app

runner = CliRunner()
COMMON = ["--preset", "mlp", "--epochs", "2", "--limit", "96", "--batch-size", "16"]


@pytest.fixture(scope="module")
def experiment(tiny_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exp")
    result = runner.invoke(app, ["mnist", *COMMON, "--seeds", "0-2", "--jobs", "2", "--data-dir",
                                 str(tiny_mnist), "--record", str(folder / "exp.json")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_an_experiment_shows_a_table_and_writes_its_records(experiment):
    folder, output = experiment
    assert "mlp: 1 setting(s) x 3 seeds" in output and "mean ± std" in output
    assert "per epoch (mean over 3 seeds), first to last" in output
    record = json.loads((folder / "exp.json").read_text())
    assert record["format"] == "purenn.experiment/2" and record["kind"] == "mnist"
    assert record["function"] == "purenn.experiments.tasks:mnist_trial" and record["grid"] == {}
    assert [(r["group"], r["seed"]) for r in record["runs"]] == [(0, 0), (0, 1), (0, 2)]
    assert all(r["status"] == "ok" and r["attempts"] == 1 for r in record["runs"])
    for run in record["runs"]:
        run_record = json.loads((folder / run["record"]).read_text())
        assert run_record["digest"] == run["digest"] and run_record["seed"] == run["seed"]
        assert [h["loss"] for h in run["history"]] == [h["loss"] for h in run_record["history"]]
        assert run_record["provenance"] == run["provenance"]
    accuracies = [r["metrics"]["test_accuracy"] for r in record["runs"]]
    summary = record["groups"][0]["summary"]["metrics"]["test_accuracy"]
    assert summary["n"] == 3 and summary["min"] == min(accuracies) and summary["max"] == max(accuracies)
    assert summary["mean"] == pytest.approx(sum(accuracies) / 3)
    assert record["settings"]["threads"] == 1  # two jobs on two cores: one BLAS thread each


def test_the_summary_is_over_the_seeds_with_the_sample_standard_deviation(experiment):
    record = json.loads((experiment[0] / "exp.json").read_text())
    for metric in ("test_accuracy", "loss", "train_seconds"):
        values = np.array([r["metrics"][metric] for r in record["runs"]])
        summary = record["groups"][0]["summary"]["metrics"][metric]
        assert summary["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert summary["std"] == pytest.approx(values.std(ddof=1), rel=1e-12)  # n - 1, not n


def test_every_run_record_holds_its_provenance(experiment, tiny_mnist):
    folder, _ = experiment
    record = json.loads((folder / "exp.seed1.json").read_text())
    origin = record["provenance"]
    files = {os.path.basename(p): d for p, d in origin["data_files"].items()}
    assert files == {name: hashlib.sha256((tiny_mnist / name).read_bytes()).hexdigest()
                     for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    assert origin["samples"]["train"]["count"] == 96 and origin["samples"]["test"]["count"] == 100
    assert origin["samples"]["train"]["sha256"] == indices_digest(np.arange(96))
    assert origin["command"] == sys.argv  # this process's: pytest's (a real command: test_cli_experiment_processes)
    assert origin["purenn"] == pn.__version__ and set(origin["git"]) == {"purenn", "code"}
    assert "function" not in origin and origin["git"]["code"] is None  # purenn's own run: purenn's code


@pytest.fixture(scope="module")
def with_a_failure(tiny_mnist, tmp_path_factory):
    """An experiment of seeds 0-2 in this process whose seed 1 fails (its run raises)."""
    from purenn.experiments import tasks

    def failing(config, *args, **kwargs):
        if config.seed == 1:
            raise ValueError("seed 1 is made to fail [/] (brackets: shown, not read as markup)")
        return run_preset(config, *args, **kwargs)

    folder = tmp_path_factory.mktemp("failing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "run_preset", failing)
        result = runner.invoke(app, ["mnist", *COMMON, "--seeds", "0-2", "--jobs", "1", "--threads", "1",
                                     "--data-dir", str(tiny_mnist), "--record", str(folder / "exp.json")],
                               env={"COLUMNS": "200"})
    return folder, result


def test_a_failed_run_is_recorded_with_its_error(with_a_failure, experiment):
    folder, result = with_a_failure
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "1 of 3 runs failed (seed 1); the record lists them with their errors" in text
    why = "ValueError: seed 1 is made to fail [/] (brackets: shown, not read as markup)"
    assert f"failed: {why}" in text
    record = json.loads((folder / "exp.json").read_text())
    assert [(r["seed"], r["status"]) for r in record["runs"]] == [(0, "ok"), (1, "failed"), (2, "ok")]
    failed = record["runs"][1]
    assert failed["error"] == why and failed["attempts"] == 1
    assert (failed["record"], failed["digest"], failed["history"], failed["metrics"]) == (None, None, [], {})
    assert record["summary"] == {"ok": 2, "failed": 1, "not_started": 0}
    assert record["groups"][0]["summary"]["metrics"]["test_accuracy"]["n"] == 2
    assert sorted(p.name for p in folder.iterdir()) == ["exp.json", "exp.seed0.json", "exp.seed2.json"]
    # the finished runs are the ones an experiment without the failure gave
    whole = json.loads((experiment[0] / "exp.json").read_text())
    assert [record["runs"][i]["digest"] for i in (0, 2)] == [whole["runs"][i]["digest"] for i in (0, 2)]


def test_reproduce_repeats_the_finished_runs_and_says_which_failed(with_a_failure, tiny_mnist):
    folder, _ = with_a_failure
    again = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--data-dir", str(tiny_mnist)],
                          env={"COLUMNS": "300"})
    text = " ".join(again.output.split())
    assert again.exit_code == 0, again.output
    assert ("reproduced: all 2 runs give their recorded digests (the run of seed 1 did not finish when "
            "the experiment ran and had nothing to compare)") in text
    alone = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--seed", "1"], env={"COLUMNS": "300"})
    text = " ".join(alone.output.split())
    assert alone.exit_code == 1 and "nothing to reproduce: the run of seed 1 did not finish" in text


def test_a_run_in_the_experiment_equals_that_seed_alone(experiment, tiny_mnist, tmp_path):
    folder, _ = experiment
    alone = runner.invoke(app, ["mnist", *COMMON, "--seed", "1", "--threads", "1", "--data-dir",
                                str(tiny_mnist), "--record", str(tmp_path / "one.json")])
    assert alone.exit_code == 0, alone.output
    assert json.loads((tmp_path / "one.json").read_text())["digest"] == \
        json.loads((folder / "exp.seed1.json").read_text())["digest"]
    assert "per epoch, first to last:" in alone.output and "loss " in alone.output


def test_reproduce_an_experiment_all_or_one_seed(experiment, tiny_mnist):
    folder, _ = experiment
    all_runs = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--data-dir", str(tiny_mnist)],
                             env={"COLUMNS": "200"})
    assert all_runs.exit_code == 0, all_runs.output
    assert "all 3 runs give their recorded digests" in all_runs.output
    one = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--seed", "2", "--jobs", "1",
                              "--data-dir", str(tiny_mnist)], env={"COLUMNS": "200"})
    assert one.exit_code == 0 and "reproduced: the run gives its recorded digests" in one.output
    missing = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--seed", "7"])
    assert missing.exit_code == 2 and "has no run of seed 7" in missing.output


def _copy(folder, tmp_path):
    """The experiment's files in a folder of the test's own, to edit; the experiment as data."""
    for f in folder.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    return json.loads((tmp_path / "exp.json").read_text())


def _write(path, data):
    path.write_text(json.dumps(data))


def test_reproduce_names_the_run_and_epoch_that_differ(experiment, tiny_mnist, tmp_path):
    # entry and run record edited alike (as if recorded on another machine): the run is
    # repeated, and differs from epoch 2 on
    exp = _copy(experiment[0], tmp_path)
    record = json.loads((tmp_path / "exp.seed1.json").read_text())
    record["history"][1]["digest"] = record["digest"] = exp["runs"][1]["digest"] = "0" * 64
    _write(tmp_path / "exp.seed1.json", record)
    _write(tmp_path / "exp.json", exp)
    edited = runner.invoke(app, ["reproduce", str(tmp_path / "exp.json"), "--data-dir", str(tiny_mnist)],
                           env={"COLUMNS": "200"})
    assert edited.exit_code == 1 and "not reproduced: 1 of 3 runs differ" in edited.output, edited.output
    assert "differs from epoch 2" in edited.output


def _reproduce(path, tiny_mnist):
    return runner.invoke(app, ["reproduce", str(path), "--data-dir", str(tiny_mnist), "--jobs", "1"],
                         env={"COLUMNS": "300"})


@pytest.mark.parametrize("field, value, says", [
    ("digest", "0" * 64, r"its digest is '[0-9a-f.]+', the experiment's '0[0.]+'"),
    ("record", "other.json", r"its seed is 0, the experiment's 1"),  # seed 0's record, copied
    ("test_accuracy", 0.0, r"its test_accuracy is [0-9.]+, the experiment's 0\.0"),
])
def test_reproduce_refuses_an_entry_that_is_not_its_run_records(experiment, tiny_mnist, tmp_path,
                                                                 field, value, says):
    exp = _copy(experiment[0], tmp_path)
    (tmp_path / "other.json").write_bytes((tmp_path / "exp.seed0.json").read_bytes())
    if field == "test_accuracy":
        exp["runs"][1]["metrics"][field] = value
    else:
        exp["runs"][1][field] = value
    from purenn.experiments.record import summarize_group

    exp["groups"][0]["summary"] = summarize_group(exp["runs"])  # edited with care: the summary follows
    _write(tmp_path / "exp.json", exp)
    result = _reproduce(tmp_path / "exp.json", tiny_mnist)
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "not reproduced: 1 of 3 could not run" in text and "cannot repeat" in text
    assert re.search(r"is not the run record of `runs\[1\]` \(seed 1\)", text), text
    assert re.search(says, text), text


def test_reproduce_of_an_experiment_made_before_adam_changed_says_so(experiment, tiny_mnist, tmp_path):
    _copy(experiment[0], tmp_path)
    for seed in range(3):
        record = json.loads((tmp_path / f"exp.seed{seed}.json").read_text())
        record["versions"]["purenn"] = "0.1.0"
        _write(tmp_path / f"exp.seed{seed}.json", record)
    result = _reproduce(tmp_path / "exp.json", tiny_mnist)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "not reproduced: 3 of 3 could not run" in text, text
    assert text.count("the record was made by purenn 0.1.0, and purenn 0.2.0 changed Adam's "
                      "arithmetic") == 3


def test_two_runs_naming_one_run_record_are_refused(experiment, tmp_path):
    exp = _copy(experiment[0], tmp_path)
    exp["runs"][1]["record"] = "exp.seed0.json"
    _write(tmp_path / "exp.json", exp)
    result = runner.invoke(app, ["reproduce", str(tmp_path / "exp.json")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "two runs name one run record" in result.output


def test_reproduce_refuses_an_edited_metric_by_the_summary(experiment, tmp_path):
    exp = _copy(experiment[0], tmp_path)
    exp["runs"][2]["metrics"]["test_accuracy"] = 0.5
    _write(tmp_path / "exp.json", exp)
    result = runner.invoke(app, ["reproduce", str(tmp_path / "exp.json")], env={"COLUMNS": "300"})
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "`groups[0].summary.metrics.test_accuracy.mean` is" in text
    assert "the runs give" in text


def test_reproduce_of_runs_that_all_failed_has_nothing_to_compare(experiment, tmp_path):
    exp = _copy(experiment[0], tmp_path)
    for run in exp["runs"]:
        run.update(status="failed", error="RuntimeError: boom", record=None, digest=None, metrics={},
                   history=[], provenance=None)
    from purenn.experiments.record import summarize, summarize_group

    exp["summary"] = summarize(exp["runs"])
    exp["groups"][0]["summary"] = summarize_group(exp["runs"])
    _write(tmp_path / "exp.json", exp)
    for extra in ([], ["--seed", "1"]):
        result = runner.invoke(app, ["reproduce", str(tmp_path / "exp.json"), *extra], env={"COLUMNS": "300"})
        text = " ".join(result.output.split())
        assert result.exit_code == 1 and "nothing to reproduce" in text, text
        assert "reproduced:" not in text and "all 0" not in text


@pytest.mark.parametrize("args, message", [
    (["--seeds", "3-1"], "runs backwards"),
    (["--seeds", "0-2", "--seed", "4"], "--seed is for a single run"),
    (["--jobs", "2"], "give --seeds too"),
    (["--set", "lr=0.1"], "give --seeds too"),
    (["--seeds", "0,1", "--set", "lr"], "--set 'lr': write NAME=VALUE1,VALUE2"),
    (["--seeds", "0,1", "--set", "momentum=0.9"], "'momentum' is not a run setting; --set takes one of: preset, epochs"),
    (["--seeds", "0,1", "--set", "seed=1,2"], "'seed' is not a run setting"),
    (["--seeds", "0,1", "--set", "patience=1,x"], "--set patience: 'x' is not a value of patience (it takes int, or none)"),
    (["--seeds", "0,1", "--set", "lr=0.1", "--set", "lr=0.2"], "--set: lr is given twice in --set"),
    (["--seeds", "0,1", "--set", "patience=2,2"], "`patience` names a value twice"),
    (["--seeds", "0,1", "--set", "threads=0,1"], "do not make a mnist run"),
])
def test_experiment_options_that_do_not_fit(args, message, tiny_mnist):
    result = runner.invoke(app, ["mnist", *COMMON, "--data-dir", str(tiny_mnist), *args], env={"COLUMNS": "300"})
    text = " ".join(result.output.split())
    assert result.exit_code in (1, 2) and message in text, text
    assert "Traceback" not in text


def test_set_refuses_a_setting_also_given_as_its_option(tiny_mnist):
    result = runner.invoke(app, ["mnist", *COMMON, "--data-dir", str(tiny_mnist), "--seeds", "0",
                                 "--set", "epochs=1,2"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "epochs is given both as --epochs and in --set" in result.output


def test_the_settable_names_are_run_configs_fields():
    import attrs

    from purenn.recipes.runs import RunConfig
    from purenn_cli.mnist_seeds import SETTABLE

    assert set(SETTABLE) == {f.name for f in attrs.fields(RunConfig)} - {"seed"}


def test_the_xor_sweep_is_an_experiment(tmp_path):
    record = tmp_path / "xor.json"
    parallel = runner.invoke(app, ["xor", "--sweep", "6", "--epochs", "200", "--jobs", "2",
                                   "--record", str(record)], env={"COLUMNS": "200"})
    serial = runner.invoke(app, ["xor", "--sweep", "6", "--epochs", "200", "--jobs", "1"],
                           env={"COLUMNS": "200"})
    assert parallel.exit_code == serial.exit_code == 0, parallel.output
    line = next(ln for ln in parallel.output.splitlines() if ln.startswith("XOR solved for"))
    assert line in serial.output and "of 6 seeds (0-5)" in line
    data = json.loads(record.read_text())
    assert data["kind"] == "xor" and data["settings"]["epochs"] == 200
    solved = sum(r["metrics"]["solved"] for r in data["runs"])
    assert line.startswith(f"XOR solved for {solved} of 6")
    again = runner.invoke(app, ["reproduce", str(record)], env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "all 6 runs" in again.output


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_draws_a_line_per_run_and_a_band_per_experiment(experiment, tmp_path):
    pytest.importorskip("matplotlib", reason="the `plot` extra is not installed: pip install \"purenn[plot]\"")
    from matplotlib.collections import PolyCollection
    from rich.console import Console

    from purenn_cli.plot import load_curves, make_figure

    folder, _ = experiment
    files = [folder / "exp.json", folder / "exp.seed0.json", folder / "exp.seed2.json"]
    figure = make_figure([c for f in files for c in load_curves(Console(), f)], 800, 300)
    for ax in figure.axes:
        assert len(ax.get_lines()) == 3  # the experiment's mean and the two runs
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1  # its band
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["exp (3 seeds)", "exp.seed0", "exp.seed2"]
    result = runner.invoke(app, ["plot", *map(str, files), "-o", str(tmp_path / "c.png"),
                                 "--width", "640", "--height", "320"])
    assert result.exit_code == 0, result.output
    assert _png_size(tmp_path / "c.png") == (640, 320)


def test_plot_without_matplotlib_says_which_extra_to_install(experiment, tmp_path, monkeypatch):
    folder, _ = experiment
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result = runner.invoke(app, ["plot", str(folder / "exp.json"), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and 'pip install "purenn[plot]"' in result.output
    assert not (tmp_path / "c.png").exists()


def test_plot_refuses_to_replace_a_record_it_reads(experiment, tmp_path):
    folder, _ = experiment
    record = tmp_path / "exp.json"
    record.write_bytes((folder / "exp.json").read_bytes())
    (tmp_path / "link.json").symlink_to(record)
    for output in (record, tmp_path / "link.json", tmp_path / "." / "exp.json"):
        result = runner.invoke(app, ["plot", str(record), str(folder / "exp.seed0.json"), "-o", str(output)])
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and f"--output ({output}) is the record {record}, which this command reads" in text
        assert record.read_bytes() == (folder / "exp.json").read_bytes()  # the record, untouched
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def _with_loss(folder, tmp_path, loss):
    record = json.loads((folder / "exp.seed0.json").read_text())
    record["history"][1]["loss"] = loss
    (tmp_path / "big.json").write_text(json.dumps(record))
    return runner.invoke(app, ["plot", str(tmp_path / "big.json"), "-o", str(tmp_path / "c.png")])


def test_plot_draws_losses_up_to_its_limit_and_refuses_larger(experiment, tmp_path):
    pytest.importorskip("matplotlib", reason="the `plot` extra is not installed: pip install \"purenn[plot]\"")
    from purenn_cli.plot import MAX_DRAWN

    folder, _ = experiment
    assert MAX_DRAWN == 1e300
    drawn = _with_loss(folder, tmp_path, MAX_DRAWN)
    assert drawn.exit_code == 0, drawn.output
    assert _png_size(tmp_path / "c.png") == (1200, 500)
    (tmp_path / "c.png").unlink()
    refused = _with_loss(folder, tmp_path, float(np.nextafter(MAX_DRAWN, np.inf)))
    text = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "its training loss at epoch 2 is 1e+300, more than the 1e+300 that can be drawn" in text
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("value, scale", [
    (1e150, "log"), (float(np.nextafter(1e150, np.inf)), "linear"),
    (1e-150, "log"), (float(np.nextafter(1e-150, 0)), "linear"), (0.0, "linear"),
])
def test_the_loss_axis_is_logarithmic_only_within_its_range(value, scale):
    pytest.importorskip("matplotlib", reason="the `plot` extra is not installed: pip install \"purenn[plot]\"")
    from purenn_cli.plot import LOG_RANGE, make_figure

    assert LOG_RANGE == (1e-150, 1e150)
    history = [{"epoch": 1, "loss": 1.0, "val_accuracy": 0.5}, {"epoch": 2, "loss": value, "val_accuracy": 0.6}]
    figure = make_figure([{"label": "run", "runs": [history], "experiment": False}], 640, 320)
    assert figure.axes[0].get_yscale() == scale


# ---------------------------------------------------------------- grids of settings


@pytest.fixture(scope="module")
def grid(tiny_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    result = runner.invoke(app, ["mnist", "--preset", "mlp", "--epochs", "2", "--limit", "96", "--seeds", "0-2",
                                 "--set", "lr=1e-3,4e-3", "--set", "batch-size=16,32", "--jobs", "2",
                                 "--threads", "1", "--data-dir", str(tiny_mnist), "--record", str(folder / "exp.json")],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_a_grid_runs_every_setting_for_every_seed(grid):
    folder, output = grid
    record = json.loads((folder / "exp.json").read_text())
    assert record["grid"] == {"lr": [1e-3, 4e-3], "batch_size": [16, 32]}
    assert [list(g["settings"].items()) for g in record["groups"]] == [  # names sorted, as JSON keeps them
        [("batch_size", 16), ("lr", 1e-3)], [("batch_size", 16), ("lr", 4e-3)],
        [("batch_size", 32), ("lr", 1e-3)], [("batch_size", 32), ("lr", 4e-3)]]
    assert "lr" not in record["settings"] and record["settings"]["epochs"] == 2
    assert len(record["runs"]) == 12 and all(r["status"] == "ok" for r in record["runs"])
    for run in record["runs"]:
        assert run["record"] == f"exp.g{run['group']}.seed{run['seed']}.json"
        config = json.loads((folder / run["record"]).read_text())["config"]["run"]
        assert {k: config[k] for k in ("lr", "batch_size")} == record["groups"][run["group"]]["settings"]
        assert config["seed"] == run["seed"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["exp.json", *(r["record"] for r in record["runs"])])
    assert "mlp: 4 setting(s) x 3 seeds" in output and "per setting: over the finished runs" in output


def test_the_table_groups_runs_per_setting_with_a_t_interval(grid):
    scipy_stats = pytest.importorskip("scipy.stats", reason="the `stats` extra is not installed")
    folder, output = grid
    record = json.loads((folder / "exp.json").read_text())
    group = [r["metrics"]["loss"] for r in record["runs"] if r["group"] == 3]
    mean, sem = np.mean(group), np.std(group, ddof=1) / np.sqrt(3)
    low, high = scipy_stats.t.interval(0.95, 2, loc=mean, scale=sem)
    summary = record["groups"][3]["summary"]["metrics"]["loss"]
    rows = [[c.strip() for c in ln.split("│")] for ln in output.splitlines() if "final loss" in ln]
    cells = next(r for r in rows if f"{summary['mean']:.4g} ± {summary['std']:.4g}" in r)  # group 3's
    assert f"{summary['min']:.4g}" in cells and f"{summary['max']:.4g}" in cells
    assert f"[{low:.4g}, {high:.4g}]" in cells


def test_without_scipy_the_interval_column_says_which_extra_to_install(grid, monkeypatch):
    from rich.console import Console

    from purenn.experiments.record import read_experiment
    from purenn.experiments.study import Study
    from purenn_cli.experiment import columns_for, groups_table

    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy raises ImportError
    folder, _ = grid
    study = Study(read_experiment(folder / "exp.json"))
    console = Console(width=300, record=True)
    console.print(groups_table(study, columns_for(study.record)))
    text = console.export_text()
    assert text.count('needs SciPy: pip install "purenn[stats]"') == 12  # every group's every metric


def test_plot_draws_one_band_per_setting(grid, tmp_path):
    pytest.importorskip("matplotlib", reason="the `plot` extra is not installed: pip install \"purenn[plot]\"")
    from matplotlib.collections import PolyCollection
    from rich.console import Console

    from purenn_cli.plot import load_curves, make_figure

    folder, _ = grid
    curves = load_curves(Console(), folder / "exp.json")
    assert [c["label"] for c in curves] == ["exp batch_size=16 lr=0.001 (3 seeds)", "exp batch_size=16 lr=0.004 (3 seeds)",
                                             "exp batch_size=32 lr=0.001 (3 seeds)", "exp batch_size=32 lr=0.004 (3 seeds)"]
    figure = make_figure(curves, 800, 300)
    for ax in figure.axes:
        assert len(ax.get_lines()) == 4 and len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 4
    result = runner.invoke(app, ["plot", str(folder / "exp.json"), "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 0 and "from 1 file(s)" in result.output


def test_diff_and_reproduce_read_a_grid(grid, tiny_mnist):
    folder, _ = grid
    same = runner.invoke(app, ["diff", str(folder / "exp.json"), str(folder / "exp.json")], env={"COLUMNS": "250"})
    assert same.exit_code == 0 and "same runs: all 12 runs give the same params" in " ".join(same.output.split())
    again = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--seed", "2", "--data-dir", str(tiny_mnist)],
                          env={"COLUMNS": "250"})
    text = " ".join(again.output.split())
    assert again.exit_code == 0 and "reproduced: all 4 runs give their recorded digests" in text, text
    assert "batch_size=32 lr=0.004 seed 2" in text


# ---------------------------------------------------------------- data files, before training


def _changed_data(tiny_mnist, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_mnist, data)
    labels = bytearray((data / "t10k-labels-idx1-ubyte").read_bytes())
    labels[-1] = (labels[-1] + 1) % 10  # one test label changed: still a valid file
    (data / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    return data


def test_reproduce_names_a_data_file_that_differs_before_training(experiment, tiny_mnist, tmp_path):
    folder, _ = experiment
    data = _changed_data(tiny_mnist, tmp_path)
    result = runner.invoke(app, ["reproduce", str(folder / "exp.seed0.json"), "--data-dir", str(data)],
                           env={"COLUMNS": "300"})
    text = " ".join(result.output.split())
    assert result.exit_code == 1, text
    assert f"not reproduced: the data is not what the run read: {data / 't10k-labels-idx1-ubyte'} has SHA-256" in text
    assert "Nothing was trained" in text and "epoch 1/" not in text and "test accuracy" not in text
    exp = runner.invoke(app, ["reproduce", str(folder / "exp.json"), "--data-dir", str(data)], env={"COLUMNS": "300"})
    text = " ".join(exp.output.split())
    assert exp.exit_code == 1 and "not reproduced: 3 of 3 could not run" in text, text
    assert text.count("its data differs from what it read: ") == 3 and "t10k-labels-idx1-ubyte has SHA-256" in text


def test_an_experiment_of_the_first_format_still_reproduces(tiny_mnist, tmp_path):
    data = Path(__file__).resolve().parent.parent / "experiments" / "data"
    for f in data.glob("exp_v1*.json"):
        shutil.copy(f, tmp_path / f.name)
    result = runner.invoke(app, ["reproduce", str(tmp_path / "exp_v1.json"), "--data-dir", str(tiny_mnist)],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "reproduced: all 3 runs give their recorded digests" in result.output
    one = runner.invoke(app, ["reproduce", str(tmp_path / "exp_v1.seed1.json"), "--data-dir", str(tiny_mnist)],
                        env={"COLUMNS": "300"})
    assert one.exit_code == 0 and "every epoch's params digest and the final one match" in one.output


# ---------------------------------------------------------------- the caller's own code


@pytest.fixture
def own(tmp_path):
    import _study_task

    data = tmp_path / "points.csv"
    data.write_text("0,1\n1,3\n2,5\n3,7\n")
    study = pn.experiments.run(_study_task.train, seeds=[0, 1], grid={"lr": [0.01, 0.02]},
                               settings={"data": str(data)}, record=tmp_path / "own.json", data_files=[data])
    assert all(r.status == "ok" for r in study.runs)
    return tmp_path, data


def test_reproducing_the_callers_code_needs_it_named(own):
    folder, data = own
    path = str(folder / "own.json")
    unnamed = runner.invoke(app, ["reproduce", path], env={"COLUMNS": "300"})
    text = " ".join(unnamed.output.split())
    assert unnamed.exit_code == 2 and "ran _study_task:train, code of its own: purenn runs code only when you name it" in text
    assert f"purenn reproduce {path} --function _study_task:train" in text
    other = runner.invoke(app, ["reproduce", path, "--function", "_study_task:other"], env={"COLUMNS": "300"})
    assert other.exit_code == 2 and "ran _study_task:train; name that one" in other.output
    named = runner.invoke(app, ["reproduce", path, "--function", "_study_task:train"], env={"COLUMNS": "300"})
    assert named.exit_code == 0 and "reproduced: all 4 runs give their recorded digests" in named.output, named.output
    data.write_text("0,1\n1,3\n2,5\n3,8\n")  # the data changed: named, nothing compared
    changed = runner.invoke(app, ["reproduce", path, "--function", "_study_task:train"], env={"COLUMNS": "300"})
    text = " ".join(changed.output.split())
    assert changed.exit_code == 1 and f"its data differs from what it read: {data} has SHA-256" in text


def test_resume_of_the_callers_code_needs_it_named_and_runs_what_is_missing(own):
    folder, _ = own
    path = folder / "own.json"
    record = json.loads(path.read_text())
    from purenn.experiments.record import pending_entry, summarize, summarize_group

    record["runs"][3] = pending_entry(1, 1)  # as if interrupted before its last run
    record["summary"] = summarize(record["runs"])
    record["groups"][1]["summary"] = summarize_group(record["runs"][2:])
    finished = json.loads(path.read_text())["runs"][3]
    path.write_text(json.dumps(record))
    unnamed = runner.invoke(app, ["resume", str(path)], env={"COLUMNS": "300"})
    assert unnamed.exit_code == 2 and "--function _study_task:train" in " ".join(unnamed.output.split())
    named = runner.invoke(app, ["resume", str(path), "--function", "_study_task:train"], env={"COLUMNS": "300"})
    assert named.exit_code == 0, named.output
    assert "resuming" in named.output and "(1 runs missing)" in named.output
    again = json.loads(path.read_text())["runs"][3]
    assert again["digest"] == finished["digest"] and again["status"] == "ok"
    done = runner.invoke(app, ["resume", str(path), "--function", "_study_task:train"], env={"COLUMNS": "300"})
    assert done.exit_code == 0 and "nothing to resume, all 4 runs finished" in done.output


@pytest.mark.parametrize("args, says", [
    (["--jobs", "2"], "--jobs, --scheduler, --checkpoint-dir and --function are for an experiment record"),
    (["--function", "a:b"], "are for an experiment record"),
])
def test_resume_of_a_folder_refuses_an_experiments_options(tmp_path, args, says):
    (tmp_path / "training.npz").write_bytes(b"")
    result = runner.invoke(app, ["resume", str(tmp_path), *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and says in " ".join(result.output.split())


def test_resume_of_an_experiment_refuses_a_folders_options(experiment, tmp_path):
    folder, _ = experiment
    result = runner.invoke(app, ["resume", str(folder / "exp.json"), "--save", str(tmp_path / "m.npz")],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "--save and --record are for a checkpoint folder" in result.output
