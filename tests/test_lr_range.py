"""The learning-rate range test (purenn.lr_range): its schedule against the formula, its stops
(end, divergence, a non-finite loss), the suggestion rule on curves whose answer is known, and its
limits (MIN_POINTS, SKIP) just below and above."""

from __future__ import annotations

import math

import numpy as np
import pytest

import purenn as pn
from purenn.lr_range import MIN_POINTS, SKIP, ExponentialRange, suggest


def _problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = pn.Sequential([pn.Dense(4, 16, dtype="float64"), pn.ReLU(), pn.Dense(16, 2, dtype="float64")])
    return model, model.init(np.random.default_rng(1)), x, y


MODEL, PARAMS, X, Y = _problem()


def test_the_schedule_grows_exponentially_from_start_to_end():
    s = ExponentialRange(1e-4, 1.0, 5)
    np.testing.assert_allclose([s(t) for t in range(7)], [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1.0, 1.0], rtol=1e-12)
    assert ExponentialRange(0.5, 2.0, 1)(0) == 0.5


def test_a_run_to_the_end_records_one_rate_and_loss_per_step():
    r = pn.lr_range_test(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", start=1e-5, end=1e-3,
                         steps=20, batch_size=64)
    assert r.stopped == "end" and r.steps == 20  # 5 epochs of 4 batches
    np.testing.assert_allclose(r.lrs, [1e-5 * 100 ** (t / 19) for t in range(20)], rtol=1e-12)
    beta, s, expected = 0.9, 0.0, []
    for i, loss in enumerate(r.losses):
        s = beta * s + (1 - beta) * loss
        expected.append(s / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(r.smoothed, expected, rtol=1e-12)


def test_the_losses_are_those_of_training_with_those_rates():
    """The first step's loss is the initial params' loss on the first batch (shuffled by the seed),
    and the params given are left as they were."""
    before = [a.copy() for a in pn.tree_leaves(PARAMS)]
    r = pn.lr_range_test(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", steps=5, batch_size=256)
    assert r.losses[0] == pytest.approx(pn.evaluate(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy")["loss"],
                                        rel=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(before, pn.tree_leaves(PARAMS)))


def test_a_growing_rate_diverges_and_the_suggestion_lies_before_it():
    r = pn.lr_range_test(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", optimizer=pn.SGD(0.1),
                         start=1e-4, end=1e4, steps=200, batch_size=32)
    assert r.stopped in ("diverged", "non-finite loss") and r.steps < 200
    assert r.suggested_lr is not None and 1e-4 < r.suggested_lr <= r.min_loss_lr < r.lrs[-1]
    # a rate near the suggestion trains: lower loss than the start after a few epochs
    _, history = pn.fit(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", lr=r.suggested_lr, epochs=5)
    assert history.loss[-1] < r.losses[0]


def test_a_non_finite_loss_stops_the_test():
    y = pn.one_hot(Y, 2, dtype="float64")
    r = pn.lr_range_test(MODEL, PARAMS, X * 1e3, y, loss="mse", start=1.0, end=1e300, steps=100,
                         diverge=1e300)
    assert r.stopped == "non-finite loss" and not math.isfinite(r.losses[-1]) and math.isnan(r.smoothed[-1])


def test_the_rate_grows_per_update_under_gradient_accumulation():
    r = pn.lr_range_test(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", steps=10, start=1e-3, end=1e-1,
                         optimizer=lambda lr: pn.MultiSteps(pn.Adam(lr), 2))
    assert r.lrs[0] == r.lrs[1] < r.lrs[2] == r.lrs[3]  # 5 updates over 10 steps
    assert r.lrs[-1] == pytest.approx(1e-1)


def _curve(n: int, steepest: int):
    """A falling sigmoid over log(lr) whose steepest point is at index ``steepest``, then a rise."""
    lrs = np.logspace(-6, 1, n)
    t = np.arange(n, dtype=float)
    loss = 2.0 - 1.0 / (1.0 + np.exp(-(t - steepest) / 3.0)) + np.where(t > steepest + 15, (t - steepest - 15) ** 2, 0)
    return lrs, loss


def test_the_suggestion_is_the_steepest_descent_before_the_lowest_loss():
    lrs, loss = _curve(100, 40)
    suggested, lowest = suggest(lrs, loss)
    assert suggested == lrs[40] and lowest == lrs[int(np.argmin(loss))]


def test_the_first_tenth_is_not_looked_at():
    lrs, loss = _curve(100, 40)
    loss[3] -= 0.5  # a plunge of the noisy start, in the points skipped
    loss[4:] -= 0.5
    assert suggest(lrs, loss)[0] == lrs[40]
    loss[SKIP] -= 5.0  # the first point looked at
    assert suggest(lrs, loss)[0] != lrs[40]


def test_a_suggestion_needs_min_points_before_the_lowest_loss():
    lrs = np.logspace(-3, 0, 10)
    first = len(lrs) // SKIP
    for points, expected in ((MIN_POINTS - 1, None), (MIN_POINTS, lrs)):
        loss = np.arange(10, 0, -1.0)
        loss[first + points:] = 100.0  # the lowest loss is the last of `points` looked at
        got = suggest(lrs, loss)
        assert (got == (None, None)) if expected is None else got[1] == lrs[first + points - 1]
    assert suggest(lrs, np.full(10, np.nan)) == (None, None)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"start": 1.0, "end": 0.1}, pn.ArgumentError, r"`end` \(0\.1\) must be above `start` \(1\)"),
    ({"start": 0.0}, pn.ArgumentError, r"`start` must be"),
    ({"steps": 0}, pn.ArgumentError, r"`steps` must be"),
    ({"smoothing": 1.0}, pn.ArgumentError, r"`smoothing` must be a real number in \[0, 1\)"),
    ({"diverge": 1.0}, pn.ArgumentError, r"`diverge` must be a real number > 1"),
    ({"optimizer": pn.ScaleByAdam()}, pn.ArgumentTypeError, r"`optimizer` must be None \(SGD\)"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        pn.lr_range_test(MODEL, PARAMS, X, Y, loss="softmax_cross_entropy", **kwargs)
