"""A preset run with a validation split (RunConfig.validation, data_seed, vary_split): what it
trains on, what each epoch watches, how often it reads the test set (once), what its record
says; and that runs without one are what they were (resolved keys, records, digests)."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
from _mnist_files import write_tiny_mnist
from _reads import SampleReads

import purenn as pn
from purenn.errors import RecordError
from purenn.recipes.records import read_run_record, write_run_record
from purenn.recipes.runs import (
    DATA_SEED,
    RunConfig,
    check_new_run,
    config_from_record,
    record_differences,
    run_preset,
    split_training_set,
)

OLD_RESOLVED = {"preset", "dataset", "seed", "limit", "epochs", "batch_size", "lr", "loss", "optimizer",
                "shuffle"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return pn.load_mnist(write_tiny_mnist(tmp_path_factory.mktemp("data"), train=160, test=40))


def test_without_the_new_settings_a_run_resolves_as_before():
    """Records compare ``resolved`` to decide whether they can be repeated: at their defaults the
    new settings add no key, and a record's ``run`` without them reads as those defaults."""
    config = RunConfig("mlp", epochs=2)
    assert set(config.resolved()) == OLD_RESOLVED
    assert set(RunConfig("mlp", patience=2).resolved()) == OLD_RESOLVED | {"patience"}
    old_run = {"preset": "mlp", "seed": 0, "epochs": 2, "batch_size": None, "lr": None, "limit": None,
               "dataset": "mnist", "threads": None, "patience": None}
    assert config_from_record({"config": {"run": old_run}}) == config
    assert (config.validation, config.data_seed, config.vary_split, config.init_from) == (None, DATA_SEED, False, None)
    assert config.evaluated_on == "test"


def test_a_validation_split_is_part_of_what_a_run_resolves_to():
    config = RunConfig("mlp", validation=0.1, data_seed=4, vary_split=True, seed=2)
    assert config.resolved() == {**RunConfig("mlp", seed=2).resolved(), "validation": 0.1, "data_seed": 4,
                                 "vary_split": True}
    assert config.evaluated_on == "validation" and config.split_seed == (4, 2, 1)
    assert RunConfig("mlp", validation=0.1, data_seed=4).split_seed == 4


@pytest.mark.parametrize("field, value, message", [
    ("validation", 0.0, r"`validation` must be a real number in \(0, 1\) or None, got 0.0"),
    ("validation", 1.0, r"`validation` must be a real number in \(0, 1\) or None, got 1.0"),
    ("validation", "0.1", r"`validation` must be a real number in \(0, 1\) or None, got '0.1'"),
    ("data_seed", -1, "`data_seed` must be a non-negative integer, got -1"),
    ("vary_split", 1, "`vary_split` must be True or False, got 1"),
])
def test_bad_split_settings_are_refused_by_name(field, value, message):
    with pytest.raises(pn.ArgumentError, match=message):
        RunConfig("mlp", **{"validation": 0.1, field: value})


@pytest.mark.parametrize("settings", [{"data_seed": 3}, {"vary_split": True}])
def test_split_settings_need_a_split(settings):
    with pytest.raises(pn.ArgumentError, match="`data_seed` .* and `vary_split` .* choose the validation split: "
                                               "give `validation` too"):
        RunConfig("mlp", **settings)


def test_the_data_seed_not_the_run_seed_chooses_the_split_unless_it_varies(data):
    x, y = data.train.images, data.train.labels

    def held_out(**settings):
        return split_training_set(RunConfig("mlp", validation=0.25, **settings), x, y)[1]

    def same(a, b):
        return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])

    assert same(held_out(seed=0), held_out(seed=7))  # a seed changes initialisation and order, not the split
    assert not same(held_out(seed=0), held_out(seed=0, data_seed=1))
    assert not same(held_out(seed=0, vary_split=True), held_out(seed=7, vary_split=True))
    assert not same(held_out(seed=0, vary_split=True), held_out(seed=0))  # seed 0's own split, not the fixed one
    assert same(held_out(seed=7, vary_split=True), held_out(seed=7, vary_split=True))


def test_the_split_is_taken_from_the_first_limit_samples(data):
    x, y = data.train.images, data.train.labels
    (x_tr, _), (x_val, y_val) = split_training_set(RunConfig("mlp", limit=100, validation=0.2), x, y)
    train, val = pn.split_indices(y[:100], 0.2, seed=DATA_SEED)
    np.testing.assert_array_equal(x_tr, x[train])
    np.testing.assert_array_equal(x_val, x[val])
    assert len(x_tr) + len(x_val) == 100 and np.array_equal(y_val, y[val])
    (x_all, _), none = split_training_set(RunConfig("mlp", limit=100), x, y)
    assert none is None and np.shares_memory(x_all, x) and len(x_all) == 100  # no split: as before


