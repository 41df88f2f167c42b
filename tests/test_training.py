"""fit, predict and evaluate: against the tutorial's own code, determinism, callbacks, errors."""

from __future__ import annotations

import itertools
import math

import attrs
import numpy as np
import pytest

import purenn as pn
from benchmarks.tutorial_code import tutorial_network
from purenn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape, Sequential, Tanh
from purenn.layers.dropout import Dropout
from purenn.losses import mse, one_hot, softmax_cross_entropy
from purenn.training import EpochLog, History, evaluate, fit, predict
from purenn.tree import freeze, tree_leaves

RNG = np.random.default_rng
XOR_X = np.array([[[0, 0]], [[0, 1]], [[1, 0]], [[1, 1]]], dtype=np.float64)  # the tutorial's shapes
XOR_Y = np.array([[[0]], [[1]], [[1]], [[0]]], dtype=np.float64)


def tanh_stack(*widths: int) -> Sequential:
    """The tutorial's networks: Dense/tanh pairs, uniform [-0.5, 0.5) init, in float64."""
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [Dense(a, b, initializer="uniform", dtype="float64"), Tanh()]
    return Sequential(layers)


def compare_with_tutorial(model, x, y_purenn, y_tutorial, epochs, lr, seed):
    params = model.init(RNG(seed))
    dense = list(range(0, len(model.layers), 2))
    net = tutorial_network(params, dense)
    errors = net.fit(x, y_tutorial, epochs=epochs, learning_rate=lr, verbose=False)
    new, history = fit(model, params, x, y_purenn, loss=mse, epochs=epochs, lr=lr,
                       batch_size=1, shuffle=False)
    assert len(history.loss) == len(errors) == epochs
    np.testing.assert_allclose(history.loss, errors, rtol=1e-12, atol=0)
    for i, fc in zip(dense, net.layers[::2]):
        # ~1e-12 relative to the whole matrix: the only difference is rounding (the tutorial's
        # 2 (y - y*) / n against purenn's (y - y*) (2 / n)); elementwise rtol would be meaningless
        # for weights that pass near 0 during training
        for ours, theirs in ((new[i]["w"], fc.weights), (new[i]["b"], fc.bias.ravel())):
            assert ours.shape == theirs.shape and ours.dtype == np.float64
            assert np.linalg.norm(ours - theirs) <= 2e-12 * np.linalg.norm(theirs)
            assert np.abs(ours - theirs).max() <= 2e-12 * np.abs(theirs).max()
    # the run did something: the weights moved and the error changed
    assert not np.allclose(new[0]["w"], params[0]["w"], rtol=1e-6, atol=0)
    return history


def test_fit_per_sample_reproduces_the_tutorial_on_xor():
    history = compare_with_tutorial(tanh_stack(2, 3, 1), XOR_X, XOR_Y, XOR_Y, epochs=300, lr=0.1, seed=1)
    assert history.loss[-1] < history.loss[0]


def test_xor_network_matches_the_tutorial_from_integer_data_too():
    """The library's own xor_network (float32) on the tutorial's integer arrays tracks the
    tutorial's float64 run closely (float32 rounding only)."""
    from purenn.recipes.xor import xor_network

    model = xor_network()
    params = model.init(RNG(1))
    net = tutorial_network(params, [0, 2])
    errors = net.fit(XOR_X, XOR_Y, epochs=100, learning_rate=0.1, verbose=False)
    _, history = fit(model, params, XOR_X.astype(int), XOR_Y.astype(int), epochs=100, lr=0.1,
                     batch_size=1, shuffle=False)
    np.testing.assert_allclose(history.loss, errors, rtol=1e-4)


def test_fit_per_sample_reproduces_the_tutorial_on_a_small_mnist_shaped_problem():
    n = 24
    x = RNG(0).random((n, 1, 784))  # the tutorial reshapes MNIST to (n, 1, 784) floats in [0, 1]
    labels = RNG(1).integers(0, 10, n)
    y = one_hot(labels, 10, dtype=np.float64)  # the tutorial's to_categorical: (n, 10)
    compare_with_tutorial(tanh_stack(784, 100, 50, 10), x, y.reshape(n, 1, 10), y, epochs=3, lr=0.1, seed=2)


# ---------------------------------------------------------------- determinism


def _classification_data(n=60, features=6, classes=3):
    x = RNG(10).standard_normal((n, features)).astype(np.float32)
    labels = (x[:, :classes].argmax(axis=1)).astype(np.int64)
    return x, labels


