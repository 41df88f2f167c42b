"""Hostile experiment records: Hypothesis replaces one JSON value of a valid experiment record
(an XOR sweep, or MNIST runs with their run records beside it) by another, or truncates it.
``read_experiment`` must refuse it with a RecordError naming the file or read it; what reads must
mean what the schema says (checked here apart from the reader, the summary recomputed with NumPy);
and ``reproduce``, ``plot`` and ``diff`` of the file give a message and an exit status, never an
exception."""

from __future__ import annotations

import json
import math
import numbers
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fuzz_json import json_paths, json_values
from _mnist_files import write_tiny_mnist
from _records import mnist_experiment, xor_experiment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from purenn.errors import RecordError
from purenn.experiments.record import read_experiment, write_experiment
from purenn_cli.main import app

_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_HEX64 = re.compile(r"[0-9a-f]{64}")
KINDS = ("xor", "mnist")  # the records fuzzed here


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        write_tiny_mnist(root, train=120, test=40)
        write_experiment(root / "xor.json", xor_experiment())
        mnist_experiment(root)  # exp.json and exp.seed0.json, exp.seed2.json
        yield root


def _read_or_refuse(folder: Path, data: bytes) -> None:
    path = folder / "fuzzed.json"
    path.write_bytes(data)
    try:
        experiment = read_experiment(path)
    except RecordError as e:
        assert "fuzzed.json" in str(e)
        _commands_say_why(folder, refused=True)
        return
    means_what_the_schema_says(experiment)
    _commands_say_why(folder, refused=False)


