"""One run of a preset as data: RunConfig, its optimizer, the record that describes it, and how a
record is read back (including records written before optimizers became transformations)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import purenn as pn
from purenn.errors import RecordError
from purenn.io.environment import blas_threads
from purenn.io.records import read_record, write_record
from purenn.io.serialize import from_data, to_data
from purenn.recipes import runs
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import (
    RunConfig,
    config_from_record,
    describe,
    record_differences,
    run_preset,
    run_record,
    same_update,
    train_preset,
)


def test_resolved_settings_apply_overrides_to_the_preset():
    s = RunConfig("mlp", epochs=2, lr=0.01).resolved()
    assert (s["epochs"], s["lr"], s["batch_size"]) == (2, 0.01, PRESETS["mlp"].batch_size)


def test_each_preset_gets_one_optimizer_record():
    assert RunConfig("seed").optimizer(1000) == pn.SGD(0.1)
    adam = RunConfig("mlp", epochs=2, batch_size=100).optimizer(1000)
    # 2 epochs of 10 steps: 10% of the 20 steps (2) warming up, then a cosine over the other 18
    assert adam == pn.Adam(pn.WarmUp(pn.CosineDecay(4e-3, 18), 2), b2=0.99)
    assert RunConfig("cnn", epochs=2, batch_size=100).optimizer(1000) == pn.Adam(
        pn.WarmUp(pn.CosineDecay(4e-3, 18), 2))  # 10% of 20 steps
    assert RunConfig("resnet", epochs=2, batch_size=100).optimizer(1000) == pn.Adam(
        pn.CosineDecay(3e-3, 20))  # no warm-up: a cosine over all the steps


def test_the_warm_up_and_cosine_add_up_to_the_runs_steps():
    adam = RunConfig("cnn").optimizer(60000)  # 2 epochs of 469 steps
    schedule = adam.lr
    assert (schedule.warmup_steps, schedule.schedule.total_steps) == (94, 938 - 94)
    assert schedule(0) == 0 and schedule(94) == pytest.approx(4e-3) and schedule(938) == 0


@pytest.mark.parametrize("field, value, message", [
    ("preset", "vgg", rf"`preset` must be one of the presets {re.escape(str(tuple(PRESETS)))}, got 'vgg'"),
    ("seed", -1, "`seed` must be a non-negative integer, got -1"),
    ("epochs", 0, "`epochs` must be a positive integer or None, got 0"),
    ("lr", "fast", "`lr` must be a positive number or None, got 'fast' of type str"),
])
def test_run_config_refuses_bad_fields_by_name(field, value, message):
    kwargs = {"preset": "mlp", field: value}
    with pytest.raises(pn.ArgumentError, match=message):
        RunConfig(**kwargs)


def _tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def test_a_run_trains_and_its_record_describes_it(tmp_path):
    config = RunConfig("seed", epochs=1, limit=32, seed=3)
    x, y = _tiny_data()
    trained = train_preset(config, x, y)
    model, params = trained.model, trained.params
    again = train_preset(config, x, y).params
    assert pn.params_digest(params) == pn.params_digest(again)  # pure given its inputs
    assert trained.digest == pn.params_digest(params)  # no state: the params' digest as before
    record = run_record(config, trained, 32, {"test_accuracy": 0.5})
    write_record(tmp_path / "r.json", record)
    back = read_record(tmp_path / "r.json")
    assert back["digest"] == pn.params_digest(params) and back["seed"] == 3
    assert config_from_record(back) == config
    assert from_data(back["config"]["update"]) == pn.SGD(0.1)
    assert from_data(back["config"]["model"]) == model
    assert record_differences(back, config) == []


def test_a_batchnorm_run_keeps_its_state_and_the_digest_covers_it():
    config = RunConfig("resnet", epochs=1, limit=16, batch_size=8, seed=1)
    x, y = _tiny_data(16)
    trained = train_preset(config, x, y)
    fresh = trained.model.init_state()
    assert pn.params_digest(trained.state) != pn.params_digest(fresh)  # running statistics moved
    assert trained.digest == pn.params_digest(trained.params, state=trained.state)
    assert trained.digest != pn.params_digest(trained.params)
    assert trained.digest == train_preset(config, x, y).digest  # pure given its inputs


def test_a_record_of_another_model_or_optimizer_is_reported():
    config = RunConfig("mlp", epochs=1)
    record = {"config": describe(config, 100)}
    record["config"]["model"] = to_data(pn.Sequential([pn.Dense(784, 10)]))
    record["config"]["update"] = to_data(pn.SGD(0.5))
    assert record_differences(record, config) == ["model", "update"]


def test_records_from_before_transformations_still_match_plain_sgd():
    legacy = {"sgd_step": {"lr": 0.1}}
    assert same_update(legacy, to_data(pn.SGD(0.1)))
    assert not same_update(legacy, to_data(pn.SGD(0.2)))
    assert not same_update({"sgd_step": {"lr": "x"}}, to_data(pn.SGD(0.1)))
    assert not same_update({"sgd_step": 3}, to_data(pn.SGD(0.1)))


def test_config_from_a_record_without_one_is_a_record_error():
    with pytest.raises(RecordError, match="not a purenn mnist run record"):
        config_from_record({"config": {"run": {"preset": "mlp", "colour": "red"}}})
    with pytest.raises(RecordError, match="not a purenn mnist run record"):
        config_from_record(json.loads('{"config": {}}'))


def test_early_stopping_is_recorded_and_keeps_the_best_epoch(tmp_path):
    """Random labels: the validation loss soon rises, so a patience of 1 stops the run; the
    record says so, and its digest is that of the best epoch, as the history logged it."""
    x, y = _tiny_data(256, seed=1)
    xv, yv = _tiny_data(64, seed=2)
    config = RunConfig("mlp", epochs=8, batch_size=32, patience=1, seed=0)
    trained = train_preset(config, x, y, validation=(xv, yv))
    history = trained.history
    assert history.stopped_early and len(history.epochs) == history.best_epoch + 1 < 8
    assert trained.digest == history.epochs[history.best_epoch - 1].digest
    record = run_record(config, trained, 256, {"test_accuracy": 0.1})
    write_record(tmp_path / "r.json", record)
    back = read_record(tmp_path / "r.json")
    assert back["early_stopping"] == {"monitor": "val_loss", "patience": 1, "stopped_early": True,
                                      "best_epoch": history.best_epoch}
    assert config_from_record(back) == config
    with pytest.raises(pn.ArgumentError, match="patience"):
        train_preset(config, x, y)  # nothing to watch


@pytest.mark.parametrize("threads", [1, 2])
def test_the_records_versions_say_the_thread_count_the_run_used(threads):
    """The record is made under the run's thread limit, whatever the caller's count is."""
    if blas_threads() == 0:
        pytest.skip("threadpoolctl sees no BLAS here")
    config = RunConfig("seed", epochs=1, limit=8, threads=threads)
    x, y = _tiny_data(8)
    trained = train_preset(config, x, y)
    with threadpool_limits(limits=3 - threads, user_api="blas"):  # the caller's: the other count
        assert blas_threads() == 3 - threads
        record = run_record(config, trained, 8, {"test_accuracy": 0.5})
        assert blas_threads() == 3 - threads  # and the caller's count is left as it was
    assert record["versions"]["blas_threads"] == threads
    assert record["config"]["run"]["threads"] == threads


def _tiny_dataset(tmp_path, train=96, test=40):
    from _mnist_files import write_tiny_mnist

    return pn.load_mnist(write_tiny_mnist(tmp_path, train=train, test=test))


def test_run_preset_trains_tests_and_gives_the_record(tmp_path):
    """run_preset is train_preset on the training split, validated on the test split, then the
    test accuracy of the trained params; its record is run_record of those."""
    data = _tiny_dataset(tmp_path)
    config = RunConfig("mlp", epochs=2, limit=64, batch_size=16, seed=2)
    result = run_preset(config, data)
    alone = train_preset(config, data.train.images, data.train.labels,
                         validation=(data.test.images, data.test.labels))
    assert result.trained.digest == alone.digest and result.train_samples == 64
    assert [e.digest for e in result.trained.history.epochs] == [e.digest for e in alone.history.epochs]
    outputs = pn.predict(alone.model, alone.params, data.test.images)
    np.testing.assert_array_equal(result.test_outputs, outputs)
    assert result.test_accuracy == pn.accuracy(outputs, data.test.labels)
    assert result.train_seconds > 0 and result.metrics == {
        "test_accuracy": result.test_accuracy, "train_seconds": result.train_seconds}
    record = result.record()
    assert record["digest"] == alone.digest and record["metrics"] == result.metrics
    assert record["config"] == describe(config, 64)
    assert config_from_record(record) == config
    assert result.checkpoint_metadata() == {"run": record["config"]["run"], "metrics": result.metrics}


def test_run_preset_reports_progress_and_needs_both_splits(tmp_path):
    data = _tiny_dataset(tmp_path)
    epochs, steps = [], []
    run_preset(RunConfig("seed", epochs=2, limit=8), data, callback=epochs.append,
               on_batch=lambda done, total: steps.append((done, total)))
    assert [e.epoch for e in epochs] == [1, 2] and all(e.val_accuracy is not None for e in epochs)
    assert steps[-1] == (8, 8) and len(steps) == 16
    test_only = pn.load_mnist(data.directory, splits=("test",))
    with pytest.raises(pn.ArgumentError, match="needs the dataset's train and test splits"):
        run_preset(RunConfig("seed", epochs=1, limit=8), test_only)


@pytest.mark.parametrize("threads", [1, 2])
def test_run_preset_trains_and_predicts_under_the_runs_thread_limit(tmp_path, monkeypatch, threads):
    """Training and the test-set prediction both run with the config's BLAS threads, whatever
    the caller's count (the test accuracy of a run alone and in an experiment agree)."""
    if blas_threads() == 0:
        pytest.skip("threadpoolctl sees no BLAS here")
    data = _tiny_dataset(tmp_path)
    seen = {}
    real_predict = runs.predict

    def predict(*args, **kwargs):
        seen["predict"] = blas_threads()
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(runs, "predict", predict)
    config = RunConfig("seed", epochs=1, limit=8, threads=threads)
    with threadpool_limits(limits=3 - threads, user_api="blas"):  # the caller's: the other count
        run_preset(config, data, on_batch=lambda done, total: seen.setdefault("training", blas_threads()))
        assert blas_threads() == 3 - threads  # left as it was
    assert seen == {"training": threads, "predict": threads}


def test_with_threads_in_use_names_the_blas_count_unless_given():
    if blas_threads() == 0:
        pytest.skip("threadpoolctl sees no BLAS here")
    with threadpool_limits(limits=1, user_api="blas"):
        assert RunConfig("seed").with_threads_in_use().threads == 1
        assert RunConfig("seed", threads=2).with_threads_in_use().threads == 2
