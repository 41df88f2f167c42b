"""fit's training controls (issue 21): sample and class weights, the training accuracy and metrics
per epoch, weight averaging (EMA, with gradient accumulation), masks given as functions, each
checked against its definition, and resumed bit for bit through files."""

from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from rich.console import Console

import purenn as pn
from purenn.errors import TrainingInterrupted
from purenn.io.training_checkpoints import load_training_state, save_training_state
from purenn.training import update_count
from purenn.training_state import TrainingState

RNG = np.random.default_rng


def _data(n: int = 60, features: int = 4, classes: int = 3, dtype: str = "float64"):
    rng = RNG(0)
    x = rng.standard_normal((n, features)).astype(dtype)
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5) * (classes > 2)


def _mlp(dtype: str = "float64", out: int = 3) -> pn.Sequential:
    return pn.Sequential([pn.Dense(4, 8, dtype=dtype), pn.Tanh(), pn.Dense(8, out, dtype=dtype)])


X, Y = _data()
MODEL = _mlp()
P0 = MODEL.init(RNG(1))


def _same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(pn.tree_leaves(a), pn.tree_leaves(b)))


# --- sample and class weights ----------------------------------------------------------------


def test_full_batch_training_with_a_weight_of_two_is_training_with_the_row_twice():
    w = np.ones(len(X))
    w[7] = 2.0
    x2, y2 = np.concatenate([X, X[7:8]]), np.concatenate([Y, Y[7:8]])
    kwargs = {"loss": "softmax_cross_entropy", "optimizer": pn.SGD(0.5), "epochs": 5, "shuffle": False}
    weighted, hw = pn.fit(MODEL, P0, X, Y, batch_size=len(X), sample_weight=w, **kwargs)
    twice, ht = pn.fit(MODEL, P0, x2, y2, batch_size=len(x2), **kwargs)
    for a, b in zip(pn.tree_leaves(weighted), pn.tree_leaves(twice)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hw.loss, ht.loss, rtol=1e-12)
    assert not _same(weighted, pn.fit(MODEL, P0, X, Y, batch_size=len(X), **kwargs)[0])


def test_the_weights_follow_their_rows_through_the_shuffle():
    """Rows of weight 0 count for nothing: replacing their inputs by anything changes no bit of
    plain SGD's result (a zero gradient adds -0.0), whatever order the shuffle puts them in."""
    w = (np.arange(len(X)) % 3 != 0).astype(float)
    garbage = X.copy()
    garbage[w == 0] = 100.0
    kwargs = {"loss": "softmax_cross_entropy", "optimizer": pn.SGD(0.1), "epochs": 2, "batch_size": 1, "seed": 3}
    a, ha = pn.fit(MODEL, P0, X, Y, sample_weight=w, **kwargs)
    b, hb = pn.fit(MODEL, P0, garbage, Y, sample_weight=w, **kwargs)
    assert _same(a, b) and ha.loss == hb.loss
    assert not _same(a, pn.fit(MODEL, P0, X, Y, **kwargs)[0])


def test_the_epoch_loss_is_the_weighted_mean_over_the_epoch():
    w = RNG(5).uniform(0, 3, len(X))
    cw = [1.0, 0.5, 3.0]
    _params, history = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", optimizer=pn.SGD(1e-12),
                             epochs=1, batch_size=7, shuffle=False, sample_weight=w, class_weight=cw)
    # with a learning rate of 1e-12 the params hardly move: the epoch's loss is the loss of P0
    out = pn.predict(MODEL, P0, X)
    value, _ = pn.softmax_cross_entropy(out, Y, sample_weight=w, class_weight=np.array(cw))
    assert history.loss[0] == pytest.approx(value, rel=1e-9)


def test_class_weights_reach_softmax_cross_entropy_as_its_own_option():
    cw = np.array([2.0, 1.0, 0.5])
    kwargs = {"optimizer": pn.Adam(1e-2), "epochs": 2, "batch_size": 8, "seed": 1}
    given, _hg = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", class_weight=cw, **kwargs)
    bound, _hb = pn.fit(MODEL, P0, X, Y, loss=functools.partial(pn.softmax_cross_entropy, class_weight=cw),
                       **kwargs)
    assert _same(given, bound)  # (the epoch's losses differ: fit's class_weight weighs the epoch's mean)


