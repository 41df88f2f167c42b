"""Garbage in, a RecordError out (purenn.io.records): Hypothesis feeds ``read_record`` random bytes,
truncated valid records, and valid records with one JSON value replaced by a value of another
type. Each must read correctly or raise RecordError, never anything else; and a record that reads
must also get through what ``purenn reproduce`` does next (``config_from_record``,
``record_differences``) with nothing worse than a RecordError: no TypeError from a
``train_samples`` of ``"500"``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fuzz_json import json_paths, json_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purenn.io.records import RecordError, read_record, write_record
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import (
    RunConfig, TrainedRun, config_from_record, record_differences, run_record,
)
from purenn.training import EpochLog, History

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.fixture(scope="module")
def good(folder) -> str:
    """The text of a real run record of the tutorial preset."""
    config = RunConfig("seed", epochs=2, limit=100, seed=7)
    params = ({"w": np.zeros((2, 2), np.float32)},)
    history = History((EpochLog(1, 2, 0.5, 0.4, 0.9), EpochLog(2, 2, 0.25)))
    trained = TrainedRun(PRESETS["seed"].model, params, (), history)
    write_record(folder / "good.json", run_record(config, trained, 100,
                                                   {"test_accuracy": 0.9, "train_seconds": 1.5}))
    return (folder / "good.json").read_text()


def _read_or_refuse(folder: Path, data: bytes) -> None:
    path = folder / "fuzzed.json"
    path.write_bytes(data)
    try:
        record = read_record(path)
    except RecordError as e:
        assert "fuzzed.json" in str(e)
        return
    try:  # what `purenn reproduce` does with a record that read
        record_differences(record, config_from_record(record))
    except RecordError:
        pass


@_SETTINGS
@given(data=st.one_of(st.binary(max_size=500), st.text(max_size=200).map(str.encode)))
def test_random_bytes(folder, data):
    _read_or_refuse(folder, data)


@_SETTINGS
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_truncated_records(folder, good, fraction):
    data = good.encode()
    _read_or_refuse(folder, data[: int(len(data) * fraction)])


WORDS = ["500", "mlp", "cnn", "fashion-mnist", "0" * 64, "purenn.run/1"]


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
    # an edited seed, preset or size: read_record and reproduce must still only say RecordError
    record, node, key = _somewhere(good, data)
    same_type = {int: st.integers(-5, 10**6), float: st.floats(), str: st.text(max_size=8),
                 bool: st.booleans()}.get(type(node[key]), json_values(WORDS))
    node[key] = data.draw(same_type)
    _read_or_refuse(folder, json.dumps(record).encode())


def _somewhere(good: str, data: st.DataObject) -> tuple[Any, Any, Any]:
    """The record, and the container and key of one place in it drawn by Hypothesis."""
    record = json.loads(good)
    path = data.draw(st.sampled_from(json_paths(record)))
    node = record
    for key in path[:-1]:
        node = node[key]
    return record, node, path[-1]