def _commands_say_why(folder: Path, *, refused: bool) -> None:
    runner = CliRunner()
    fuzzed = str(folder / "fuzzed.json")
    for args in (["reproduce", fuzzed, "--data-dir", str(folder), "--jobs", "1"],
                 ["plot", fuzzed, "-o", str(folder / "fuzzed.png"), "--width", "640", "--height", "320"],
                 ["diff", str(folder / "exp.json"), fuzzed], ["diff", fuzzed, str(folder / "exp.seed0.json")]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert "all 0" not in result.output
        if refused:
            assert result.exit_code != 0 and "error:" in result.output and "fuzzed.json" in result.output, (
                args, result.output)


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _fraction(v: Any) -> bool:
    return _real(v) and 0 <= v <= 1


def _non_negative(v: Any) -> bool:
    return _real(v) and math.isfinite(v) and v >= 0


def means_what_the_schema_says(experiment: dict[str, Any]) -> None:
    """What an experiment record that reads may be trusted to mean, stated apart from the reader."""
    assert experiment["format"] == "purenn.experiment/2" and experiment["kind"] in KINDS
    seeds, runs, groups = experiment["seeds"], experiment["runs"], experiment["groups"]
    assert seeds and len(set(seeds)) == len(seeds) and all(isinstance(s, int) and s >= 0 for s in seeds)
    assert len(groups) == 1 and experiment["grid"] == {} and groups[0]["settings"] == {}
    assert [(r["group"], r["seed"]) for r in runs] == [(0, s) for s in seeds]  # every run, unfinished too
    for run in runs:
        assert run["status"] in ("ok", "failed", "not_started") and isinstance(run["attempts"], int)
        assert (run["attempts"] == 0) == (run["status"] == "not_started")
        if run["status"] != "ok":
            assert (run["error"] is None) == (run["status"] == "not_started")
            assert run["digest"] is None and run["history"] == [] and run["metrics"] == {}
            assert run["record"] is None and run["provenance"] is None
            continue
        metrics = run["metrics"]
        assert run["error"] is None and isinstance(run["digest"], str) and _HEX64.fullmatch(run["digest"])
        assert _non_negative(metrics["loss"]) and _non_negative(metrics["train_seconds"])
        for i, point in enumerate(run["history"]):
            assert point["epoch"] == i + 1 and _non_negative(point["loss"])
            assert point.get("val_accuracy") is None or _fraction(point["val_accuracy"])
        assert not run["history"] or run["history"][-1]["loss"] == metrics["loss"]
        if experiment["kind"] == "mnist":
            name = run["record"]
            assert set(metrics) == {"test_accuracy", "loss", "train_seconds"} and _fraction(metrics["test_accuracy"])
            assert isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..") and "\\" not in name
        else:
            assert set(metrics) == {"solved", "loss", "train_seconds"} and isinstance(metrics["solved"], bool)
            assert run["record"] is None
    finished = [r for r in runs if r["status"] == "ok"]
    counts = {s: sum(r["status"] == s for r in runs) for s in ("ok", "failed", "not_started")}
    assert experiment["summary"] == counts and {k: groups[0]["summary"][k] for k in counts} == counts
    names = {m for r in finished for m in r["metrics"]}
    assert set(groups[0]["summary"]["metrics"]) == names
    for metric in names:
        values = np.array([float(r["metrics"][metric]) for r in finished], dtype=float)
        s = groups[0]["summary"]["metrics"][metric]
        assert s["n"] == len(values)
        if len(values):  # to within rounding: what another correct formula would give
            near = {"rel": 1e-9, "abs": 1e-12 * np.abs(values).max()}
            assert s["mean"] == pytest.approx(values.mean(), **near)
            assert s["std"] == pytest.approx(values.std(ddof=1) if len(values) > 1 else 0.0, **near)
            assert (s["min"], s["max"]) == (values.min(), values.max())


WORDS = ["ok", "failed", "not_started", "mnist", "xor", "function", "exp.seed0.json", "exp.seed2.json",
         "../exp.seed0.json", "0" * 64, "purenn.experiment/1", "purenn.experiment/2",
         "purenn.experiments.tasks:xor_trial", "purenn.experiments.tasks:mnist_trial"]


@_SETTINGS
@given(data=st.data())
def test_one_value_replaced_by_another_type(folder, data):
    experiment, node, key = _somewhere(folder, data)
    old = node[key]
    node[key] = data.draw(json_values(WORDS).filter(lambda v: type(v) is not type(old)))
    _read_or_refuse(folder, json.dumps(experiment).encode())


@_SETTINGS
@given(data=st.data())
def test_one_value_replaced_by_another_of_the_same_type(folder, data):
    experiment, node, key = _somewhere(folder, data)
    old = node[key]
    same_type = {int: st.integers(-5, 10**6), float: st.floats(), bool: st.booleans(),
                 str: st.one_of(st.text(max_size=8), st.sampled_from(WORDS),
                                st.text(min_size=1, max_size=2).map(lambda t: old + t))}
    node[key] = data.draw(same_type.get(type(old), json_values(WORDS)))
    _read_or_refuse(folder, json.dumps(experiment).encode())


@_SETTINGS
@given(kind=st.sampled_from(("xor.json", "exp.json")), fraction=st.floats(0, 1, exclude_max=True))
def test_truncated_records(folder, kind, fraction):
    data = (folder / kind).read_bytes()
    _read_or_refuse(folder, data[: int(len(data) * fraction)])


def test_the_meaning_check_refuses_what_the_reader_must_refuse(folder):
    experiment = json.loads((folder / "xor.json").read_text())
    means_what_the_schema_says(experiment)
    for edit in (lambda e: e["runs"].pop(1), lambda e: e["groups"][0]["summary"]["metrics"]["loss"].update(std=0.0),
                 lambda e: e["runs"][0].update(digest="0" * 64 + "x"), lambda e: e["summary"].update(failed=0)):
        edited = json.loads((folder / "xor.json").read_text())
        edit(edited)
        with pytest.raises(AssertionError):
            means_what_the_schema_says(edited)


def _somewhere(folder: Path, data: st.DataObject) -> tuple[Any, Any, Any]:
    """One of the experiment records, and the container and key of one place in it."""
    experiment = json.loads((folder / data.draw(st.sampled_from(("xor.json", "exp.json")))).read_text())
    path = data.draw(st.sampled_from(json_paths(experiment)))
    node = experiment
    for key in path[:-1]:
        node = node[key]
    return experiment, node, path[-1]
