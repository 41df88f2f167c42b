"""`purenn compare A B`: experiment records or groups of a sweep (EXP.json:lr=0.001), compared by
purenn.experiments.comparison on each side's finished runs by seed; the report, --json, -o, and
clear refusals of what cannot be compared."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from purenn.experiments.comparison import compare
from purenn.experiments.record import MAX_EXPERIMENT_BYTES, make_experiment, pending_entry, write_experiment
from purenn_cli.compare import same_setting, split_side
from purenn_cli.main import app

pytest.importorskip("scipy.stats", reason='the `stats` extra is not installed: pip install "purenn[stats]"')

runner = CliRunner()
ENV = {"COLUMNS": "400"}
COMMON = ["--preset", "mlp", "--epochs", "1", "--limit", "96", "--batch-size", "16", "--threads", "1"]
X = [0.9712, 0.9735, 0.9701, 0.9758, 0.9722]
Y = [0.9741, 0.9748, 0.9739, 0.9779, 0.9730]


def invoke(*args):
    return runner.invoke(app, ["compare", *map(str, args)], env=ENV)


def ok_entry(group, seed, accuracy):
    loss = 1.0 - accuracy
    return {**pending_entry(group, seed), "status": "ok", "attempts": 1, "seconds": 1.0,
            "metrics": {"test_accuracy": accuracy, "loss": loss, "train_seconds": 10.0 + seed + accuracy},
            "history": [{"epoch": 1, "loss": 2 * loss, "val_accuracy": accuracy - 0.01},
                        {"epoch": 2, "loss": loss, "val_accuracy": accuracy}]}


def write_function_experiment(path, groups, seeds, grid=None, failed=(), not_started=()):
    """A `function` experiment record at ``path``: ``groups[g][i]`` the accuracy of seed ``seeds[i]``
    in group g; the (group, seed) pairs of ``failed`` failed, of ``not_started`` never ran."""
    runs = []
    for g, accuracies in enumerate(groups):
        for seed, accuracy in zip(seeds, accuracies):
            if (g, seed) in failed:
                runs.append({**pending_entry(g, seed), "status": "failed", "attempts": 1, "error": "boom"})
            elif (g, seed) in not_started:
                runs.append(pending_entry(g, seed))
            else:
                runs.append(ok_entry(g, seed, accuracy))
    record = make_experiment(kind="function", function="mymodule:train", settings={"epochs": 2},
                             grid=grid or {}, seeds=list(seeds), runs=runs, jobs=1, scheduler=None)
    write_experiment(path, record)
    return record


def sides_of(record, group):
    """The runs a side is made of, read straight from the record: finished runs of ``group`` by seed."""
    return {r["seed"]: r["metrics"] for r in record["runs"] if r["group"] == group and r["status"] == "ok"}


# ---------------------------------------------------------------- a real sweep, made by the CLI


@pytest.fixture(scope="module")
def sweep(tiny_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    result = runner.invoke(app, ["mnist", *COMMON, "--seeds", "0-2", "--set", "lr=1e-3,4e-3", "--jobs", "1",
                                 "--data-dir", str(tiny_mnist), "--record", str(folder / "lr.json")], env=ENV)
    assert result.exit_code == 0, result.output
    return folder / "lr.json"


def test_two_groups_of_a_sweep_are_compared_by_group_spec_as_b_minus_a(sweep):
    a, b = f"{sweep}:lr=0.001", f"{sweep}:lr=4e-3"  # a number matches by value
    result = invoke(a, b)
    assert result.exit_code == 0, result.output
    record = json.loads(sweep.read_text())
    side_a, side_b = sides_of(record, 0), sides_of(record, 1)
    assert [g["settings"] for g in record["groups"]] == [{"lr": 0.001}, {"lr": 0.004}]
    expected = compare(side_a, side_b, labels=(a, b))
    assert result.output.splitlines()[0] == f"A = {a} (seeds 0-2), B = {b} (seeds 0-2)"
    assert "paired t" in result.output and "both ran the same 3 seeds (0-2)" in result.output
    difference = np.mean([r["test_accuracy"] for r in side_b.values()]) - np.mean(
        [r["test_accuracy"] for r in side_a.values()])
    assert expected["test_accuracy"].difference == pytest.approx(difference, rel=1e-12, abs=1e-15)
    assert f"B - A  {expected['test_accuracy'].difference:+.4g}" in result.output
    assert expected.to_text().splitlines()[1:] == result.output.splitlines()[1:len(expected.to_text().splitlines())]


def test_json_holds_the_comparison_of_the_same_runs(sweep, tmp_path):
    a, b = f"{sweep}:lr=0.004", f"{sweep}:lr=0.001"
    out = tmp_path / "diff.json"
    result = invoke(a, b, "--json", out)
    assert result.exit_code == 0, result.output
    record = json.loads(sweep.read_text())
    assert json.loads(out.read_text()) == compare(sides_of(record, 1), sides_of(record, 0), labels=(a, b)).to_data()
    to_stdout = invoke(a, b, "--json", "-")
    assert to_stdout.exit_code == 0
    assert json.loads(to_stdout.stdout) == json.loads(out.read_text())


def test_o_draws_a_png_and_refuses_to_replace_a_record(sweep, tmp_path):
    picture = tmp_path / "diff.png"
    result = invoke(f"{sweep}:lr=0.001", f"{sweep}:lr=0.004", "-o", picture)
    assert result.exit_code == 0, result.output
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # three panels of points and bars
    before = sweep.read_bytes()
    refused = invoke(f"{sweep}:lr=0.001", f"{sweep}:lr=0.004", "-o", sweep)
    assert refused.exit_code == 2 and "which this command reads" in refused.output
    assert sweep.read_bytes() == before
    same = invoke(f"{sweep}:lr=0.001", f"{sweep}:lr=0.004", "-o", tmp_path / "x", "--json", tmp_path / "x")
    assert same.exit_code == 2 and "name the same file" in same.output


def test_a_record_of_several_groups_needs_a_spec_and_an_unknown_one_is_refused(sweep):
    groups = f"{sweep}:lr=0.001, {sweep}:lr=0.004"
    for args, message in [((sweep, f"{sweep}:lr=0.001"), f"holds 2 groups of settings; name one: {groups}"),
                          ((f"{sweep}:lr=0.002", sweep), f"matches no group; its groups: {groups}"),
                          ((f"{sweep}:lr=0.00", sweep), "matches no group"),
                          ((f"{sweep}:seed=1", sweep), "seed is not a setting of this experiment"),
                          ((f"{sweep}:lr=", sweep), "write NAME=VALUE, several joined by ','"),
                          ((f"{sweep}:lr=0.001,", sweep), "write NAME=VALUE"),
                          ((f"{sweep}:lr=0.001,lr=0.004", sweep), "lr is given twice")]:
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------- records built by the record writer


def test_two_files_with_the_same_seeds_pair_and_with_different_seeds_do_not(tmp_path):
    write_function_experiment(tmp_path / "a.json", [X], range(5))
    write_function_experiment(tmp_path / "b.json", [Y], range(5))
    write_function_experiment(tmp_path / "c.json", [Y], range(5, 10))
    paired = invoke(tmp_path / "a.json", tmp_path / "b.json")
    assert paired.exit_code == 0, paired.output
    assert "paired t: t = " in paired.output and "Welch" not in paired.output
    welch = invoke(tmp_path / "a.json", tmp_path / "c.json")
    assert welch.exit_code == 0, welch.output
    assert "Welch's t: t = " in welch.output and "different seeds" in welch.output
    assert "paired t" not in welch.output


def test_a_record_against_itself_is_identical_never_nan(tmp_path):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X], range(5))
    result = invoke(path, path)
    assert result.exit_code == 0, result.output
    assert f"{path} and {path} give identical test accuracy results (5 seeds)." in result.output
    assert "nan" not in result.output.lower()


def test_failed_and_unfinished_runs_are_skipped_and_named(tmp_path):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X, Y], range(5), grid={"lr": [0.001, 0.004]},
                              failed={(0, 3)}, not_started={(1, 1), (1, 2)})
    out = tmp_path / "d.json"
    result = invoke(f"{path}:lr=0.001", f"{path}:lr=0.004", "--json", out)
    assert result.exit_code == 0, result.output
    assert f"note: {path}:lr=0.001: 1 run(s) failed (seeds 3); skipped" in result.output
    assert f"note: {path}:lr=0.004: 2 run(s) not finished (seeds 1-2); skipped" in result.output
    assert f"A = {path}:lr=0.001 (seeds 0-2,4), B = {path}:lr=0.004 (seeds 0,3-4)" in result.output
    data = json.loads(out.read_text())
    assert data["seeds"] == {"a": [0, 1, 2, 4], "b": [0, 3, 4]}
    assert data["metrics"]["test_accuracy"]["n_a"] == 4 and data["metrics"]["test_accuracy"]["test"] == "Welch's t"


def test_a_side_with_fewer_than_two_finished_runs_cannot_be_compared(tmp_path):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X[:3]], range(3), failed={(0, 0), (0, 1)})
    result = invoke(path, path)
    assert result.exit_code == 1 and "comparing needs at least 2 per side" in result.output
    assert "Traceback" not in result.output


def test_group_values_are_matched_whole_never_as_a_prefix(tmp_path):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X, Y], range(5), grid={"batch_size": [16, 160]})
    result = invoke(f"{path}:batch_size=16", f"{path}:batch_size=160")
    assert result.exit_code == 0, result.output
    data = json.loads(invoke(f"{path}:batch_size=160", f"{path}:batch_size=16", "--json", "-").stdout)
    assert data["metrics"]["test_accuracy"]["mean_a"] == pytest.approx(np.mean(Y))
    assert not same_setting("16", 160) and not same_setting("0.00", 0.001) and not same_setting("1", "10")


def test_settings_are_matched_by_value():
    assert same_setting("1e-3", 0.001) and same_setting("64", 64) and same_setting("TRUE", True)
    assert same_setting("none", None) and same_setting("mnist", "mnist")
    assert not same_setting("1", True) and not same_setting("x", 1.0) and not same_setting("0", None)


def test_a_file_whose_name_holds_a_colon_is_taken_whole(tmp_path):
    path = tmp_path / "a:b=1.json"
    write_function_experiment(path, [X], range(5))
    assert split_side(str(path)) == (path, None)
    assert split_side(f"{tmp_path}/e.json:lr=0.1,b=2") == (tmp_path / "e.json", "lr=0.1,b=2")
    result = invoke(path, path)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("content, message", [
    (None, "experiment record not found"),
    (b"{not json", "not valid JSON"),
    (b'{"format": "purenn.experiment/2", "kind": "mnist"}', "'function', 'settings', 'grid'"),
    (b'{"format": "purenn.run/1"}', "compare takes experiment records"),
])
def test_hostile_or_missing_records_are_refused_without_a_traceback(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    good = tmp_path / "a.json"
    write_function_experiment(good, [X], range(5))
    result = invoke(good, path)
    assert result.exit_code == 2, result.output  # as `purenn plot` and `diff` refuse a bad record
    assert message in result.output and "Traceback" not in result.output


def test_a_record_larger_than_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: no disk is spent
        f.truncate(MAX_EXPERIMENT_BYTES + 1)
    result = invoke(path, path)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"{MAX_EXPERIMENT_BYTES}" in result.output.replace(",", ""), result.output


def test_without_scipy_the_command_names_the_stats_extra(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X], range(5))
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    result = invoke(path, path)
    assert result.exit_code == 2 and 'pip install "purenn[stats]"' in result.output


def test_without_matplotlib_o_names_the_plot_extra_and_writes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X], range(5))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    result = invoke(path, path, "-o", tmp_path / "d.png")
    assert result.exit_code == 2 and 'pip install "purenn[plot]"' in result.output
    assert not os.path.exists(tmp_path / "d.png")


def test_a_name_too_long_for_the_file_system_is_refused_without_a_traceback(tmp_path):
    path = tmp_path / "a.json"
    write_function_experiment(path, [X], range(5))
    for side in ("x" * 300, f"{path}:lr={'9' * 300}"):
        result = invoke(side, path)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_integer_settings_are_matched_exactly(tmp_path):
    """10**20 and 10**20 + 1 are different groups, though they are one float."""
    path = tmp_path / "a.json"
    write_function_experiment(path, [X, Y], range(5), grid={"n": [10**20, 10**20 + 1]})
    data = json.loads(invoke(f"{path}:n={10**20}", f"{path}:n={10**20 + 1}", "--json", "-").stdout)
    assert data["metrics"]["test_accuracy"]["mean_b"] == pytest.approx(np.mean(Y))
    assert same_setting("100000000000000000001", 10**20 + 1) and not same_setting("1e20", 10**20 + 1)
    assert same_setting("1e3", 1000) and same_setting("64.0", 64)
