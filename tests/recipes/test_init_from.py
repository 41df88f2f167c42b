"""A preset run starting from a checkpoint's params and state (RunConfig.init_from/init_digest,
start_from): it really starts there, its record says from which params, and the checkpoint given
must be that one and hold the preset's model."""

from __future__ import annotations

import numpy as np
import pytest
from _mnist_files import write_tiny_mnist

import purenn as pn
from purenn.io.checkpoints import Checkpoint
from purenn.recipes.presets import PRESETS
from purenn.recipes.runs import (
    MAX_INIT_NAME,
    RunConfig,
    config_from_record,
    model_difference,
    run_preset,
    start_from,
    train_preset,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return pn.load_mnist(write_tiny_mnist(tmp_path_factory.mktemp("data"), train=48, test=20))


def _checkpoint(result) -> Checkpoint:
    t = result.trained
    return Checkpoint(t.model, t.params, {}, t.state)


def test_a_run_from_a_checkpoint_goes_on_where_the_checkpoint_left_off(data):
    """The seed preset (plain SGD, in order, nothing random after initialisation): one epoch from
    the checkpoint of one epoch is the second epoch of a two-epoch run."""
    two = run_preset(RunConfig("seed", epochs=2, limit=32), data)
    one = run_preset(RunConfig("seed", epochs=1, limit=32), data)
    config = start_from(RunConfig("seed", epochs=1, limit=32), _checkpoint(one), "one.npz")
    assert (config.init_from, config.init_digest) == ("one.npz", one.trained.digest)
    on = run_preset(config, data, init=_checkpoint(one))
    assert on.trained.digest == two.trained.digest != one.trained.digest
    record = on.record()
    assert record["config"]["run"]["init_from"] == "one.npz"
    assert record["config"]["run"]["init_digest"] == record["config"]["resolved"]["init_digest"] == one.trained.digest
    assert config_from_record(record) == config


def test_a_batchnorm_checkpoint_gives_its_state_too(data):
    config = RunConfig("resnet", epochs=1, limit=16, batch_size=8)
    first = run_preset(config, data)
    start = _checkpoint(first)
    on = start_from(config, start, "r.npz")
    assert on.init_digest == first.trained.digest  # covers the running statistics
    trained = train_preset(on, data.train.images, data.train.labels, init=start)
    fresh = train_preset(config, data.train.images, data.train.labels)
    assert trained.digest not in (fresh.digest, first.trained.digest)


def test_the_checkpoint_must_be_the_one_the_config_names(data):
    one = _checkpoint(run_preset(RunConfig("seed", epochs=1, limit=16), data))
    other = _checkpoint(run_preset(RunConfig("seed", epochs=1, limit=16, seed=1), data))
    config = start_from(RunConfig("seed", epochs=1, limit=16), one, "one.npz")
    x, y = data.train.images, data.train.labels
    with pytest.raises(pn.ArgumentError, match=f"the checkpoint given as `init` has params digest "
                                               f"{pn.params_digest(other.params)}, but the run starts from "
                                               f"'one.npz', whose digest is {config.init_digest}"):
        train_preset(config, x, y, init=other)
    with pytest.raises(pn.ArgumentError, match="the run starts from the checkpoint 'one.npz' .*: pass it as `init`"):
        train_preset(config, x, y)
    with pytest.raises(pn.ArgumentError, match="`init` is given, but the config starts from the preset's "
                                               "initialisation: make it with start_from"):
        train_preset(RunConfig("seed", epochs=1, limit=16), x, y, init=one)


def test_a_checkpoint_of_another_model_is_refused_saying_where_it_differs():
    mlp, seed = PRESETS["mlp"].model, PRESETS["seed"].model
    wider = pn.Sequential([pn.Dense(784, 600), *mlp.layers[1:]])
    assert model_difference(mlp, mlp) is None
    assert model_difference(wider, mlp).startswith("its layer 0 is Dense(in_features=784, out_features=600")
    assert model_difference(pn.Sequential(mlp.layers[:3]), mlp) == "it has 3 layers, the preset's model 5"
    relu = pn.Sequential([seed.layers[0], pn.ReLU(), *seed.layers[2:]])
    start = Checkpoint(relu, relu.init(np.random.default_rng(0)), {}, relu.init_state())
    with pytest.raises(pn.ArgumentError, match=r"'relu.npz' holds another model than the 'seed' preset's \(its "
                                               r"layer 1 is ReLU\(\), the preset's Tanh\(\)\): a run starts "
                                               r"from a checkpoint of its own preset's model"):
        start_from(RunConfig("seed"), start, "relu.npz")
    with pytest.raises(pn.ArgumentError, match=r"'mlp.npz' holds another model than the 'seed' preset's \(it "
                                               r"has 5 layers, the preset's model 6\)"):
        start_from(RunConfig("seed"), Checkpoint(mlp, mlp.init(np.random.default_rng(0)), {}, mlp.init_state()),
                   "mlp.npz")


@pytest.mark.parametrize("name, ok", [("m" * MAX_INIT_NAME, True), ("m" * (MAX_INIT_NAME + 1), False),
                                      ("runs/m.npz", False), ("", False), ("..", False), ("m\n.npz", False),
                                      ("a b [c].npz", True)])
def test_the_recorded_name_is_a_plain_file_name_of_at_most_max_init_name_characters(name, ok):
    settings = {"init_from": name, "init_digest": "0" * 64}
    if ok:
        assert RunConfig("mlp", **settings).init_from == name
    else:
        with pytest.raises(pn.ArgumentError, match=f"`init_from` must be a file name \\(no folder\\) of 1 to "
                                                   f"{MAX_INIT_NAME} printable characters"):
            RunConfig("mlp", **settings)


@pytest.mark.parametrize("settings", [{"init_from": "m.npz"}, {"init_digest": "0" * 64}])
def test_the_name_and_the_digest_come_together(settings):
    with pytest.raises(pn.ArgumentError, match="`init_from` and `init_digest` say together which checkpoint"):
        RunConfig("mlp", **settings)


def test_a_bad_digest_is_refused_by_name():
    with pytest.raises(pn.ArgumentError, match=r"`init_digest` must be 64 lowercase hex characters"):
        RunConfig("mlp", init_from="m.npz", init_digest="ABC")
