"""The experiment record (purenn.experiments.record, format /2): its summaries, every field
checked at read time (and at write time, so a record that would not read back is never written),
one run per group and seed with the unfinished ones, run records that must be their entry's, and
records of format /1 still read."""

from __future__ import annotations

import copy
import json
import math
import os
import re

import attrs
import pytest
from _records import (
    DATA,
    XOR_SETTINGS,
    failed_entry,
    mnist_experiment,
    mnist_record,
    xor_entry,
    xor_experiment,
)

from purenn.errors import RecordError
from purenn.experiments import record as exp_record
from purenn.experiments.record import (
    check_experiment,
    make_experiment,
    read_experiment,
    read_run_or_experiment,
    run_record_name,
    run_record_of,
    summarize_group,
    write_experiment,
)
from purenn.experiments.summary import statistics
from purenn.experiments.tasks import XOR_FUNCTION, XorTask
from purenn.io.records import MAX_RECORD_BYTES
from purenn.recipes.runs import RunConfig
from purenn.validation import Rule

# ---------------------------------------------------------------- the summary


def test_the_standard_deviation_is_the_sample_ones():
    # deviations from the mean 2.5: 1.5, 0.5, 0.5, 1.5; squares sum to 5; over n - 1 = 3
    s = statistics([1.0, 2.0, None, 3.0, 4.0])
    assert s == {"n": 4, "mean": 2.5, "std": pytest.approx(math.sqrt(5 / 3), rel=1e-15), "min": 1.0, "max": 4.0}
    assert statistics([0.25, 0.75])["std"] == pytest.approx(math.sqrt(0.125), rel=1e-15)
    assert statistics([0.5]) == {"n": 1, "mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5}
    assert statistics([None]) == {"n": 0, "mean": None, "std": None, "min": None, "max": None}


def test_statistics_of_huge_finite_values_do_not_overflow():
    s = statistics([1e308, 1e308, 0.0])  # the sum and the squares would overflow a float
    assert s["mean"] == pytest.approx(1e308 / 3 * 2) and s["std"] == pytest.approx(1e308 / math.sqrt(3))
    assert math.isfinite(s["std"])


def test_the_summary_counts_unfinished_runs_and_leaves_them_out_of_the_statistics():
    runs = [xor_entry(0), failed_entry(1), xor_entry(2)]
    summary = summarize_group(runs)
    assert (summary["ok"], summary["failed"], summary["not_started"]) == (2, 1, 0)
    assert summary["metrics"]["loss"]["n"] == 2 and "test_accuracy" not in summary["metrics"]
    assert summary["metrics"]["solved"] == statistics([True, True])  # a bool's mean: the fraction true


# ---------------------------------------------------------------- records to edit


def _set(record, path, value):
    """A copy of ``record`` with the value at dotted ``path`` (``runs.0.loss``) set, or removed
    when ``value`` is ``_DELETE``."""
    record = copy.deepcopy(record)
    *parents, last = path.split(".")
    node = record
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return record


_DELETE = object()


def test_a_record_round_trips_with_its_failed_runs(tmp_path):
    experiment = xor_experiment()
    write_experiment(tmp_path / "x.json", experiment)
    back = read_experiment(tmp_path / "x.json")
    assert back == json.loads(json.dumps(experiment))
    assert [(r["seed"], r["status"]) for r in back["runs"]] == [(0, "ok"), (1, "failed"), (2, "ok")]
    assert back["runs"][1]["error"] == "ValueError: three is not allowed" and back["runs"][1]["attempts"] == 2
    assert read_run_or_experiment(tmp_path / "x.json") == ("experiment", back)


def test_a_grid_makes_one_group_per_combination_in_order():
    experiment = xor_experiment(seeds=(0, 1), failed=(), grid={"hidden": [2, 3], "lr": [0.1, 0.5]},
                                not_started=(1,))
    assert [g["settings"] for g in experiment["groups"]] == [
        {"hidden": 2, "lr": 0.1}, {"hidden": 2, "lr": 0.5}, {"hidden": 3, "lr": 0.1}, {"hidden": 3, "lr": 0.5}]
    assert [(r["group"], r["seed"], r["status"]) for r in experiment["runs"]] == [
        (g, s, "ok" if s == 0 else "not_started") for g in range(4) for s in (0, 1)]
    assert experiment["groups"][2]["summary"]["not_started"] == 1
    assert experiment["summary"] == {"ok": 4, "failed": 0, "not_started": 4}
    swapped = _set(experiment, "groups.0.settings", {"hidden": 2, "lr": 0.5})
    with pytest.raises(RecordError, match=r"`groups` must be the 4 combinations of the grid's values, in order"):
        check_experiment(swapped)


def test_a_record_that_leaves_out_its_unfinished_runs_is_never_made():
    runs = [xor_entry(0), xor_entry(2)]
    with pytest.raises(RecordError, match=r"`runs` must hold one run per group and seed, unfinished ones included"):
        make_experiment(kind="xor", function=XOR_FUNCTION, settings=XOR_SETTINGS, grid={}, seeds=(0, 1, 2),
                        runs=runs, jobs=1, scheduler=None)


def test_run_records_are_named_from_the_experiments_own_path():
    assert run_record_name("runs/exp.json", 0, 3, 1) == "exp.seed3.json"
    assert run_record_name("/a/b/exp.json", 2, 3, 4) == "exp.g2.seed3.json"
    assert run_record_name("exp", 0, 1, 1) == "exp.seed1.json"


# (dotted path, value, what the message says)
BAD = [
    ("kind", "cnn", r"`kind` must be one of \('mnist', 'xor', 'function'\), got 'cnn'"),
    ("function", "train", r"`function` must be a function as module:qualname, got 'train'"),
    ("function", "study:train", r"`function` of a xor experiment must be 'purenn\.experiments\.tasks:xor_trial'"),
    ("settings.layers", 3, r"`settings` has unknown key\(s\) \['layers'\]"),
    ("settings.epochs", 0, r"`settings\.epochs` must be a positive integer, got 0"),
    ("settings.threads", 5000, r"`settings\.threads` must be a number of threads from 1 to 1024 or None"),
    ("settings.lr", "0.1", r"`settings\.lr` must be a positive number, got '0\.1' of type str"),
    ("settings.lr", [0.1], r"`settings` must be an object of setting name"),
    ("grid", {"epochs": [3]}, r"\['epochs'\] are in both `settings` and `grid`"),
    ("grid", {"x": []}, r"`grid` must be an object of setting name .* -> a non-empty list of distinct JSON scalars"),
    ("grid", {"x": [1, 1]}, r"`grid` must be an object of setting name"),
    ("groups", [], r"`groups` must be the 1 combinations of the grid's values"),
    ("seeds", [], r"`seeds` must list from 1 to 100000 seeds, each once"),
    ("seeds", [0, 0, 2], r"`seeds` must list from 1 to 100000 seeds, each once"),
    ("seeds.1", -1, r"`seeds\[1\]` must be a non-negative integer, got -1"),
    ("seeds", [0, 2, 1], r"`runs` must hold one run per group and seed, unfinished ones included"),
    ("runs", _DELETE, r"lacks required key\(s\) \['runs'\]"),
    ("versions", _DELETE, r"lacks required key\(s\) \['versions'\]"),
    ("jobs", 0, r"`jobs` must be a positive integer, got 0"),
    ("scheduler", 3, r"`scheduler` must be a string or None, got 3"),
    ("executor", 3, r"`executor` must be a string or None, got 3"),
    ("runs.0", "ok", r"`runs\[0\]` must be a JSON object"),
    ("runs.0.extra", 1, r"`runs\[0\]` has unknown key\(s\) \['extra'\]"),
    ("runs.0.group", 1, r"`runs` must hold one run per group and seed"),
    ("runs.0.status", "done", r"`runs\[0\]\.status` must be one of \('ok', 'failed', 'not_started'\), got 'done'"),
    ("runs.0.attempts", 0, r"`runs\[0\]\.attempts` must be 0 for a run not started and at least 1 otherwise"),
    ("runs.0.error", "boom", r"`runs\[0\]\.error` must be null for a xor run whose status is 'ok', got 'boom'"),
    ("runs.0.digest", None, r"`runs\[0\]\.digest` must have a value for a xor run whose status is 'ok'"),
    ("runs.0.digest", "a" * 64 + "x", r"`runs\[0\]\.digest` must be 64 lowercase hex characters"),
    ("runs.0.digest", "a" * 64 + "\n", r"`runs\[0\]\.digest` must be 64 lowercase hex characters"),
    ("runs.0.seconds", None, r"`runs\[0\]\.seconds` must have a value for a xor run whose status is 'ok'"),
    ("runs.0.seconds", float("inf"), r"`runs\[0\]\.seconds` must be a finite number >= 0 or None"),
    ("runs.0.record", "x.json", r"`runs\[0\]\.record` must be null for a xor run whose status is 'ok'"),
    ("runs.0.metrics.loss", -1.0, r"`runs\[0\]\.metrics\.loss` must be a finite number >= 0, got -1\.0"),
    ("runs.0.metrics.loss", float("nan"), r"`runs\[0\]\.metrics` must be an object of at most 64 metrics"),
    ("runs.0.metrics.loss", "low", r"`runs\[0\]\.metrics` must be an object of at most 64 metrics"),
    ("runs.0.metrics.loss", 0.01, r"`runs\[0\]\.metrics\.loss` is 0\.01 but its last epoch's is 0\.125"),
    ("runs.0.metrics.solved", _DELETE, r"`runs\[0\]\.metrics` lacks required key\(s\) \['solved'\]"),
    ("runs.0.metrics.solved", 1.0, r"`runs\[0\]\.metrics\.solved` must be True or False"),
    ("runs.0.metrics.test_accuracy", 0.5, r"`runs\[0\]\.metrics` has unknown key\(s\) \['test_accuracy'\]"),
    ("runs.0.history.0", 3, r"`runs\[0\]\.history\[0\]` must be an epoch"),
    ("runs.0.history.0.loss", "x", r"`runs\[0\]\.history\[0\]` must be an epoch"),
    ("runs.0.history.0.digest", "x", r"`runs\[0\]\.history\[0\]` must be an epoch"),
    ("runs.0.history.0.epoch", 2, r"`runs\[0\]\.history\[0\]\.epoch` must be 1 \(epochs are numbered"),
    ("runs.0.provenance.data_files", {"a.csv": "b"}, r"`runs\[0\]\.provenance\.data_files` must be an object of path -> SHA-256"),
    ("runs.0.provenance.git", {"purenn": {"commit": "x", "dirty": False}}, r"`runs\[0\]\.provenance\.git\.purenn` must be null or"),
    ("runs.1.digest", "0" * 64, r"`runs\[1\]\.digest` must be null for a xor run whose status is 'failed'"),
    ("runs.1.error", None, r"`runs\[1\]\.error` must have a value for a xor run whose status is 'failed'"),
    ("runs.1.provenance", {}, r"`runs\[1\]\.provenance` must be null for a xor run whose status is 'failed'"),
    ("runs.1.history", [{"epoch": 1, "loss": 0.5}], r"`runs\[1\]` has results but is 'failed'"),
    ("runs.1.attempts", 0, r"`runs\[1\]\.attempts` must be 0 for a run not started"),
    ("runs.1.status", "not_started", r"`runs\[1\]\.error` must be null for a xor run whose status is 'not_started'"),
    ("summary.failed", 0, r"`summary\.failed` is 0 but the runs give 1"),
    ("summary.not_started", _DELETE, r"`summary` must be an object of \['failed', 'not_started', 'ok'\]"),
    ("groups.0.summary.ok", 3, r"`groups\[0\]\.summary\.ok` is 3 but the runs give 2"),
    ("groups.0.summary.metrics.loss.n", 3, r"`groups\[0\]\.summary\.metrics\.loss\.n` is 3 but the runs give 2"),
    ("groups.0.summary.metrics.loss.n", 2.0, r"`groups\[0\]\.summary\.metrics\.loss\.n` is 2\.0 but the runs give 2"),
    ("groups.0.summary.metrics.loss.std", 0.0, r"`groups\[0\]\.summary\.metrics\.loss\.std` is 0\.0 but the runs give 0\.0589"),
    ("groups.0.summary.metrics.loss.mean", "0.1", r"`groups\[0\]\.summary\.metrics\.loss\.mean` is '0\.1' but the runs give"),
    ("groups.0.summary.metrics.loss.max", 0.5, r"`groups\[0\]\.summary\.metrics\.loss\.max` is 0\.5 but the runs give 0\.125"),
    ("groups.0.summary.metrics.loss", _DELETE, r"`groups\[0\]\.summary\.metrics` must be an object of \['loss', 'solved', 'train_seconds'\]"),
    ("groups.0.summary.metrics.accuracy", {}, r"`groups\[0\]\.summary\.metrics` must be an object of"),
    ("groups.0.extra", 1, r"`groups\[0\]` has unknown key\(s\) \['extra'\]"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[f"{p}={v!r:.20}" for p, v, _ in BAD])
def test_every_field_is_checked_naming_it(tmp_path, path, value, message):
    edited = _set(xor_experiment(), path, value)
    with pytest.raises(RecordError, match=message):
        check_experiment(edited)
    (tmp_path / "x.json").write_text(json.dumps(edited))
    with pytest.raises(RecordError, match=rf"x\.json'?: {message}"):
        read_experiment(tmp_path / "x.json")
    with pytest.raises(RecordError, match=message):
        write_experiment(tmp_path / "y.json", edited)
    assert not (tmp_path / "y.json").exists()


def test_the_summary_allows_another_correct_formulas_rounding():
    experiment = xor_experiment(seeds=tuple(range(7)), failed=())
    std = experiment["groups"][0]["summary"]["metrics"]["loss"]["std"]
    check_experiment(_set(experiment, "groups.0.summary.metrics.loss.std", std * (1 + 1e-12)))
    population = std * math.sqrt(6 / 7)  # the n - 1 of the sample std as n: refused
    with pytest.raises(RecordError, match=r"`groups\[0\]\.summary\.metrics\.loss\.std`"):
        check_experiment(_set(experiment, "groups.0.summary.metrics.loss.std", population))


@pytest.mark.parametrize("name", ["", ".", "..", "../exp.seed0.json", "/tmp/exp.seed0.json", "sub/exp.json",
                                  "a\\b.json", "nul\0.json", "x" * 256])
def test_run_records_are_plain_file_names_beside_the_experiment(tmp_path, name):
    experiment = mnist_experiment(tmp_path)
    with pytest.raises(RecordError, match=r"`runs\[0\]\.record` must be a plain file name"):
        check_experiment(_set(experiment, "runs.0.record", name))


def test_mnist_runs_need_their_run_record_and_accuracy(tmp_path):
    experiment = mnist_experiment(tmp_path)
    with pytest.raises(RecordError, match=r"`runs\[0\]\.record` must have a value for a mnist run whose status is 'ok'"):
        check_experiment(_set(experiment, "runs.0.record", None))
    with pytest.raises(RecordError, match=r"`runs\[2\]\.metrics` lacks required key\(s\) \['test_accuracy'\]"):
        check_experiment(_set(experiment, "runs.2.metrics.test_accuracy", _DELETE))
    with pytest.raises(RecordError, match=r"`settings` lacks required key\(s\) \['preset'\]"):
        check_experiment(_set(experiment, "settings.preset", _DELETE))
    with pytest.raises(RecordError, match=r"`settings\.preset` must be one of the presets"):
        check_experiment(_set(experiment, "settings.preset", "vgg"))


def test_the_settings_are_checked_by_the_tasks_own_rules():
    for cls in (RunConfig, XorTask):
        assert all(isinstance(f.validator, Rule) for f in attrs.fields(cls)), cls


# ---------------------------------------------------------------- run records of entries


def test_a_run_record_is_read_from_beside_the_experiment_and_must_be_its_entrys(tmp_path):
    experiment = mnist_experiment(tmp_path)
    assert run_record_of(tmp_path / "exp.json", experiment, 2)["seed"] == 2
    with pytest.raises(RecordError, match=r"`runs\[1\]` \(seed 1\) of .* has no run record"):
        run_record_of(tmp_path / "exp.json", experiment, 1)
    os.chdir(tmp_path)  # a relative path: the record is beside it, wherever that is
    assert run_record_of("exp.json", experiment, 0)["seed"] == 0


@pytest.mark.parametrize("edit, says", [
    (lambda r: {**r, "seed": 5, "config": _seeded(r["config"], 5)}, r"its seed is 5, the experiment's 0"),
    (lambda r: _set(_set(r, "digest", "1" * 64), "history.1.digest", "1" * 64), r"its digest is '1111"),
    (lambda r: _set(r, "metrics.test_accuracy", 0.5), r"its test_accuracy is 0\.5, the experiment's 0\.875"),
    (lambda r: r | {"provenance": {"data_files": {"/d/a.gz": "0" * 64}}}, r"its data_files is \{'/d/a\.gz'"),
    (lambda r: _set(r, "metrics.train_seconds", 9.0), r"its train_seconds is 9\.0, the experiment's 1\.5"),
    (lambda r: _set(r, "history.0.loss", 0.75), r"its history is \[\(1, 0\.75"),
    (lambda r: _set(_set(r, "config.run.epochs", 3), "config.resolved.epochs", 3) | {
        "history": [dict(h, epochs=3) for h in r["history"]]}, r"its settings is .*'epochs': 3"),
])
def test_a_run_record_that_is_not_the_entrys_is_refused(tmp_path, edit, says):
    experiment = mnist_experiment(tmp_path)
    experiment["runs"][0]["provenance"] = {"data_files": {}, "samples": {}}  # as written with provenance
    record = json.loads((tmp_path / "exp.seed0.json").read_text())
    (tmp_path / "exp.seed0.json").write_text(json.dumps(edit(record)))
    with pytest.raises(RecordError, match=r"exp\.seed0\.json' is not the run record of `runs\[0\]` \(seed 0\)") as info:
        run_record_of(tmp_path / "exp.json", experiment, 0)
    assert re.search(says, info.value.message), info.value.message


def _seeded(config, seed):
    config = copy.deepcopy(config)
    config["run"]["seed"] = config["resolved"]["seed"] = seed
    return config


# ---------------------------------------------------------------- size


def _padded(data, size):
    text = json.dumps(data)
    assert len(text) <= size
    return (text + " " * (size - len(text))).encode()


def test_read_refuses_a_file_larger_than_the_limit_unread(tmp_path):
    limit = exp_record.MAX_EXPERIMENT_BYTES
    assert limit == 64 * 2**20  # as documented
    (tmp_path / "x.json").write_bytes(_padded(xor_experiment(), limit))
    assert read_experiment(tmp_path / "x.json")["kind"] == "xor"  # at the limit: read
    assert read_run_or_experiment(tmp_path / "x.json")[0] == "experiment"
    (tmp_path / "x.json").write_bytes(_padded(xor_experiment(), limit + 1))
    for read in (read_experiment, read_run_or_experiment):
        with pytest.raises(RecordError, match=rf"x\.json' is {limit + 1} bytes, more than the {limit}"):
            read(tmp_path / "x.json")


def test_a_run_record_keeps_its_own_smaller_limit_when_read_either_way(tmp_path):
    (tmp_path / "r.json").write_bytes(_padded(mnist_record(0), MAX_RECORD_BYTES))
    assert read_run_or_experiment(tmp_path / "r.json")[0] == "run"
    (tmp_path / "r.json").write_bytes(_padded(mnist_record(0), MAX_RECORD_BYTES + 1))
    with pytest.raises(RecordError, match=rf"is {MAX_RECORD_BYTES + 1} bytes, more than the {MAX_RECORD_BYTES}"):
        read_run_or_experiment(tmp_path / "r.json")


def test_write_refuses_a_record_that_could_not_be_read_back(tmp_path, monkeypatch):
    experiment = xor_experiment()
    size = len(json.dumps(experiment, sort_keys=True, indent=2)) + 1
    monkeypatch.setattr(exp_record, "MAX_EXPERIMENT_BYTES", size)
    write_experiment(tmp_path / "x.json", experiment)
    assert (tmp_path / "x.json").stat().st_size == size
    monkeypatch.setattr(exp_record, "MAX_EXPERIMENT_BYTES", size - 1)
    with pytest.raises(RecordError, match=rf"would be {size} bytes, more than the {size - 1}"):
        write_experiment(tmp_path / "y.json", experiment)
    assert not (tmp_path / "y.json").exists()


# ---------------------------------------------------------------- format /1


def test_a_record_of_the_first_format_reads_as_the_current_one():
    mnist = read_experiment(DATA / "exp_v1.json")
    assert mnist["format"] == "purenn.experiment/2" and mnist["upgraded_from"] == "purenn.experiment/1"
    assert mnist["function"] == "purenn.experiments.tasks:mnist_trial" and mnist["grid"] == {}
    original = json.loads((DATA / "exp_v1.json").read_text())
    for old, new in zip(original["runs"], mnist["runs"]):
        assert new["metrics"] == {m: old[m] for m in ("test_accuracy", "loss", "train_seconds")}
        assert (new["group"], new["seed"], new["digest"], new["record"]) == (0, old["seed"], old["digest"], old["record"])
        assert new["provenance"] is None  # not recorded then
    assert mnist["groups"][0]["summary"]["metrics"]["test_accuracy"] == original["summary"]["test_accuracy"]
    assert run_record_of(DATA / "exp_v1.json", mnist, 1)["digest"] == mnist["runs"][1]["digest"]
    xor = read_experiment(DATA / "xor_v1.json")
    assert [r["metrics"]["solved"] for r in xor["runs"]] == [False, False, False]
    assert read_run_or_experiment(DATA / "xor_v1.json") == ("experiment", xor)


@pytest.mark.parametrize("path, value, message", [
    ("summary.loss.mean", 0.5, r"`summary\.loss\.mean` is 0\.5 but the runs give"),
    ("runs.0.loss", 0.5, r"`runs\[0\]\.loss` is 0\.5 but its last epoch's is"),
    ("runs.0.solved", True, r"`runs\[0\]\.solved` must be null for a finished mnist run"),
    ("seeds", [2, 1, 0], r"`runs` must hold one run per seed of `seeds`"),
    ("settings.lr", -1.0, r"`settings\.lr` must be a positive number"),
])
def test_a_record_of_the_first_format_is_checked_as_it_was(tmp_path, path, value, message):
    original = json.loads((DATA / "exp_v1.json").read_text())
    (tmp_path / "x.json").write_text(json.dumps(_set(original, path, value)))
    with pytest.raises(RecordError, match=message):
        read_experiment(tmp_path / "x.json")
