"""Early stopping and reduce-on-plateau: the pure rules, and fit using them."""

from __future__ import annotations

import numpy as np
import pytest

import purenn as pn
from purenn.monitors import EarlyStoppingState, PlateauState


def _scales(rule: pn.ReduceLROnPlateau, values: list[float]) -> list[float]:
    state, out = rule.init(), []
    for v in values:
        state = rule.update(state, v)
        out.append(state.scale)
    return out


def test_plateau_halves_after_patience_epochs_without_improvement():
    rule = pn.ReduceLROnPlateau(factor=0.5, patience=2)
    assert _scales(rule, [1.0, 0.9, 0.9, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]) == [
        1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]


@pytest.mark.parametrize("shift", [0.0, -10.0, -1000.0])
def test_plateau_works_the_same_for_negative_metrics(shift):
    """optax's rule compared with best * (1 - rtol), which for a negative best asks for a
    *larger* value and never fires (PR 1767); an absolute margin does not care about the sign."""
    values = [v + shift for v in (3.0, 2.0, 2.0, 2.0, 1.0, 1.5, 1.5)]
    rule = pn.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.1)
    assert _scales(rule, values) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    up = pn.ReduceLROnPlateau(monitor="val_accuracy", patience=1)  # "max": higher is better
    assert _scales(up, [-v for v in values]) == [1.0, 1.0, 0.5, 0.25, 0.25, 0.125, 0.0625]


def test_plateau_cooldown_and_floor():
    rule = pn.ReduceLROnPlateau(factor=0.1, patience=1, cooldown=2, min_scale=0.005)
    assert _scales(rule, [1.0] * 8) == pytest.approx([1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.005])
    after_nan = rule.update(PlateauState(best=1.0, wait=0, cooldown=0, scale=1.0), float("nan"))
    assert after_nan.best == 1.0 and after_nan.scale == 0.1  # a NaN is never an improvement
    assert rule.update(rule.init(), float("nan")).best is None


def test_early_stopping_rule():
    rule = pn.EarlyStopping(patience=2)
    state = rule.init()
    seen = []
    for epoch, v in enumerate([1.0, 0.8, 0.85, 0.7, 0.75, 0.72], start=1):
        state = rule.update(state, v, epoch)
        seen.append((state.best_epoch, state.wait, state.stopped))
    assert seen == [(1, 0, False), (2, 0, False), (2, 1, False), (4, 0, False), (4, 1, False),
                    (4, 2, True)]
    assert pn.EarlyStopping(1, monitor="val_accuracy").update(
        EarlyStoppingState(best=-0.5, best_epoch=1), -0.4, 2).best_epoch == 2


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 6))
    y = (x[:, 0] + 0.3 * rng.standard_normal(120) > 0).astype(int)
    return x[:80], y[:80], x[80:], y[80:]


def _fit(epochs: int, **kwargs):
    x, y, xv, yv = _data()
    model = pn.Sequential([pn.Dense(6, 64, dtype="float64"), pn.Tanh(), pn.Dense(64, 2, dtype="float64")])
    return pn.fit(model, model.init(np.random.default_rng(2)), x, y, loss="softmax_cross_entropy",
                  optimizer=pn.Adam(0.05), epochs=epochs, batch_size=8, validation=(xv, yv), seed=3,
                  **kwargs)


def test_early_stopping_returns_the_best_epochs_params():
    params, history = _fit(40, early_stopping=pn.EarlyStopping(patience=3))
    assert history.stopped_early
    best = history.best_epoch
    val = history.val_loss
    assert val[best - 1] == min(val) and len(history.epochs) == best + 3
    assert all(v >= val[best - 1] for v in val[best:])
    stopped_there, _ = _fit(best)  # the same run, stopped at the best epoch: the same params
    assert pn.params_digest(params) == pn.params_digest(stopped_there)
    last, _ = _fit(len(history.epochs))
    assert pn.params_digest(params) != pn.params_digest(last)



def test_early_stopping_returns_the_best_epochs_params_when_it_never_stops():
    """A run that uses all its epochs (patience never runs out) still returns the params of the
    best epoch, not the last, when the best was earlier."""
    _, stopping = _fit(40, early_stopping=pn.EarlyStopping(patience=3))
    best, epochs = stopping.best_epoch, len(stopping.epochs)
    params, history = _fit(epochs, early_stopping=pn.EarlyStopping(patience=100),
                           digest=lambda p, s: pn.params_digest(p))
    assert not history.stopped_early and len(history.epochs) == epochs
    assert history.best_epoch == best < epochs
    assert pn.params_digest(params) == history.epochs[best - 1].digest != history.epochs[-1].digest
    stopped_there, _ = _fit(best)
    assert pn.params_digest(params) == pn.params_digest(stopped_there)

def test_early_stopping_needs_the_metric_it_watches():
    x, y, _, _ = _data()
    model = pn.Dense(6, 2)
    with pytest.raises(pn.ArgumentError, match="monitors 'val_loss', which needs a validation set"):
        pn.fit(model, model.init(np.random.default_rng(0)), x, y, lr=0.1,
               early_stopping=pn.EarlyStopping())
    with pytest.raises(pn.ArgumentError, match="validation targets are not classes"):
        pn.fit(model, model.init(np.random.default_rng(0)), x, y, lr=0.1,
               validation=(x, x[:, :2] * 0.37), early_stopping=pn.EarlyStopping(monitor="val_accuracy"))
    with pytest.raises(pn.ArgumentTypeError, match="`early_stopping` must be a EarlyStopping"):
        pn.fit(model, model.init(np.random.default_rng(0)), x, y, lr=0.1, early_stopping=3)


def test_fit_applies_the_plateau_scale_to_the_learning_rate_exactly():
    """Full-batch SGD, a plateau rule that never sees an improvement after the first epoch
    (min_delta huge), patience 1: the rate is 0.1, 0.1, 0.05, 0.025. The same steps by hand with
    sgd_step give the same bits."""
    x, y, _, _ = _data()
    model = pn.Sequential([pn.Dense(6, 4, dtype="float64"), pn.Tanh(), pn.Dense(4, 2, dtype="float64")])
    p0 = model.init(np.random.default_rng(0))
    params, history = pn.fit(model, p0, x, y, loss="softmax_cross_entropy", lr=0.1, epochs=4,
                             batch_size=len(x), shuffle=False,
                             plateau=pn.ReduceLROnPlateau(monitor="loss", patience=1, min_delta=1e9))
    assert [e.lr_scale for e in history.epochs] == [1.0, 1.0, 0.5, 0.25]
    p = p0
    for lr in (0.1, 0.1, 0.05, 0.025):
        out, cache = model.forward(p, x)
        _, dy = pn.softmax_cross_entropy(out, y)
        p = pn.sgd_step(p, model.backward(p, cache, dy)[1], lr)
    assert pn.params_digest(p) == pn.params_digest(params)


def test_plateau_needs_an_optimizer_that_takes_a_scale():
    class Plain:
        def init(self, params):
            return ()

        def update(self, params, grads, state):
            return params, state

    x, y, _, _ = _data()
    model = pn.Dense(6, 2)
    with pytest.raises(pn.ArgumentTypeError, match="takes lr_scale"):
        pn.fit(model, model.init(np.random.default_rng(0)), x, y, optimizer=Plain(),
               plateau=pn.ReduceLROnPlateau(monitor="loss"))
