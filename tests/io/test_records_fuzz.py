"""Garbage in, a RecordError out (purenn.recipes.records): Hypothesis feeds ``read_run_record``
random bytes, truncated valid records, and valid records with one JSON value replaced by a value
of another type or of the same type. Each must be refused with a RecordError naming the file,
or read; and what reads must mean what the schema says (checked here independently of the
reader: numbered epochs, finite losses, accuracies in [0, 1], digests of exactly 64 hex digits,
copies of one setting equal, ...). Every command that reads run records (``reproduce``,
``plot``, ``diff``) then gives a message and an exit status for the same file, never a
traceback."""

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from purenn.io.records import RecordError
from purenn.recipes.presets import PRESETS
from purenn.recipes.records import read_run_record, write_run_record
from purenn.recipes.runs import RunConfig, TrainedRun, config_from_record, record_differences, run_record
from purenn.training import EpochLog, History
from purenn_cli.main import app

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        write_tiny_mnist(Path(d), train=120, test=40)
        yield Path(d)


@pytest.fixture(scope="module")
def good(folder) -> str:
    """The text of a real run record of the tutorial preset."""
    config = RunConfig("seed", epochs=2, limit=100, seed=7)
    params = ({"w": np.zeros((2, 2), np.float32)},)
    history = History((EpochLog(1, 2, 0.5, 0.4, 0.9), EpochLog(2, 2, 0.25)))
    trained = TrainedRun(PRESETS["seed"].model, params, (), history)
    write_run_record(folder / "good.json", run_record(config, trained, 100,
                                                   {"test_accuracy": 0.9, "train_seconds": 1.5}))
    return (folder / "good.json").read_text()


def _read_or_refuse(folder: Path, data: bytes) -> None:
    path = folder / "fuzzed.json"
    path.write_bytes(data)
    try:
        record = read_run_record(path)
    except RecordError as e:
        assert "fuzzed.json" in str(e)
        _commands_say_why(folder, refused=True)
        return
    means_what_the_schema_says(record)
    try:  # what `purenn reproduce` does with a record that read
        record_differences(record, config_from_record(record))
    except RecordError:
        pass
    _commands_say_why(folder, refused=False)


def _commands_say_why(folder: Path, *, refused: bool) -> None:
    """``reproduce``, ``plot`` and ``diff`` of the fuzzed record: a message and an exit status
    each (2 or 1 for a refused record, naming it), never an exception."""
    runner = CliRunner()
    fuzzed = str(folder / "fuzzed.json")
    for args in (["reproduce", fuzzed, "--data-dir", str(folder)],
                 ["plot", fuzzed, "-o", str(folder / "fuzzed.png"), "--width", "640", "--height", "320"],
                 ["diff", str(folder / "good.json"), fuzzed]):
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        if refused:
            assert result.exit_code != 0 and "error:" in result.output and "fuzzed.json" in result.output, (
                args, result.output)


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _count(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def means_what_the_schema_says(record: dict[str, Any]) -> None:
    """What a run record that reads may be trusted to mean, stated apart from the reader."""
    assert record["format"] == "purenn.run/1"
    assert _count(record["seed"]) and isinstance(record["digest"], str) and _HEX64.fullmatch(record["digest"])
    config = record["config"]
    assert isinstance(config, dict)
    run, resolved = config.get("run", {}), config.get("resolved", {})
    assert isinstance(run, dict) and isinstance(resolved, dict)
    for copy in (run, resolved):
        assert copy.get("seed", record["seed"]) == record["seed"]
    for key in ("preset", "dataset", "limit"):
        if key in run and key in resolved:
            assert run[key] == resolved[key]
    if "train_samples" in config:
        assert _count(config["train_samples"])
        assert resolved.get("limit") is None or config["train_samples"] <= resolved["limit"]
    history = record.get("history", [])
    assert isinstance(history, list)
    for i, epoch in enumerate(history):
        assert epoch["epoch"] == i + 1 and _count(epoch["epochs"], 1) and epoch["epoch"] <= epoch["epochs"]
        assert epoch["epochs"] == resolved.get("epochs", epoch["epochs"])
        assert _real(epoch["loss"]) and math.isfinite(epoch["loss"]) and epoch["loss"] >= 0
        accuracy = epoch.get("val_accuracy")
        assert accuracy is None or (_real(accuracy) and 0 <= accuracy <= 1)
        assert epoch.get("digest") is None or (isinstance(epoch["digest"], str) and _HEX64.fullmatch(epoch["digest"]))
    if history and "early_stopping" not in record and history[-1].get("digest") is not None:
        assert history[-1]["digest"] == record["digest"]
    metrics = record.get("metrics", {})
    assert isinstance(metrics, dict)
    if "test_accuracy" in metrics:
        assert _real(metrics["test_accuracy"]) and 0 <= metrics["test_accuracy"] <= 1
    if "train_seconds" in metrics:
        seconds = metrics["train_seconds"]
        assert _real(seconds) and math.isfinite(seconds) and seconds >= 0


@_SETTINGS
@given(data=st.one_of(st.binary(max_size=500), st.text(max_size=200).map(str.encode)))
def test_random_bytes(folder, good, data):
    _read_or_refuse(folder, data)


@_SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_truncated_records(folder, good, fraction):
    data = good.encode()
    _read_or_refuse(folder, data[: int(len(data) * fraction)])


WORDS = ["500", "mlp", "cnn", "fashion-mnist", "0" * 64, "0" * 64 + "0", "purenn.run/1"]


@_SETTINGS
@given(data=st.data())
def test_one_value_replaced_by_another_type(folder, good, data):
    record, node, key = _somewhere(good, data)
    old = node[key]
    node[key] = data.draw(json_values(WORDS).filter(lambda v: type(v) is not type(old)))
    _read_or_refuse(folder, json.dumps(record).encode())


@_SETTINGS
@given(data=st.data())
def test_one_value_replaced_by_another_of_the_same_type(folder, good, data):
    # an edited seed, preset, size or loss: what reads must still mean what it says
    record, node, key = _somewhere(good, data)
    old = node[key]
    same_type = {int: st.integers(-5, 10**6), float: st.floats(), bool: st.booleans(),
                 str: st.one_of(st.text(max_size=8), st.sampled_from(WORDS),
                                st.text(min_size=1, max_size=2).map(lambda t: old + t))}  # a digest and more
    node[key] = data.draw(same_type.get(type(old), json_values(WORDS)))
    _read_or_refuse(folder, json.dumps(record).encode())


def test_the_meaning_check_refuses_what_the_reader_must_refuse(good):
    """The independent check above is not a rubber stamp: each of these is caught."""
    record = json.loads(good)
    means_what_the_schema_says(record)
    for path, value in (("digest", "0" * 64 + "x"), ("history.1.loss", float("nan")),
                        ("history.1.epoch", 3), ("metrics.test_accuracy", 1.5), ("seed", 8)):
        edited = json.loads(good)
        *parents, last = path.split(".")
        node = edited
        for k in parents:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[int(last) if isinstance(node, list) else last] = value
        with pytest.raises(AssertionError):
            means_what_the_schema_says(edited)


def _somewhere(good: str, data: st.DataObject) -> tuple[Any, Any, Any]:
    """The record, and the container and key of one place in it drawn by Hypothesis."""
    record = json.loads(good)
    path = data.draw(st.sampled_from(json_paths(record)))
    node = record
    for key in path[:-1]:
        node = node[key]
    return record, node, path[-1]