def test_class_weights_become_sample_weights_for_other_losses_as_in_keras():
    y = pn.one_hot(Y, 3, dtype="float64")
    kwargs = {"loss": "mse", "optimizer": pn.SGD(0.1), "epochs": 2, "batch_size": 8, "seed": 1}
    by_class, _ = pn.fit(MODEL, P0, X, y, class_weight={1: 3.0}, **kwargs)
    by_row, _ = pn.fit(MODEL, P0, X, y, sample_weight=np.where(Y == 1, 3.0, 1.0), **kwargs)
    assert _same(by_class, by_row)


def _no_weights(y_pred, y_true):
    return pn.mse(y_pred, y_true)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sample_weight": np.ones(3)}, pn.ShapeError, r"one weight per training row, shape \(60,\), got shape \(3,\)"),
    ({"sample_weight": -np.ones(60)}, pn.ArgumentError, r"`sample_weight` must be finite numbers >= 0"),
    ({"sample_weight": np.full(60, np.nan)}, pn.ArgumentError, r"`sample_weight` must be finite numbers >= 0"),
    ({"sample_weight": np.zeros(60)}, pn.ArgumentError, r"weights .* are all 0"),
    ({"class_weight": [1.0, 1.0]}, pn.ArgumentError, r"2 weights but the labels run from 0 to 2"),
    ({"class_weight": {"a": 1.0}}, pn.ArgumentTypeError, r"keys must be class indices"),
    ({"class_weight": [[1.0]]}, pn.ShapeError, r"one weight per class"),
    ({"class_weight": [0.0, 0.0, 0.0]}, pn.ArgumentError, r"are all 0"),
])
def test_bad_weights_are_refused_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", lr=0.1, **kwargs)


def test_a_loss_that_takes_no_weights_is_refused_when_weights_are_given():
    y = pn.one_hot(Y, 3, dtype="float64")
    for weights in ({"sample_weight": np.ones(60)}, {"class_weight": [1.0, 2.0, 1.0]}):
        with pytest.raises(pn.ArgumentError, match=r"the loss _no_weights takes no `sample_weight`"):
            pn.fit(MODEL, P0, X, y, loss=_no_weights, lr=0.1, **weights)
    with pytest.raises(pn.ArgumentError, match=r"`class_weight` needs class targets"):
        pn.fit(MODEL, P0, X, y * 0.5, loss="mse", lr=0.1, class_weight=[1.0, 2.0, 1.0])
    pn.fit(MODEL, P0, X, y, loss=_no_weights, lr=0.1)  # without weights it trains


# --- seeing training: accuracy and metrics ----------------------------------------------------


def _by_hand(x, y, batch_size, epochs, lr, metric=None):
    """The training outputs' accuracy (and a metric's row-weighted mean) per epoch, by a loop of
    plain SGD on the model's pieces, in order."""
    params, accuracies, metrics = P0, [], []
    for _ in range(epochs):
        correct, total = 0, 0.0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            out, cache = MODEL.forward(params, xb)
            correct += int(np.sum(out.argmax(axis=1) == yb))
            total += 0.0 if metric is None else metric(out, yb) * len(xb)
            _, dy = pn.softmax_cross_entropy(out, yb)
            params = pn.sgd_step(params, MODEL.backward(params, cache, dy)[1], lr)
        accuracies.append(correct / len(x))
        metrics.append(total / len(x))
    return params, accuracies, metrics


def _margin(y_pred, y_true):
    return float(np.mean(y_pred[np.arange(len(y_true)), y_true] - y_pred.max(axis=1)))