def test_with_validation_the_test_set_is_read_once_and_each_epoch_watches_the_validation_set(
        data, monkeypatch):
    config = RunConfig("mlp", epochs=3, batch_size=16, validation=0.25, seed=1)
    _, (x_val, y_val) = split_training_set(config, data.train.images, data.train.labels)
    test_reads = SampleReads(data.test.images).install(monkeypatch)
    val_reads = SampleReads(x_val)
    real = pn.Sequential.forward

    def forward(layer, params, x, *args, **kwargs):
        val_reads.see(x)
        return real(layer, params, x, *args, **kwargs)

    monkeypatch.setattr(pn.Sequential, "forward", forward)  # over the test set's counter
    result = run_preset(config, data)
    assert test_reads.counts.tolist() == [1] * len(data.test.images)  # once: the final outputs
    assert val_reads.counts.tolist() == [3] * len(x_val)  # once per epoch
    trained = result.trained
    last = trained.history.epochs[-1]
    assert last.val_accuracy == pn.accuracy(pn.predict(trained.model, trained.params, x_val), y_val)
    assert result.test_accuracy == pn.accuracy(result.test_outputs, data.test.labels)
    assert (result.train_samples, result.validation_samples) == (120, 40)


def test_without_validation_the_test_set_is_read_every_epoch_and_at_the_end(data, monkeypatch):
    """As before validation splits: the counter sees the per-epoch reads too (so a count of one
    above is not the counter missing them)."""
    reads = SampleReads(data.test.images).install(monkeypatch)
    result = run_preset(RunConfig("mlp", epochs=3, batch_size=16, seed=1), data)
    assert reads.counts.tolist() == [4] * len(data.test.images)
    assert result.validation_samples is None and result.train_samples == 160


def test_a_run_with_validation_records_where_each_metric_came_from(data, tmp_path):
    config = RunConfig("mlp", epochs=2, batch_size=16, validation=0.25, patience=1, data_seed=3)
    record = run_preset(config, data).record()
    assert record["config"]["evaluated_on"] == "validation"
    assert record["config"]["validation_samples"] == 40 and record["config"]["train_samples"] == 120
    assert record["config"]["resolved"]["validation"] == record["config"]["run"]["validation"] == 0.25
    assert record["early_stopping"]["monitor"] == "val_loss"
    write_run_record(tmp_path / "r.json", record)
    back = read_run_record(tmp_path / "r.json")
    assert config_from_record(back) == config and record_differences(back, config) == []
    plain = run_preset(RunConfig("mlp", epochs=1, batch_size=16), data).record()
    assert plain["config"]["evaluated_on"] == "test" and "validation_samples" not in plain["config"]


def test_a_new_run_may_not_choose_by_the_test_set_but_an_old_one_still_runs(data):
    old = RunConfig("mlp", epochs=2, batch_size=16, patience=1)
    with pytest.raises(pn.ArgumentError, match="early stopping .* without a validation set would choose the "
                                               "epoch to keep by the test set"):
        check_new_run(old)
    check_new_run(attrs.evolve(old, validation=0.2))
    check_new_run(RunConfig("mlp"))
    result = run_preset(old, data)  # a record made before the rule repeats: watching the test set
    assert result.record()["config"]["evaluated_on"] == "test"


def _record(data, **settings):
    return json.loads(json.dumps(run_preset(RunConfig("seed", epochs=1, limit=40, **settings), data).record()))


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["config"].update(evaluated_on="test"),
     "`config.evaluated_on` must be 'validation' when `config.run.validation` is 0.25, got 'test'"),
    (lambda r: r["config"].pop("validation_samples"),
     "must say `config.evaluated_on` and `config.validation_samples`"),
    (lambda r: r["config"].update(validation_samples=31),
     (r"`config.train_samples` \(30\) plus `config.validation_samples` \(31\) is more than "
      r"`config.resolved.limit` \(40\)")),
    (lambda r: r["config"].update(evaluated_on="train"), r"`config.evaluated_on` must be one of \('validation', 'test'\)"),
])
def test_an_edited_split_in_a_record_is_refused(data, tmp_path, edit, message):
    record = _record(data, validation=0.25)
    edit(record)
    (tmp_path / "r.json").write_text(json.dumps(record))
    with pytest.raises(RecordError, match=message):
        read_run_record(tmp_path / "r.json")


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["config"].update(evaluated_on="validation"),
     "`config.evaluated_on` must be 'test' when `config.run.validation` is None, got 'validation'"),
    (lambda r: r["config"].update(validation_samples=3), r"`config.validation_samples` \(3\) needs `config.run.validation`"),
    (lambda r: r["config"]["run"].update(data_seed=3),
     "`config.run`: `data_seed` .* choose the validation split"),
    (lambda r: r["config"]["run"].update(init_from="m.npz"), "`config.run`: `init_from` and `init_digest` say together"),
])
def test_split_fields_in_a_record_without_a_split_are_refused(data, tmp_path, edit, message):
    record = _record(data)
    edit(record)
    (tmp_path / "r.json").write_text(json.dumps(record))
    with pytest.raises(RecordError, match=message):
        read_run_record(tmp_path / "r.json")


def test_a_record_from_before_validation_splits_reads_and_repeats(data, tmp_path):
    """No new field anywhere (run, resolved, evaluated_on): still a valid record of the same run."""
    record = _record(data)
    for key in ("validation", "data_seed", "vary_split", "init_from", "init_digest"):
        del record["config"]["run"][key]
    del record["config"]["evaluated_on"]
    (tmp_path / "r.json").write_text(json.dumps(record))
    back = read_run_record(tmp_path / "r.json")
    config = config_from_record(back)
    assert config == RunConfig("seed", epochs=1, limit=40) and record_differences(back, config) == []
    assert run_preset(config, data).trained.digest == back["digest"]
