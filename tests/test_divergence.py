"""Training that diverges stops with a DivergenceError that says where, never with NaN params and
NumPy's RuntimeWarnings (which the test configuration turns into errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import purenn as pn

X = np.random.default_rng(0).standard_normal((32, 4))
Y = X @ np.arange(1.0, 5.0)[:, None]


def _model(dtype="float64"):
    return pn.Sequential([pn.Dense(4, 8, dtype=dtype), pn.Tanh(), pn.Dense(8, 1, dtype=dtype)])


def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss():
    model = _model()
    params = model.init(np.random.default_rng(0))
    seen = []

    def recording_mse(y_pred, y_true):
        value, grad = pn.mse(y_pred, y_true)
        seen.append(value)
        return value, grad

    pn.fit(model, params, X, Y, loss=recording_mse, lr=1e30, epochs=3, batch_size=8, shuffle=False,
           stop_on_divergence=False)
    first = next(i for i, v in enumerate(seen) if not math.isfinite(v))
    with pytest.raises(pn.DivergenceError) as caught:
        pn.fit(model, params, X, Y, lr=1e30, epochs=3, batch_size=8, shuffle=False)
    e = caught.value
    assert (e.epoch - 1) * 4 + e.step - 1 == first and e.steps_per_epoch == 4
    assert e.last_finite_loss == seen[first - 1] and not math.isfinite(e.loss)
    assert f"training diverged at epoch {e.epoch}, step {e.step} of 4: the loss became" in e.message
    assert "smaller learning rate" in e.hint and isinstance(e, FloatingPointError)


def test_params_that_overflow_in_the_last_step_are_caught_at_the_end_of_the_epoch():
    model = _model("float32")
    with pytest.raises(pn.DivergenceError, match=r"epoch 1, step 1 of 1: the parameters became non-finite"):
        pn.fit(model, model.init(np.random.default_rng(0)), X, Y, lr=1e39, epochs=1, batch_size=32)


def test_training_on_is_possible_on_request_and_gives_nan_without_warnings():
    model = _model()
    params, history = pn.fit(model, model.init(np.random.default_rng(0)), X, Y, lr=1e30, epochs=2,
                             batch_size=8, stop_on_divergence=False)
    assert math.isnan(history.loss[-1])
    assert not all(np.isfinite(a).all() for a in pn.tree_leaves(params))


def test_a_stable_run_is_untouched_by_the_checks():
    model = _model()
    params = model.init(np.random.default_rng(0))
    a = pn.fit(model, params, X, Y, lr=0.01, epochs=3, batch_size=8)[1].loss
    b = pn.fit(model, params, X, Y, lr=0.01, epochs=3, batch_size=8, stop_on_divergence=False)[1].loss
    assert a == b and all(math.isfinite(v) for v in a) and a[-1] < a[0]


def test_losses_by_name_and_clear_errors_for_other_things():
    model = _model()
    params = model.init(np.random.default_rng(0))
    by_name = pn.fit(model, params, X, Y, loss="mse", lr=0.01, epochs=1)[1].loss
    by_function = pn.fit(model, params, X, Y, loss=pn.mse, lr=0.01, epochs=1)[1].loss
    assert by_name == by_function
    with pytest.raises(TypeError, match=r"`loss` must be a function .* or the name of a built-in loss, one of \('mse'"):
        pn.fit(model, params, X, Y, loss="l2", lr=0.01)


def test_sequential_of_a_single_layer_says_to_pass_a_list():
    with pytest.raises(TypeError, match=r"Sequential takes a list of layers, e.g. Sequential\(\[Dense\(2, 3\), Tanh\(\)\]\); got Dense"):
        pn.Sequential(pn.Dense(2, 3))
    assert pn.Sequential(layer for layer in [pn.Dense(2, 3)]).layers == (pn.Dense(2, 3),)


def test_check_gradients_returns_a_report_to_print():
    report = pn.check_gradients(_model(), X[:3])
    names = [c.name for c in report.checks]
    assert names == ["input x", "params[0]['w']", "params[0]['b']", "params[2]['w']", "params[2]['b']"]
    assert all(c.max_abs_error < 1e-6 for c in report.checks)
    text = str(report)
    assert "all 5 arrays agree" in text and "params[2]['w']" in text and "(8, 1)" in text
    loss_report = pn.check_loss_gradients(pn.mse, np.ones((2, 3)), np.zeros((2, 3)))
    assert [c.name for c in loss_report.checks] == ["y_pred"]