@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_the_training_accuracy_is_that_of_the_steps_own_outputs(batch_size):
    """Batch 1 and 2: epochs of many steps; with 7 the last batch is short."""
    x, y = _data(150)
    expected, accuracies, metrics = _by_hand(x, y, batch_size, 2, 0.05, _margin)
    params, history = pn.fit(MODEL, P0, x, y, loss="softmax_cross_entropy", lr=0.05, epochs=2,
                             batch_size=batch_size, shuffle=False, metrics={"margin": _margin})
    assert _same(params, expected)
    assert history.accuracy == accuracies
    np.testing.assert_allclose(history.metric("margin"), metrics, rtol=1e-12)
    # states taken mid-epoch (their counts so far) change nothing
    saved: list[TrainingState] = []
    again = pn.fit(MODEL, P0, x, y, loss="softmax_cross_entropy", lr=0.05, epochs=2, batch_size=batch_size,
                   shuffle=False, checkpoint=saved.append, checkpoint_every=3)[1]
    assert again.accuracy == accuracies and any(s.step for s in saved)


def test_a_single_output_is_a_class_at_the_losss_threshold():
    """binary_cross_entropy's outputs are logits: class 1 above 0 (not 0.5)."""
    model = pn.Sequential([pn.Dense(4, 1, dtype="float64")])
    y = (X[:, 0] > 0).astype("float64")[:, None]
    params0 = pn.freeze(({"w": np.full((4, 1), 0.05), "b": np.array([0.25])},))  # logits near 0.25
    _, history = pn.fit(model, params0, X, y, loss="binary_cross_entropy", lr=1e-300, epochs=1, shuffle=False)
    logits = pn.predict(model, params0, X)
    assert history.accuracy == [float(np.mean((logits[:, 0] > 0) == (y[:, 0] == 1)))]
    assert history.accuracy != [float(np.mean((logits[:, 0] > 0.5) == (y[:, 0] == 1)))]


def test_validation_metrics_are_computed_on_all_the_outputs():
    params, history = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", lr=0.05, epochs=1,
                             validation=(X[:20], Y[:20]), metrics={"margin": _margin})
    assert history.metric("val_margin") == [_margin(pn.predict(MODEL, params, X[:20]), Y[:20])]
    assert pn.evaluate(MODEL, params, X[:20], Y[:20], metrics={"margin": _margin})["margin"] == \
        history.metric("val_margin")[0]


def test_targets_that_are_not_classes_have_no_training_accuracy():
    _, history = pn.fit(MODEL, P0, X, X[:, :3] * 0.3, lr=0.05, epochs=2)
    assert history.accuracy == [None, None]


@pytest.mark.parametrize("metrics, error, match", [
    ({"loss": _margin}, pn.ArgumentError, r"names must be identifiers other than"),
    ({"val_x": _margin}, pn.ArgumentError, r"not starting with 'val_'"),
    ({"m": 3}, pn.ArgumentTypeError, r"`metrics\['m'\]` must be a function"),
    ([_margin], pn.ArgumentTypeError, r"must be a non-empty dict"),
    ({"m": lambda p, t: "high"}, pn.ArgumentTypeError, r"the metric 'm' must return a number"),
])
def test_bad_metrics_are_refused(metrics, error, match):
    with pytest.raises(error, match=match):
        pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", lr=0.05, metrics=metrics)


def test_early_stopping_can_watch_the_training_accuracy():
    _, history = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", optimizer=pn.Adam(1e-2),
                        epochs=6, early_stopping=pn.EarlyStopping(2, monitor="accuracy"))
    assert history.best_epoch == int(np.argmax(history.accuracy)) + 1
    with pytest.raises(pn.ArgumentError, match=r"monitors 'accuracy', but the training targets are not"):
        pn.fit(MODEL, P0, X, X[:, :3] * 0.3, lr=0.1, early_stopping=pn.EarlyStopping(monitor="accuracy"))


# --- weight averaging -------------------------------------------------------------------------


def _steps(**kwargs):
    """The params after every step of a run (its states handed to checkpoint every step)."""
    saved: list[TrainingState] = []
    result = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", batch_size=8, seed=2, epochs=2,
                    checkpoint=saved.append, checkpoint_every=1, **kwargs)
    return result, saved


