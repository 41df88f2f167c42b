"""Every preset of ``PRESETS`` (purenn/recipes/presets.py), the registry of presets: a preset added
there is checked here, with no edit to any test. Its model takes MNIST's 784 pixels to 10 classes
(tests/test_summary.py checks its summary too), its loss is a built-in one, its optimizer is made
for a run's length and serializes, and a tiny run of it trains, is pure given its inputs, and
writes a run record that reads back to the same run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import purenn as pn
from purenn.io.serialize import from_data, to_data
from purenn.losses import LOSSES
from purenn.optim import Optimizer, Schedule
from purenn.recipes.presets import PRESETS
from purenn.recipes.records import read_run_record, write_run_record
from purenn.recipes.runs import RunConfig, config_from_record, record_differences, run_record, train_preset
from purenn.tree import tree_leaves

EVERY_PRESET = pytest.mark.parametrize("name", list(PRESETS))


def _tiny_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


@EVERY_PRESET
def test_a_preset_is_a_model_from_pixels_to_ten_classes_with_a_built_in_loss(name):
    preset = PRESETS[name]
    assert preset.name == name and preset.description and preset.loss in LOSSES
    params, state = preset.model.init(np.random.default_rng(0)), preset.model.init_state()
    outputs = pn.predict(preset.model, params, _tiny_data(3)[0], state=state if preset.model.stateful else None)
    assert outputs.shape == (3, 10) and np.all(np.isfinite(outputs))


def _lrs(optimizer: Optimizer, steps: int) -> np.ndarray:
    lr = optimizer.lr  # type: ignore[attr-defined]
    return np.array([lr(t) if isinstance(lr, Schedule) else lr for t in range(steps + 1)])


@EVERY_PRESET
@pytest.mark.parametrize("steps", [1, 7, 1000])
def test_a_presets_optimizer_is_made_for_the_runs_length(name, steps):
    """An optimizer record (a schedule over ``steps`` updates peaking at the preset's ``lr``, or a
    constant one), which a run's ``--lr`` scales and a run record stores."""
    preset = PRESETS[name]
    optimizer = preset.make_optimizer(steps)
    assert isinstance(optimizer, Optimizer)
    assert from_data(json.loads(json.dumps(to_data(optimizer)))) == optimizer
    lrs = _lrs(optimizer, steps)
    assert np.all(np.isfinite(lrs)) and np.all(lrs >= 0) and lrs[:steps].max() == pytest.approx(preset.lr)
    halved = _lrs(preset.make_optimizer(steps, lr=preset.lr / 2), steps)
    np.testing.assert_allclose(halved, lrs / 2, rtol=1e-12, atol=1e-300)
    assert RunConfig(name, epochs=1, batch_size=1).optimizer(steps) == optimizer


@EVERY_PRESET
def test_a_tiny_run_of_a_preset_trains_and_its_record_reads_back(name, tmp_path):
    config = RunConfig(name, epochs=1, limit=16, batch_size=8, seed=1)
    x, y = _tiny_data(24)
    trained = train_preset(config, x, y)
    before = PRESETS[name].model.init(np.random.default_rng(1).spawn(2)[0])
    moved = [not np.array_equal(a, b) for a, b in zip(tree_leaves(trained.params), tree_leaves(before), strict=True)]
    assert any(moved) and all(np.all(np.isfinite(a)) for a in tree_leaves(trained.params))
    assert [e.epoch for e in trained.history.epochs] == [1]
    assert train_preset(config, x, y).digest == trained.digest  # pure given its inputs
    write_run_record(tmp_path / "run.json", run_record(config, trained, 16, {"test_accuracy": 0.5}))
    back = read_run_record(tmp_path / "run.json")
    assert back["digest"] == trained.digest and config_from_record(back) == config
    assert record_differences(back, config) == []