def _stochastic_model():
    layers = [Dense(6, 16, initializer="he"), ReLU()]
    if Dropout is not None:
        layers.append(Dropout(0.3))
    return Sequential([*layers, Dense(16, 3)])


def _full_run(seed):
    model = _stochastic_model()
    params = model.init(RNG(seed))
    x, labels = _classification_data()
    return fit(model, params, x, labels, loss=softmax_cross_entropy, epochs=4, batch_size=7,
               optimizer=pn.Adam(1e-2), shuffle=True, seed=seed, validation=(x[:20], labels[:20]))


def test_same_seed_gives_bit_identical_params_and_history():
    (p1, h1), (p2, h2) = _full_run(3), _full_run(3)
    leaves1, leaves2 = tree_leaves(p1), tree_leaves(p2)
    assert len(leaves1) == len(leaves2) == 4
    for a, b in zip(leaves1, leaves2, strict=True):
        assert np.array_equal(a, b)
    assert h1 == h2
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss


def test_different_seed_gives_a_different_run():
    (p1, h1), (p2, h2) = _full_run(3), _full_run(4)
    assert not np.array_equal(p1[0]["w"], p2[0]["w"])
    assert h1.loss != h2.loss


def test_the_seed_drives_shuffling_and_dropout_not_just_init():
    model = _stochastic_model()
    params = model.init(RNG(0))
    x, labels = _classification_data()
    runs = [fit(model, params, x, labels, loss=softmax_cross_entropy, epochs=1, batch_size=7,
                lr=0.05, seed=s)[0] for s in (0, 0, 1)]
    assert np.array_equal(runs[0][0]["w"], runs[1][0]["w"])
    assert not np.array_equal(runs[0][0]["w"], runs[2][0]["w"])


