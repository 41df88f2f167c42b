"""fit, predict and evaluate with models that carry state (BatchNorm's running statistics)."""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn


def _model(dropout: bool = False) -> pn.Sequential:
    layers = [pn.Dense(4, 8), pn.BatchNorm(8), pn.ReLU(),
              pn.Residual(pn.Sequential([pn.Dense(8, 8), pn.BatchNorm(8)])), pn.ReLU()]
    if dropout:
        layers.append(pn.Dropout(0.3))
    return pn.Sequential([*layers, pn.Dense(8, 3)])


def _data(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 4)) * 3 + 2).astype("float32")
    return x, (x[:, 0] > 2).astype(int) + (x[:, 1] > 2)


def _fit(model, x, y, **kwargs):
    kwargs = {"loss": "softmax_cross_entropy", "optimizer": pn.Adam(1e-2), "epochs": 2,
              "batch_size": 16, **kwargs}
    return pn.fit(model, model.init(np.random.default_rng(1)), x, y, **kwargs)


def test_fit_returns_the_new_state_and_leaves_the_old_one_valid():
    model = _model()
    x, y = _data()
    start = model.init_state()
    copy = pn.tree_map(np.copy, start)
    params, state, history = _fit(model, x, y, state=start)
    assert len(history.epochs) == 2
    for old, kept in zip(pn.tree_leaves(start), pn.tree_leaves(copy)):
        assert np.array_equal(old, kept)  # the state passed in is untouched
    bn = state[1]
    assert not np.allclose(bn["mean"], 0) and not np.allclose(bn["var"], 1)
    # the running mean follows the data: the first Dense's outputs have a mean far from zero
    first = model.layers[0].forward(params[0], x)[0]
    assert np.allclose(bn["mean"], first.mean(axis=0), atol=0.5 * np.abs(first.mean(axis=0)).max())
    assert all(not a.flags.writeable for a in pn.tree_leaves(state))


def test_the_same_seed_gives_the_same_params_and_state():
    model = _model(dropout=True)
    x, y = _data()
    a = _fit(model, x, y, state=model.init_state(), seed=4)
    b = _fit(model, x, y, state=model.init_state(), seed=4)
    c = _fit(model, x, y, state=model.init_state(), seed=5)
    assert pn.params_digest(a[0], state=a[1]) == pn.params_digest(b[0], state=b[1])
    assert pn.params_digest(a[0], state=a[1]) != pn.params_digest(c[0], state=c[1])


def test_forgetting_the_state_is_an_error_everywhere():
    model = _model()
    x, y = _data()
    params = model.init(np.random.default_rng(0))
    with pytest.raises(pn.ArgumentError, match=r"fit: the model has layers with state .* pass state=model\.init_state\(\)"):
        _fit(model, x, y)
    with pytest.raises(pn.ArgumentError, match=r"predict: .* pass state="):
        pn.predict(model, params, x)
    with pytest.raises(pn.ArgumentError, match=r"evaluate: .* pass state="):
        pn.evaluate(model, params, x, y)
    with pytest.raises(pn.ArgumentError, match="without state and training"):
        model.forward(params, x)
    with pytest.raises(pn.ArgumentError, match="without training"):
        model.forward(params, x, state=model.init_state())


def test_validation_and_prediction_use_evaluation_mode():
    """Evaluation mode normalises with the running statistics: a sample's output does not depend
    on the other samples of its batch (in training mode it would)."""
    model = _model()
    x, y = _data()
    params, state, history = _fit(model, x, y, state=model.init_state(), validation=(x, y))
    whole = pn.predict(model, params, x, state=state)
    alone = np.concatenate([pn.predict(model, params, x[i : i + 1], state=state) for i in range(5)])
    np.testing.assert_allclose(whole[:5], alone, rtol=1e-5)  # BLAS rounding aside, the same
    assert history.val_accuracy[-1] == pn.evaluate(model, params, x, y, state=state)["accuracy"]
    trained_mode = model.forward(params, x[:5], state=state, training=True)[0]
    assert not np.allclose(trained_mode, whole[:5])


def test_a_stateless_model_passes_a_given_state_through():
    model = pn.Sequential([pn.Dense(4, 3)])
    x, y = _data()
    state = model.init_state()
    params, out_state, _ = _fit(model, x, y, state=state)
    assert out_state == state == ({},)
    plain, _ = _fit(model, x, y)
    assert pn.params_digest(plain) == pn.params_digest(params)
    assert pn.params_digest(params, state=out_state) == pn.params_digest(params)  # no arrays: unchanged


def test_batchnorm_learns_from_inputs_whose_scale_defeats_plain_training():
    """Inputs around 5000 +- 1000: tanh saturates and plain SGD stays at chance; with BatchNorm
    first (its running statistics then used in evaluation) the same network learns the task."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2)) * 1000 + 5000
    y = (x[:, 0] > x[:, 1]).astype(int)
    model = pn.Sequential([pn.BatchNorm(2, dtype="float64"), pn.Dense(2, 16, dtype="float64"),
                           pn.Tanh(), pn.Dense(16, 2, dtype="float64")])
    kwargs = {"loss": "softmax_cross_entropy", "lr": 0.5, "epochs": 20, "batch_size": 32}
    params, state, _ = pn.fit(model, model.init(rng), x, y, state=model.init_state(), **kwargs)
    assert pn.evaluate(model, params, x, y, state=state)["accuracy"] > 0.95
    plain = pn.Sequential(list(model.layers[1:]))
    plain_params, _ = pn.fit(plain, plain.init(rng), x, y, **kwargs)
    assert pn.evaluate(plain, plain_params, x, y)["accuracy"] < 0.7


def test_check_gradients_of_a_stateful_model_in_both_modes():
    model = _model()
    x = _data(6)[0].astype(np.float64)
    report = pn.check_gradients(model, x)
    assert any("scale" in c.name for c in report.checks)
    trained_state = model.forward(model.init(np.random.default_rng(0)), x,
                                  state=model.init_state(), training=True)[2]
    pn.check_gradients(model, x, state=trained_state, training=False)
