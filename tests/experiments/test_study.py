"""The public experiment API (purenn.experiments.run, resume): a caller's function over seeds x a
grid, its results checked, its record written after every run and continued when interrupted, its
provenance, and every argument that cannot work refused before anything runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap

import _tasks
import numpy as np
import pytest

import purenn as pn
from purenn.experiments import study as study_module
from purenn.experiments.record import MAX_EPOCHS, MAX_METRICS, MAX_NAME_LENGTH, MAX_RUNS, read_experiment
from purenn.io.provenance import indices_digest

GRID = {"lr": [0.05, 0.01], "width": [4, 8]}


def test_a_study_holds_every_run_and_a_summary_per_setting(tmp_path):
    study = pn.experiments.run(_tasks.fit_toy, seeds="0-2", grid=GRID, settings={"epochs": 2},
                               record=tmp_path / "e.json")
    assert [g.settings for g in study.groups] == [{"lr": 0.05, "width": 4}, {"lr": 0.05, "width": 8},
                                                   {"lr": 0.01, "width": 4}, {"lr": 0.01, "width": 8}]
    assert [(r.group, r.seed, r.status) for r in study.runs] == [(g, s, "ok") for g in range(4) for s in range(3)]
    group = study.groups[1]
    accuracies = group.values("accuracy")
    assert group.summary["metrics"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert group.summary["metrics"]["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert group.summary["ok"] == 3 and study.finished and study.settings == {"epochs": 2}
    alone = _tasks.fit_toy(2, lr=0.05, width=8, epochs=2)  # a run is the function called as fn(seed, **settings)
    run = study.runs[5]
    assert (run.digest, run.metrics["accuracy"]) == (alone["digest"], alone["accuracy"])
    assert [h["loss"] for h in run.history] == list(alone["history"].loss)
    assert run.history[0]["epoch"] == 1 and "epochs" not in run.history[0]
    assert read_experiment(tmp_path / "e.json") == study.record
    assert "12 ok, 0 failed, 0 not started" in repr(study)


def test_each_run_gets_its_context():
    study = pn.experiments.run(_tasks.context_of, seeds=[3], grid={"x": [1, 2]}, settings={"y": "a"},
                               options={"data_dir": "/data"})
    assert [r.metrics for r in study.runs] == [{"group": 0, "seed": 3, "x": 1, "same_options": True},
                                                {"group": 1, "seed": 3, "x": 2, "same_options": True}]
    assert pn.experiments.current_run() is None
    pn.experiments.report("epoch", epoch=1)  # outside a run: nothing


# --- what a run function returns -----------------------------------------------------------------


@pytest.mark.parametrize("value, says", [
    (3.0, "a run function must return a mapping of metric name -> number"),
    ({"accuracy": float("nan")}, "metric `accuracy` must be a finite number or a bool, got nan"),
    ({"accuracy": "high"}, "metric `accuracy` must be a finite number or a bool"),
    ({"a" * (MAX_NAME_LENGTH + 1): 1.0}, f"a metric's name must be a string of 1 to {MAX_NAME_LENGTH} characters"),
    ({f"m{i}": 1.0 for i in range(MAX_METRICS + 1)}, f"a run may report at most {MAX_METRICS} metrics, got {MAX_METRICS + 1}"),
    ({"digest": "abc"}, "`digest` must be 64 lowercase hex characters"),
    ({"history": [{"loss": 1.0}] * (MAX_EPOCHS + 1)}, f"holds {MAX_EPOCHS + 1} epochs, more than the {MAX_EPOCHS}"),
    ({"history": [{"epoch": 2, "loss": 1.0}]}, "`history[0]` must be a mapping of numbers for epoch 1"),
    ({"history": [{"loss": "x"}]}, "`history[0].loss` must be a number, a bool or None"),
    ({"samples": {"train": [[1, 2]]}}, "sample indices must be a 1-d sequence of integers"),
])
def test_a_result_that_is_not_a_runs_is_refused_saying_why(value, says):
    with pytest.raises(pn.ArgumentError, match=_escaped(says)):
        study_module.result_data(value)


def test_such_a_result_fails_its_run_and_the_others_finish():
    study = pn.experiments.run(_tasks.returns, seeds=[0], grid={"value": [3.0, None]})
    assert [r.status for r in study.runs] == ["failed", "failed"]
    assert "a run function must return a mapping of metric name -> number" in study.runs[0].error
    study = pn.experiments.run(_tasks.fails_for_seed, seeds=[0, 1, 2], settings={"victim": 1})
    assert [r.status for r in study.runs] == ["ok", "failed", "ok"]
    assert study.runs[1].error == "ValueError: seed 1 fails" and study.runs[1].attempts == 1


def _escaped(text):
    return re.escape(text)


def test_results_just_within_the_limits_are_kept():
    value = {**{f"m{i}": float(i) for i in range(MAX_METRICS)},
             "history": [{"loss": 1.0, "x" * MAX_NAME_LENGTH: True}] * MAX_EPOCHS}
    data = study_module.result_data(value)
    assert len(data["metrics"]) == MAX_METRICS and len(data["history"]) == MAX_EPOCHS
    assert data["history"][-1]["epoch"] == MAX_EPOCHS


def test_a_history_may_be_purenns_own():
    history = pn.History((pn.EpochLog(1, 2, 0.5, val_accuracy=0.75), pn.EpochLog(2, 2, 0.25)))
    assert study_module.result_data({"history": history})["history"] == [
        {"epoch": 1, "loss": 0.5, "val_loss": None, "val_accuracy": 0.75, "lr_scale": None, "digest": None,
         "accuracy": None, "metrics": None, "average_digest": None},
        {"epoch": 2, "loss": 0.25, "val_loss": None, "val_accuracy": None, "lr_scale": None, "digest": None,
         "accuracy": None, "metrics": None, "average_digest": None}]


# --- arguments refused before anything runs ------------------------------------------------------


@pytest.mark.parametrize("arguments, says", [
    ({"seeds": []}, "`seeds` must hold 1 to"),
    ({"seeds": [0, 0]}, "`seeds` must name each seed once"),
    ({"seeds": [-1]}, "`seeds` must hold 1 to"),
    ({"seeds": "3-1"}, "runs backwards"),
    ({"seeds": 5}, "`seeds` must be seeds"),
    ({"seeds": [0], "grid": {"lr": []}}, "`grid`: `lr` has no values"),
    ({"seeds": [0], "grid": {"lr": 0.1}}, "the values of `lr` must be a list"),
    ({"seeds": [0], "grid": {"lr": [0.1, 0.1]}}, "`lr` names a value twice"),
    ({"seeds": [0], "grid": {"seed": [1]}}, "a setting's name must be a Python identifier"),
    ({"seeds": [0], "grid": {"x" * (MAX_NAME_LENGTH + 1): [1]}}, "a setting's name must be"),
    ({"seeds": [0], "grid": {"lr": [[0.1]]}}, "setting `lr` must be a JSON scalar"),
    ({"seeds": [0], "settings": {"lr": float("inf")}}, "setting `lr` must be a JSON scalar"),
    ({"seeds": [0], "settings": {"lr": 0.1}, "grid": {"lr": [0.2]}}, "are in both `settings` and `grid`"),
    ({"seeds": [0], "jobs": 0}, "`jobs` must be a positive integer"),
    ({"seeds": [0], "executor": object()}, "`executor` must have a submit(fn, *args) method"),
    ({"seeds": [0], "executor": object(), "scheduler": "tcp://x:1"}, "give either `executor` or `scheduler`"),
    ({"seeds": [0], "data_files": ["/nonexistent/data.csv"]}, "data file '/nonexistent/data.csv' cannot be read"),
])
def test_arguments_that_cannot_work_are_refused(arguments, says, tmp_path):
    with pytest.raises(pn.ArgumentError, match=_escaped(says)):
        pn.experiments.run(_tasks.fit_toy, record=tmp_path / "e.json", **arguments)
    assert not (tmp_path / "e.json").exists()


def test_the_record_may_not_be_a_data_file(tmp_path):
    data = tmp_path / "e.json"
    data.write_text("[1, 2]")
    with pytest.raises(pn.ArgumentError, match="is the data file"):
        pn.experiments.run(_tasks.fit_toy, seeds=[0], data_files=[data], record=data)
    assert data.read_text() == "[1, 2]"


def test_a_function_workers_cannot_import_is_refused_for_them():
    def nested(seed):
        return {}

    with pytest.raises(pn.ArgumentError, match="cannot be sent to worker processes: define it at the top level"):
        pn.experiments.run(nested, seeds=[0], jobs=2)
    assert pn.experiments.run(nested, seeds=[0]).runs[0].status == "ok"  # in this process it runs


def test_the_number_of_runs_is_bounded_just_above_the_limit(tmp_path):
    assert MAX_RUNS == 100_000
    folder = tmp_path / "missing"  # a record that cannot be written: refused after the plan is accepted
    with pytest.raises(pn.ArgumentError, match="'.*missing/e.json'|folder"):
        pn.experiments.run(_tasks.fit_toy, seeds=range(MAX_RUNS), record=folder / "e.json")
    with pytest.raises(pn.ArgumentError, match=f"make {MAX_RUNS + 1} runs, more than the {MAX_RUNS}"):
        pn.experiments.run(_tasks.fit_toy, seeds=range(9091), grid={"lr": [i / 100 for i in range(1, 12)]},
                           record=folder / "e.json")  # 11 x 9091 = 100001


def test_purenns_own_runs_check_their_settings():
    with pytest.raises(pn.ArgumentError, match=r"\['momentum'\] are not settings of a mnist run"):
        pn.experiments.run(pn.experiments.tasks.mnist_trial, seeds=[0], settings={"momentum": 0.9})
    with pytest.raises(pn.ArgumentError, match="do not make a xor run"):
        pn.experiments.run(pn.experiments.tasks.xor_trial, seeds=[0], grid={"epochs": [0, 1]})


# --- interrupted, continued -------------------------------------------------------------------


def test_an_interrupted_study_keeps_its_finished_runs_and_continues(tmp_path):
    path = tmp_path / "e.json"
    whole = pn.experiments.run(_tasks.fit_toy, seeds=range(3), grid={"lr": [0.05, 0.01]})
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the run of seed 2 of the first group
        pn.experiments.run(_tasks.interrupted_at, seeds=range(3), grid={"lr": [0.05, 0.01]},
                           settings={"marker": str(tmp_path / "once")}, record=path)
    record = read_experiment(path)
    assert [r["status"] for r in record["runs"]] == ["ok", "ok"] + ["not_started"] * 4
    assert record["summary"] == {"ok": 2, "failed": 0, "not_started": 4}
    again = pn.experiments.resume(path, _tasks.interrupted_at)
    assert [r.digest for r in again.runs] == [r.digest for r in whole.runs]
    assert again.record["runs"][:2] == record["runs"][:2]  # the finished runs were kept, not run again


def test_running_the_same_study_again_runs_only_what_is_missing(tmp_path):
    path = tmp_path / "e.json"
    first = pn.experiments.run(_tasks.counts_runs, seeds=range(2), settings={"folder": str(tmp_path)},
                               record=path)
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-0", "ran-1"]
    second = pn.experiments.run(_tasks.counts_runs, seeds=range(2), settings={"folder": str(tmp_path)},
                                record=path)
    assert second.record["runs"] == first.record["runs"]
    assert sorted(p.read_text() for p in tmp_path.glob("ran-*")) == ["1", "1"]  # none ran twice


def test_a_record_of_another_study_is_refused_naming_what_differs(tmp_path):
    path = tmp_path / "e.json"
    pn.experiments.run(_tasks.fit_toy, seeds=[0], grid={"lr": [0.05]}, record=path)
    before = path.read_bytes()
    with pytest.raises(pn.ArgumentError, match=r"holds another experiment \(its grid is \{'lr': \[0.05\]\}, "
                                               r"now \{'lr': \[0.01\]\}\)"):
        pn.experiments.run(_tasks.fit_toy, seeds=[0], grid={"lr": [0.01]}, record=path)
    with pytest.raises(pn.ArgumentError, match="its function is"):
        pn.experiments.run(_tasks.returns, seeds=[0], grid={"lr": [0.05]}, record=path)
    path.with_name("x.json").write_text("{}")
    with pytest.raises(pn.ArgumentError, match="exists and cannot be continued"):
        pn.experiments.run(_tasks.fit_toy, seeds=[0], record=path.with_name("x.json"))
    assert path.read_bytes() == before


def test_resume_needs_the_callers_function_and_never_imports_it(tmp_path):
    path = tmp_path / "e.json"
    pn.experiments.run(_tasks.fit_toy, seeds=[0], record=path)
    with pytest.raises(pn.ArgumentError, match="the caller's code: pass that function"):
        pn.experiments.resume(path)
    with pytest.raises(pn.ArgumentError, match=r"was run with _tasks:fit_toy, not with _tasks:returns"):
        pn.experiments.resume(path, _tasks.returns)


# --- provenance ---------------------------------------------------------------------------------


def test_every_run_records_where_it_came_from(tmp_path):
    from _mnist_files import write_tiny_mnist

    (tmp_path / "data").mkdir()
    data = write_tiny_mnist(tmp_path / "data", train=20, test=10)
    listed = tmp_path / "labels.csv"
    listed.write_text("0,1,2\n")
    study = pn.experiments.run(_tasks.loads_mnist, seeds=[0, 1], settings={"data_dir": str(data)},
                               data_files=[listed])
    for run in study.record["runs"]:
        origin = run["provenance"]
        files = {os.path.basename(p): d for p, d in origin["data_files"].items()}
        assert files == {  # the files purenn loaded for the run, and the one listed
            "t10k-images-idx3-ubyte": _sha(data / "t10k-images-idx3-ubyte"),
            "t10k-labels-idx1-ubyte": _sha(data / "t10k-labels-idx1-ubyte"),
            "labels.csv": _sha(listed)}
        assert origin["function"] == "_tasks:loads_mnist" and origin["command"] == sys.argv
        assert origin["purenn"] == pn.__version__
        assert origin["git"]["code"] is None or len(origin["git"]["code"]["commit"]) == 40
    toy = pn.experiments.run(_tasks.fit_toy, seeds=[0]).record["runs"][0]["provenance"]
    assert toy["samples"] == {"train": {"count": 64, "sha256": indices_digest(np.arange(64))},
                              "test": {"count": 32, "sha256": indices_digest(np.arange(64, 96))}}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_function_of_a_script_runs_in_workers_and_is_refused_for_reproduction(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(textwrap.dedent('''
        import purenn as pn

        def train(seed, scale):
            return {"value": seed * scale}

        if __name__ == "__main__":
            study = pn.experiments.run(train, seeds=range(3), grid={"scale": [1, 10]}, jobs=2, record="s.json")
            print([r.metrics["value"] for r in study.runs])
    '''))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 2, 0, 10, 20]"
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["function"] == "__main__:train" and record["jobs"] == 2
    with pytest.raises(pn.ArgumentError, match=r"__main__:train was defined in a script run directly \(__main__\), "
                                               "which cannot be imported again: move the function into a module"):
        pn.experiments.load_function(record["function"])


@pytest.mark.parametrize("spec, says", [
    ("train", "a function is named as module:qualname"),
    ("_tasks:fit_toy.<locals>.f", "a lambda or a function defined inside another"),
    ("no_such_module_here:f", "cannot import no_such_module_here"),
    ("_tasks:no_such_function", "module _tasks has no no_such_function"),
    ("_tasks:GRID_NOT_HERE", "module _tasks has no GRID_NOT_HERE"),
])
def test_load_function_says_why_it_cannot(spec, says):
    with pytest.raises(pn.ArgumentError, match=_escaped(says)):
        pn.experiments.load_function(spec)
    assert pn.experiments.load_function("_tasks:fit_toy") is _tasks.fit_toy