def _sample_order(seed, shuffle=True, epochs=3, n=10, batch_size=3):
    """The order in which ``fit`` visits the samples, epoch by epoch: each target is its sample's
    index, and a recording loss notes the targets of every batch it is given."""
    x = np.arange(n, dtype=np.float64).reshape(n, 1)
    seen = []

    def recording_mse(out, target):
        seen.append(target[:, 0].astype(int).tolist())
        return mse(out, target)

    model = Sequential([Dense(1, 1, dtype="float64")])
    fit(model, model.init(RNG(0)), x, x.copy(), loss=recording_mse, lr=1e-3, epochs=epochs,
        batch_size=batch_size, shuffle=shuffle, seed=seed)
    batches_per_epoch = -(-n // batch_size)
    assert len(seen) == epochs * batches_per_epoch
    assert [len(b) for b in seen[:batches_per_epoch]] == [batch_size] * (n // batch_size) + (
        [n % batch_size] if n % batch_size else [])
    return [[i for batch in seen[e * batches_per_epoch : (e + 1) * batches_per_epoch] for i in batch]
            for e in range(epochs)]


def test_the_seed_drives_the_order_of_samples():
    """A deterministic model and loss, so nothing but the order of samples can differ: every
    epoch visits each sample once, in a fresh order drawn from the seed; the same seed (an int or
    a Generator in the same state) gives the same orders, another seed other orders, and
    ``shuffle=False`` the data's own order."""
    n = 10
    in_order = list(range(n))
    assert _sample_order(0, shuffle=False) == [in_order] * 3
    assert _sample_order(5, shuffle=False) == [in_order] * 3  # the seed does not matter then
    orders = {seed: _sample_order(seed) for seed in (0, 1, 2)}
    for seed, epochs in orders.items():
        for order in epochs:
            assert sorted(order) == in_order, f"seed {seed}: not a permutation: {order}"
            assert order != in_order, f"seed {seed}: an epoch in the data's own order"
        assert len({tuple(order) for order in epochs}) == 3, f"seed {seed}: epochs repeat an order"
        assert _sample_order(seed) == epochs  # reproducible
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    assert len({tuple(epochs[0]) for epochs in orders.values()}) == 3  # already the first epochs differ
    assert _sample_order(RNG(7)) == _sample_order(RNG(7)) != _sample_order(RNG(8))
    # samples are shuffled, not just whole batches: batches mix samples from all over the data
    for seed, epochs in orders.items():
        batches = [epochs[0][i : i + 3] for i in range(0, n, 3)]
        assert any(b != list(range(b[0], b[0] + len(b))) for b in batches), (seed, batches)


def test_dropout_is_active_in_fit_and_off_in_predict():
    model = _stochastic_model()
    params = model.init(RNG(0))
    x, labels = _classification_data()
    no_drop = Sequential([layer for layer in model.layers if not isinstance(layer, Dropout)])
    no_drop_params = tuple(p for layer, p in zip(model.layers, params) if not isinstance(layer, Dropout))
    kw = {"loss": softmax_cross_entropy, "epochs": 1, "batch_size": 7, "lr": 0.05, "seed": 0}
    with_dropout = fit(model, params, x, labels, **kw)[0]
    without = fit(no_drop, no_drop_params, x, labels, **kw)[0]
    assert not np.array_equal(with_dropout[0]["w"], without[0]["w"])
    np.testing.assert_array_equal(predict(model, params, x), predict(no_drop, no_drop_params, x))


def test_fit_does_not_touch_the_starting_params():
    model = tanh_stack(2, 3, 1)
    params = model.init(RNG(0))
    copies = [a.copy() for a in tree_leaves(params)]
    new, _ = fit(model, params, XOR_X, XOR_Y, lr=0.1, epochs=5)
    for a, b in zip(tree_leaves(params), copies, strict=True):
        assert np.array_equal(a, b)
    assert all(not a.flags.writeable for a in tree_leaves(new))


# ---------------------------------------------------------------- validation and callbacks


def test_validation_adds_val_loss_and_val_accuracy():
    model = Sequential([Dense(6, 3)])
    x, labels = _classification_data()
    params, history = fit(model, model.init(RNG(0)), x[:40], labels[:40], loss=softmax_cross_entropy,
                          lr=0.5, epochs=5, batch_size=8, validation=(x[40:], labels[40:]))
    assert len(history.val_loss) == len(history.val_accuracy) == 5
    assert all(v is not None and math.isfinite(v) for v in history.val_loss)
    final = evaluate(model, params, x[40:], labels[40:], loss=softmax_cross_entropy)
    assert history.val_loss[-1] == final["loss"]  # the same computation on the same params
    assert history.val_accuracy[-1] == final["accuracy"]
    assert history.val_accuracy[-1] > 0.5  # a linear model learns argmax of the first 3 features

    _, plain = fit(model, model.init(RNG(0)), x, labels, loss=softmax_cross_entropy, lr=0.5, epochs=2)
    assert plain.val_loss == [None, None] and plain.val_accuracy == [None, None]


def test_validation_runs_in_evaluation_mode_without_dropout():
    """fit's validation pass is evaluate's: for a model with dropout (and no state), every
    epoch's val_loss and val_accuracy are those of the epoch's params without dropout."""
    model = Sequential([Dense(6, 32, initializer="he"), ReLU(), Dropout(0.5), Dense(32, 3)])
    x, labels = _classification_data()
    params = model.init(RNG(0))
    for epochs in (1, 3):
        params_e, history = fit(model, params, x[:40], labels[:40], loss=softmax_cross_entropy,
                                lr=0.2, epochs=epochs, batch_size=8, seed=1,
                                validation=(x[40:], labels[40:]))
        final = evaluate(model, params_e, x[40:], labels[40:], loss=softmax_cross_entropy)
        assert history.val_loss[-1] == final["loss"] and history.val_accuracy[-1] == final["accuracy"]


def _logit_model_and_data():
    """A single output that is its input (a logit): 12 positives have logits in (0, 0.5]."""
    model = Sequential([Dense(1, 1, dtype="float64")])
    params = (freeze({"w": np.ones((1, 1)), "b": np.zeros(1)}),)
    x = np.concatenate([np.linspace(0.01, 0.5, 12), [0.8, 2.0], -np.linspace(0.1, 3.0, 10)])[:, None]
    y = (x > 0).astype(np.float64)
    return model, params, x, y


def test_binary_cross_entropy_accuracy_decides_logits_at_zero():
    """The logits of a model trained with binary_cross_entropy are class 1 above 0, not above
    0.5: all 24 samples are right (at 0.5, the 12 in (0, 0.5] were counted wrong)."""
    model, params, x, y = _logit_model_and_data()
    bce = pn.binary_cross_entropy
    assert evaluate(model, params, x, y, loss=bce)["accuracy"] == 1.0
    assert evaluate(model, params, x, y, loss="binary_cross_entropy")["accuracy"] == 1.0
    assert evaluate(model, params, x, y, loss=bce, threshold=0.5)["accuracy"] == 12 / 24
    assert evaluate(model, params, x, y)["accuracy"] == 12 / 24  # no loss: probabilities, 0.5
    assert evaluate(model, params, x, y, threshold=0)["accuracy"] == 1.0
    # fit's validation accuracy: steps too small to move the logits off their signs
    new, history = fit(model, params, x, y, loss=bce, lr=1e-30, epochs=2, validation=(x, y))
    np.testing.assert_allclose(predict(model, new, x), x, rtol=1e-12, atol=1e-25)
    assert history.val_accuracy == [1.0, 1.0]
    _, with_mse = fit(model, params, x, y, loss=pn.mse, lr=1e-30, epochs=1, validation=(x, y))
    assert with_mse.val_accuracy == [12 / 24]  # mse's outputs are probabilities: 0.5


def test_evaluate_refuses_a_threshold_that_is_not_a_number():
    model, params, x, y = _logit_model_and_data()
    with pytest.raises(TypeError, match=r"`threshold` must be a real number, got '0'"):
        evaluate(model, params, x, y, threshold="0")
    with pytest.raises(ValueError, match=r"`threshold` must be a real number, got nan"):
        evaluate(model, params, x, y * 0.3, threshold=math.nan)  # even with no accuracy to take


def test_callback_and_on_batch_are_called_with_the_right_counts():
    model = Sequential([Dense(6, 3)])
    x, labels = _classification_data(n=23)
    logs, batches = [], []
    _, history = fit(model, model.init(RNG(0)), x, labels, loss=softmax_cross_entropy, lr=0.1,
                     epochs=3, batch_size=5, callback=logs.append,
                     on_batch=lambda done, total: batches.append((done, total)))
    assert [log.epoch for log in logs] == [1, 2, 3]
    assert all(isinstance(log, EpochLog) and log.epochs == 3 for log in logs)
    assert tuple(logs) == history.epochs
    assert batches == [(b, 5) for b in range(1, 6)] * 3  # ceil(23 / 5) = 5 batches per epoch


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    model = Sequential([Dense(2, 1, dtype="float64")])
    params = model.init(RNG(0))
    x, y = RNG(1).standard_normal((5, 2)), RNG(2).standard_normal((5, 1))
    seen = []

    def recording_mse(out, target):
        value, grad = mse(out, target)
        seen.append((value, len(out)))
        return value, grad

    _, history = fit(model, params, x, y, loss=recording_mse, lr=0.01, batch_size=2, shuffle=False)
    assert [n for _, n in seen] == [2, 2, 1]
    assert history.loss[0] == pytest.approx(sum(v * n for v, n in seen) / 5, rel=1e-15)


def test_history_is_a_frozen_record():
    h = History((EpochLog(1, 1, 0.5), EpochLog(2, 2, 0.25, val_loss=0.3, val_accuracy=0.75)))
    assert h.loss == [0.5, 0.25] and h.val_loss == [None, 0.3] and h.val_accuracy == [None, 0.75]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        h.epochs = ()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        h.epochs[0].loss = 9.0
    assert isinstance(h.epochs, tuple)
    h.loss.append(1.0)  # the lists are fresh copies: changing one changes nothing in the record
    h.val_loss[0] = 7.0
    assert h.loss == [0.5, 0.25] and h.val_loss == [None, 0.3]


@pytest.mark.parametrize("optimizer", [None, pn.SGD(0.1, momentum=0.9), pn.Adam(1e-2), pn.AdamW(1e-2)],
                         ids=["lr", "sgd-momentum", "adam", "adamw"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_returns_frozen_params_and_leaves_its_inputs_alone(optimizer, dtype):
    model = Sequential([Dense(6, 8, dtype=dtype), Tanh(), Dense(8, 3, dtype=dtype)])
    params = model.init(RNG(0))
    x, labels = _classification_data(n=20)
    x = x.astype(dtype)
    copies = [a.copy() for a in tree_leaves((params, x, labels))]
    kw = {"lr": 0.1} if optimizer is None else {"optimizer": optimizer}
    new, history = fit(model, params, x, labels, loss=softmax_cross_entropy, epochs=2, batch_size=6, **kw)
    for a, b in zip(tree_leaves((params, x, labels)), copies, strict=True):
        assert np.array_equal(a, b)  # params, inputs and labels unchanged
    assert all(not a.flags.writeable for a in tree_leaves(params))
    leaves = tree_leaves(new)
    assert len(leaves) == 4 and all(a.dtype == dtype for a in leaves)
    for a, old in zip(leaves, tree_leaves(params), strict=True):
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0
        assert not np.shares_memory(a, old)
        assert not np.array_equal(a, old)  # it trained
    assert history.loss[-1] < history.loss[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        history.epochs = ()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, x, y, match", [
    ({"lr": 0.1}, np.zeros((5, 2)), np.zeros((4, 1)),
     r"fit: inputs and targets need one row per sample; got 5 inputs and 4 targets"),
    ({"lr": 0.1}, np.zeros((0, 2)), np.zeros((0, 1)), r"fit: the training set is empty"),
    ({"lr": 0.1, "optimizer": pn.SGD(0.1)}, np.zeros((4, 2)), np.zeros((4, 1)),
     r"fit needs exactly one of `lr` \(e.g. lr=0.1\) or `optimizer` \(e.g. Adam\(1e-3\)\)"),
    ({}, np.zeros((4, 2)), np.zeros((4, 1)), r"fit needs exactly one of `lr`"),
    ({"lr": 0.1, "batch_size": 0}, np.zeros((4, 2)), np.zeros((4, 1)),
     r"`batch_size` must be a positive integer, got 0"),
    ({"lr": 0.1, "batch_size": 2.5}, np.zeros((4, 2)), np.zeros((4, 1)),
     r"`batch_size` must be a positive integer, got 2.5"),
    ({"lr": -1.0}, np.zeros((4, 2)), np.zeros((4, 1)), r"`lr` must be a positive number or a purenn.optim.schedules.Schedule .*got -1.0"),
    ({"lr": 0.1, "epochs": -2}, np.zeros((4, 2)), np.zeros((4, 1)), r"`epochs` must be a non-negative integer, got -2"),
    ({"lr": 0.1, "validation": (np.zeros((3, 2)), np.zeros((2, 1)))}, np.zeros((4, 2)), np.zeros((4, 1)),
     r"fit validation: inputs and targets need one row per sample; got 3 inputs and 2 targets"),
])
def test_fit_argument_errors(kwargs, x, y, match):
    model = Sequential([Dense(2, 1)])
    with pytest.raises(ValueError, match=match):
        fit(model, model.init(RNG(0)), x, y, **kwargs)


def test_zero_epochs_returns_the_params_unchanged():
    model = Sequential([Dense(2, 1)])
    params = model.init(RNG(0))
    new, history = fit(model, params, np.zeros((4, 2)), np.zeros((4, 1)), lr=0.1, epochs=0)
    assert new is params and history.epochs == ()


# ---------------------------------------------------------------- predict and evaluate


@pytest.mark.parametrize("batch_size", [1, 7, 50, 1024])
def test_predict_in_batches_equals_one_big_forward(batch_size):
    model = Sequential([Dense(5, 8, dtype="float64"), Tanh(), Dense(8, 3, dtype="float64")])
    params = model.init(RNG(0))
    x = RNG(1).standard_normal((50, 5))
    out = predict(model, params, x, batch_size=batch_size)
    np.testing.assert_allclose(out, model.forward(params, x)[0], rtol=1e-13, atol=1e-15)
    assert out.shape == (50, 3)


class _RowCounter:
    """A parameter-free layer that records the rows of every forward pass."""

    def __init__(self):
        self.rows = []

    def init(self, rng):
        return {}

    def forward(self, params, x):
        self.rows.append(len(x))
        return x, x

    def backward(self, params, cache, dy):
        return dy, {}


def test_predict_sizes_its_passes_by_bytes(monkeypatch):
    from purenn.training import evaluation  # where predict reads its byte budget

    counter = _RowCounter()
    x = RNG(1).standard_normal((100, 5))  # 40 bytes per row: output and cache are one array
    monkeypatch.setattr(evaluation, "PREDICT_BYTES", 40 * 30)
    out = predict(counter, {}, x)
    assert counter.rows == [16, 30, 30, 24]  # a first pass of 16 rows, then 30 rows of 40 bytes
    np.testing.assert_array_equal(out, x)
    counter.rows.clear()
    predict(counter, {}, x, batch_size=40)
    assert counter.rows == [40, 40, 20]
    counter.rows.clear()
    monkeypatch.setattr(evaluation, "PREDICT_BYTES", 1 << 40)  # bytes no pass reaches: 1024 rows
    predict(counter, {}, np.zeros((3000, 5)))
    assert counter.rows == [16, 1024, 1024, 936]


def test_predict_returns_a_new_array_even_from_one_pass():
    x = RNG(1).standard_normal((4, 2, 3))
    out = predict(Sequential([Flatten()]), ({},), x)  # Flatten's output is a view of its input
    assert out.shape == (4, 6) and not np.shares_memory(out, x)


def test_predicting_a_cnn_holds_far_less_than_1024_images_would():
    import tracemalloc

    model = Sequential([Reshape((28, 28, 1)), Conv2D(1, 32, 5), MaxPool2D(2), ReLU(),
                        Conv2D(32, 64, 5), MaxPool2D(2), ReLU(), Flatten(), Dense(1024, 10)])
    params = model.init(RNG(0))
    x = RNG(1).random((1024, 784), dtype=np.float32)
    tracemalloc.start()
    try:
        predict(model, params, x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one pass over all 1024 images holds about 430 MB of patch matrices and activations
    assert peak < 3 * (32 << 20)


def test_predict_errors():
    model = Sequential([Dense(5, 3)])
    with pytest.raises(ValueError, match="predict: x has no samples"):
        predict(model, model.init(RNG(0)), np.zeros((0, 5)))
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive integer, got -1"):
        predict(model, model.init(RNG(0)), np.zeros((2, 5)), batch_size=-1)


def test_evaluate_accuracy_and_loss():
    model = Sequential([Dense(3, 3, dtype="float64")])
    identity = (freeze({"w": np.eye(3), "b": np.zeros(3)}),)  # outputs = inputs
    x = RNG(0).standard_normal((40, 3))
    labels = RNG(1).integers(0, 3, 40)
    expected = np.mean(x.argmax(axis=1) == labels)
    assert 0 < expected < 1
    result = evaluate(model, identity, x, labels, loss=softmax_cross_entropy, batch_size=6)
    assert result["accuracy"] == expected
    assert result["loss"] == pytest.approx(softmax_cross_entropy(x, labels)[0], rel=1e-12)
    # one-hot targets give the same accuracy; no loss asked, no loss reported
    assert evaluate(model, identity, x, one_hot(labels, 3)) == {"accuracy": expected}


def test_evaluate_single_output_is_thresholded_at_one_half():
    model = Sequential([Dense(1, 1, dtype="float64")])
    identity = (freeze({"w": np.ones((1, 1)), "b": np.zeros(1)}),)
    x = np.array([[0.2], [0.7], [0.9], [0.4]])
    y = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert evaluate(model, identity, x, y)["accuracy"] == 0.5


@pytest.mark.parametrize("kwargs, error, message", [
    ({"optimizer": "adam"}, TypeError, r"`optimizer` must have init\(params\) and update"),
    ({"lr": -1}, ValueError, "`lr` must be a positive number or a purenn.optim.schedules.Schedule .*got -1"),
    ({"lr": True}, TypeError, "`lr` must be a positive number or a .*got True of type bool"),
    ({"lr": 0.1, "seed": "a"}, TypeError, "`seed` must be an int >= 0, a numpy Generator or None, got 'a'"),
    ({"lr": 0.1, "seed": -1}, ValueError, "`seed` must be an int >= 0, a numpy Generator or None, got -1"),
    ({"lr": 0.1, "epochs": 1.0}, TypeError, "`epochs` must be a non-negative integer, got 1.0"),
    ({"lr": 0.1, "epochs": False}, TypeError, "`epochs` must be a non-negative integer, got False"),
])
def test_fit_refuses_bad_arguments_clearly(kwargs, error, message):
    model = pn.Sequential([pn.Dense(2, 1)])
    params = model.init(np.random.default_rng(0))
    with pytest.raises(error, match=message):
        pn.fit(model, params, np.ones((4, 2)), np.ones((4, 1)), **kwargs)


def test_fit_refuses_ragged_data_clearly():
    model = pn.Sequential([pn.Dense(2, 1)])
    with pytest.raises(ValueError, match="rectangular arrays"):
        pn.fit(model, model.init(np.random.default_rng(0)), [[1, 2], [3]], np.ones((2, 1)), lr=0.1)


def test_evaluate_reports_accuracy_only_for_class_targets():
    model = pn.Sequential([pn.Dense(2, 1)])
    params = model.init(np.random.default_rng(0))
    x = np.ones((4, 2))
    assert set(pn.evaluate(model, params, x, np.full((4, 1), 0.3), loss=pn.mse)) == {"loss"}
    assert set(pn.evaluate(model, params, x, np.ones((4, 1)), loss=pn.mse)) == {"loss", "accuracy"}