def _ema_by_hand(decay, path):
    average = pn.tree_map(lambda a: a, P0)
    for params in path:
        average = pn.tree_map(lambda a, p: a + (1.0 - decay) * (p - a), average, params)
    return average


def _unique_steps(saved):
    """One state per step (an epoch's end is handed over twice: by checkpoint_every and after it)."""
    seen, out = set(), []
    for s in saved:
        key = s.epoch * 100 + s.step if s.step else s.epoch * 100
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def test_fit_averages_the_params_of_every_update():
    (params, history), saved = _steps(optimizer=pn.Adam(1e-2), average=pn.EMA(0.8))
    path = [s.params for s in _unique_steps(saved)]
    assert len(path) == 16 and _same(path[-1], params)
    expected = _ema_by_hand(0.8, path)
    for a, b in zip(pn.tree_leaves(history.averaged), pn.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert saved[-1].average.step == 16
    assert not _same(history.averaged, params)


def test_with_gradient_accumulation_the_average_follows_updates_only():
    opt = pn.MultiSteps(pn.SGD(0.1), 3)
    (_params, history), saved = _steps(optimizer=opt, average=pn.EMA(0.5))
    states = _unique_steps(saved)
    updated = [s.params for s in states if opt.made_update(s.opt_state)]
    assert len(updated) == 5  # 16 steps make 5 updates
    expected = _ema_by_hand(0.5, updated)
    for a, b in zip(pn.tree_leaves(history.averaged), pn.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert states[-1].average.step == 5


def test_validation_and_early_stopping_see_the_averaged_params():
    kwargs = {"loss": "softmax_cross_entropy", "optimizer": pn.Adam(3e-2), "epochs": 5, "batch_size": 8,
                  "validation": (X[:20], Y[:20]), "average": pn.EMA(0.9), "digest": lambda p, s: pn.params_digest(p)}
    _params, history = pn.fit(MODEL, P0, X, Y, **kwargs)
    last = history.epochs[-1]
    assert last.val_loss == pn.evaluate(MODEL, history.averaged, X[:20], Y[:20],
                                        loss="softmax_cross_entropy")["loss"]
    assert last.average_digest == pn.params_digest(history.averaged) != last.digest
    best, early = pn.fit(MODEL, P0, X, Y, early_stopping=pn.EarlyStopping(1), **kwargs)
    k = early.best_epoch
    assert early.epochs[k - 1].average_digest == pn.params_digest(early.averaged)
    assert early.epochs[k - 1].digest == pn.params_digest(best)


def test_a_weight_average_must_be_one():
    with pytest.raises(pn.ArgumentTypeError, match=r"`average` must be a weight average such as EMA"):
        pn.fit(MODEL, P0, X, Y, lr=0.1, loss="softmax_cross_entropy", average=0.99)


def test_update_count_counts_updates_of_a_run():
    assert update_count(pn.SGD(0.1), 10) == 10
    assert update_count(pn.MultiSteps(pn.SGD(0.1), 3), 10) == 4
    assert update_count(pn.chain(pn.ClipByGlobalNorm(1.0), pn.MultiSteps(pn.Adam(1e-3), 4)), 8) == 2


# --- masks given as functions -----------------------------------------------------------------


def _weights_only(params):
    return pn.tree_map(lambda a: a.ndim >= 2, params)


def test_a_function_mask_is_resolved_and_recorded_as_its_tree():
    saved: list[TrainingState] = []
    opt = pn.AdamW(1e-2, weight_decay=0.1, mask=lambda p: _weights_only(p))
    full, _ = pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", optimizer=opt, checkpoint=saved.append,
                     checkpoint_every=3)
    recorded = saved[0].settings["optimizer"]
    assert "function" not in recorded and "mask=({'w': True, 'b': False}, {}, {'w': True, 'b': False})" in recorded, recorded
    # another function object of the same meaning (another address) resumes the run
    other = pn.AdamW(1e-2, weight_decay=0.1, mask=lambda p: _weights_only(p))
    again, _ = pn.fit(MODEL, None, X, Y, loss="softmax_cross_entropy", optimizer=other, resume=saved[0])
    assert _same(again, full)


# --- resuming with everything -----------------------------------------------------------------


KWARGS = {"loss": "softmax_cross_entropy", "epochs": 3, "batch_size": 8, "seed": 7,
              "optimizer": pn.MultiSteps(pn.AdamW(1e-2, weight_decay=0.05, mask=lambda p: _weights_only(p)), 2),
              "average": pn.EMA(0.9, warmup=True), "sample_weight": RNG(3).uniform(0.5, 2, len(X)),
              "class_weight": [1.0, 2.0, 0.5], "metrics": {"margin": _margin}, "validation": (X[:20], Y[:20]),
              "early_stopping": pn.EarlyStopping(5), "digest": lambda p, s: pn.params_digest(p)}


def test_a_run_with_every_control_resumes_bit_for_bit_through_files(tmp_path):
    full_params, full = pn.fit(MODEL, P0, X, Y, **KWARGS)
    polls, resume, pieces = [0], None, 0

    def stop() -> bool:  # 8 steps an epoch: stops mid-epoch and at ends
        polls[0] += 1
        return polls[0] in {3, 8, 12, 19}

    while True:
        pieces += 1
        try:
            params, history = pn.fit(MODEL, P0 if resume is None else None, X, Y, resume=resume,
                                     stop=stop, **KWARGS)
            break
        except TrainingInterrupted as e:
            save_training_state(tmp_path / "t.npz", MODEL, e.state)
            resume = load_training_state(tmp_path / "t.npz").state
            assert resume.average is not None and resume.epoch_metrics is not None
    assert pieces == 5
    assert _same(params, full_params) and _same(history.averaged, full.averaged)
    assert history == full  # losses, accuracies, metrics, validation, both digests per epoch
    assert all(e.accuracy is not None and e.average_digest for e in history.epochs)


def test_resuming_without_the_average_or_with_other_weights_is_refused():
    saved: list[TrainingState] = []
    pn.fit(MODEL, P0, X, Y, checkpoint=saved.append, **KWARGS)
    for change, field in (({"average": None}, "average"), ({"class_weight": [1.0, 1.0, 1.0]}, "class_weight"),
                          ({"sample_weight": np.ones(len(X))}, "data"), ({"metrics": None}, "metrics")):
        with pytest.raises(pn.ArgumentError, match=rf"cannot resume: .*\b{field}: saved"):
            pn.fit(MODEL, None, X, Y, resume=saved[0], **{**KWARGS, **change})


def test_a_saved_average_that_does_not_fit_is_refused():
    saved: list[TrainingState] = []
    pn.fit(MODEL, P0, X, Y, checkpoint=saved.append, **KWARGS)
    import attrs
    bad = attrs.evolve(saved[0], average=pn.EMA(0.9).init(P0[0]))
    with pytest.raises(pn.ArgumentError, match=r"the saved weight average does not fit"):
        pn.fit(MODEL, None, X, Y, resume=bad, **KWARGS)


# --- the progress bar -------------------------------------------------------------------------


def test_the_progress_bar_shows_steps_and_epochs_and_the_library_prints_nothing_else(capsys):
    buffer = io.StringIO()
    bar = pn.ProgressBar(Console(file=buffer, width=200))
    pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", lr=0.1, epochs=2, batch_size=10,
           validation=(X, Y), callback=bar)
    text = buffer.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "6/6" in text
    assert "accuracy" in text and "val_loss" in text and "val_accuracy" in text
    pn.fit(MODEL, P0, X, Y, loss="softmax_cross_entropy", lr=0.1, epochs=2)
    assert capsys.readouterr() == ("", "")


def test_the_progress_bar_is_closed_when_fit_fails():
    closed = []

    class Watch(pn.ProgressBar):
        def close(self):
            closed.append(True)
            super().close()

    bar = Watch(Console(file=io.StringIO()))
    with pytest.raises(pn.DivergenceError):
        pn.fit(MODEL, P0, X, pn.one_hot(Y, 3), loss="mse", lr=1e300, epochs=2, callback=bar)
    assert closed == [True] and bar._progress is None
