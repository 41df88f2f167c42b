"""Training that diverges stops with a DivergenceError that says where, never with NaN params and
NumPy's RuntimeWarnings (which the test configuration turns into errors)."""

from __future__ import annotations

import math
import re

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


# ---------------------------------------------------------------- non-finite data


def _with(a, where, value):
    a = a.copy()
    a[where] = value
    return a


@pytest.mark.parametrize("which, name, count, first", [
    ("x", "`x`", 3, r"x\[5, 2\] = nan"),
    ("y", "`y`", 3, r"y\[5, 0\] = -inf"),
    ("x_val", r"`validation\[0\]` \(the validation inputs\)", 3, r"validation\[0\]\[5, 2\] = inf"),
    ("y_val", r"`validation\[1\]` \(the validation targets\)", 1, r"validation\[1\]\[9, 0\] = nan"),
])
def test_non_finite_data_is_refused_before_training_naming_the_array(which, name, count, first):
    """NaN in the data used to stop at step 1 with a DivergenceError blaming the learning rate."""
    data = {"x": X, "y": Y, "x_val": X[:10], "y_val": Y[:10]}
    bad = {"x": ([5, 7, 31], [2, 0, 3], np.nan), "y": ([5, 6, 30], [0, 0, 0], -np.inf),
           "x_val": ([5, 6, 7], [2, 2, 2], np.inf), "y_val": (9, 0, np.nan)}[which]
    data[which] = _with(data[which], bad[:2], bad[2])
    model = _model()
    seen = []

    def recording_mse(y_pred, y_true):
        seen.append(1)
        return pn.mse(y_pred, y_true)

    with pytest.raises(pn.ArgumentError) as caught:
        pn.fit(model, model.init(np.random.default_rng(0)), data["x"], data["y"], loss=recording_mse,
               lr=0.01, validation=(data["x_val"], data["y_val"]))
    e = caught.value
    assert not isinstance(e, pn.DivergenceError) and not seen  # refused before any step
    size = data[which].size
    s = "s" if count > 1 else ""
    assert re.match(rf"fit: {name} has {count} non-finite value{s} \(NaN or infinity\) of {size}, "
                    rf"the first at {first}; ", e.message), e.message
    assert "learning rate" not in e.hint and "np.nan_to_num" in e.hint


def test_the_first_non_finite_value_is_found_in_any_shape_and_dtype():
    model = pn.Sequential([pn.Flatten(), pn.Dense(6, 1, dtype="float32")])
    x = _with(np.zeros((4, 2, 3), np.float32), (3, 1, 0), np.inf)
    with pytest.raises(pn.ArgumentError, match=r"`x` has 1 non-finite value \(NaN or infinity\) of "
                                               r"24, the first at x\[3, 1, 0\] = inf"):
        pn.fit(model, model.init(np.random.default_rng(0)), x, np.zeros((4, 1), np.float32), lr=0.1)


def test_finite_data_whose_sum_overflows_is_not_refused():
    """The check sums each array (one pass, no copy); an infinite sum of finite values must be
    looked at element by element, not taken for a non-finite value."""
    model = pn.Sequential([pn.Dense(1, 1, dtype="float32")])
    big = np.full((4, 1), 3e38, np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(big.sum(dtype=np.float32))
    with pytest.raises(pn.DivergenceError):  # the loss overflows: training starts, then diverges
        pn.fit(model, model.init(np.random.default_rng(0)), big, big, lr=0.1)


def test_training_on_non_finite_data_is_possible_on_request():
    model = _model()
    x = _with(X, (0, 0), np.nan)
    _, history = pn.fit(model, model.init(np.random.default_rng(0)), x, Y, lr=0.01, epochs=1,
                        batch_size=8, stop_on_divergence=False)
    assert math.isnan(history.loss[0])
    # integer data is finite by its dtype
    labels = np.arange(32) % 2
    pn.fit(pn.Dense(4, 2), pn.Dense(4, 2).init(np.random.default_rng(0)), X, labels,
           loss="softmax_cross_entropy", lr=0.01)
