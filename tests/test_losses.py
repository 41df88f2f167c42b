"""Losses against hand formulas, at extreme logits, and with bad labels and shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.losses import (
    DEFAULT_THRESHOLD,
    binary_cross_entropy,
    decision_threshold,
    mse,
    one_hot,
    softmax_cross_entropy,
)

RNG = np.random.default_rng


# ---------------------------------------------------------------- mse


def test_mse_hand_computed():
    value, grad = mse(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [5.0, 4.0]]))
    assert value == 1.25  # (1 + 0 + 4 + 0) / 4
    np.testing.assert_array_equal(grad, [[0.5, 0.0], [-1.0, 0.0]])  # 2 (y - y*) / 4


def test_mse_matches_the_tutorial_formula():
    y, t = RNG(0).standard_normal((5, 3)), RNG(1).standard_normal((5, 3))
    value, grad = mse(y, t)
    assert isinstance(value, float)
    assert value == pytest.approx(np.mean(np.power(t - y, 2)), rel=1e-15)
    np.testing.assert_allclose(grad, 2 * (y - t) / t.size, rtol=1e-15)


def test_mse_keeps_the_prediction_dtype_and_accepts_integer_targets():
    value, grad = mse(np.zeros((4, 1), dtype=np.float32), np.array([[0], [1], [1], [0]]))
    assert grad.dtype == np.float32 and value == 0.5


def test_mse_shape_mismatch_says_both_shapes_and_the_fix():
    with pytest.raises(ShapeError, match=r"mse: y_pred has shape \(3, 10\) but y_true has \(3,\); "
                       r"they must match \(one-hot encode integer labels with purenn.one_hot\)"):
        mse(np.zeros((3, 10)), np.array([1, 2, 3]))


def test_losses_refuse_non_numeric_input():
    with pytest.raises(TypeError, match=r"mse: `y_true` must be numeric, got an array of dtype <U1"):
        mse(np.zeros(2), np.array(["a", "b"]))
    with pytest.raises(TypeError, match=r"binary_cross_entropy: `logits` could not be turned into an array"):
        binary_cross_entropy([[1.0], [1.0, 2.0]], np.zeros(2))


# ---------------------------------------------------------------- softmax cross-entropy


def test_softmax_cross_entropy_hand_computed():
    logits = np.array([[0.0, math.log(3.0)], [0.0, 0.0]])  # softmax rows: [1/4, 3/4], [1/2, 1/2]
    value, grad = softmax_cross_entropy(logits, np.array([1, 0]))
    assert value == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-14)
    np.testing.assert_allclose(grad, np.array([[0.25, -0.25], [-0.5, 0.5]]) / 2, rtol=1e-14)


def test_softmax_cross_entropy_integer_and_one_hot_labels_agree():
    logits = 3 * RNG(0).standard_normal((6, 4))
    labels = RNG(1).integers(0, 4, 6)
    v_int, g_int = softmax_cross_entropy(logits, labels)
    v_hot, g_hot = softmax_cross_entropy(logits, one_hot(labels, 4, dtype=np.float64))
    assert v_int == pytest.approx(v_hot, rel=1e-14)
    np.testing.assert_allclose(g_int, g_hot, rtol=1e-14, atol=1e-17)
    # against the direct formula -mean log softmax
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert v_int == pytest.approx(-np.mean(np.log(p[np.arange(6), labels])), rel=1e-12)


@pytest.mark.parametrize("form", ["int", "one-hot"])
def test_softmax_cross_entropy_is_finite_for_logits_of_1000(form):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    labels = np.array([1, 0])
    targets = labels if form == "int" else one_hot(labels, 3, dtype=np.float64)
    value, grad = softmax_cross_entropy(logits, targets)
    # row 0: -log p1 = 2000 + log(1 + e^-1000 + e^-2000) = 2000; row 1: 2000 + log 2
    assert value == pytest.approx((2000 + 2000 + math.log(2)) / 2, rel=1e-15)
    np.testing.assert_allclose(grad, np.array([[1, -1, 0], [-1, 0.5, 0.5]]) / 2, atol=1e-15)
    assert np.isfinite(grad).all()
    # the correct class at +1000: loss exactly 0-ish, gradient 0
    value, grad = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([0]) if form == "int"
                                        else np.array([[1.0, 0.0]]))
    assert value == 0.0 and np.abs(grad).max() == 0.0


def test_softmax_cross_entropy_label_range_errors():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values from 0 to 3"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values from -1 to 2"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 2]))


def test_softmax_cross_entropy_shape_errors():
    with pytest.raises(ShapeError, match=r"logits must be \(batch, classes\), got \(3,\)"):
        softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ShapeError, match=r"2 logits rows but 3 labels"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ShapeError, match=r"labels must be integer classes of shape \(2,\) or rows of "
                       r"shape \(2, 3\), got \(2, 4\) of dtype float64"):
        softmax_cross_entropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ShapeError, match=r"got \(2,\) of dtype float64"):  # float labels: not classes
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


def hand_softmax_cross_entropy(logits, targets):
    """The textbook formula, written out with math.exp/math.log row by row (no NumPy reductions,
    no shared code): p = softmax(z), E = -(1/B) sum_b sum_c t_bc log p_bc, dE/dz = (p - t) / B."""
    batch = len(logits)
    value, grad = 0.0, []
    for z, t in zip(logits.tolist(), targets.tolist()):
        top = max(z)
        total = math.fsum(math.exp(v - top) for v in z)
        logp = [v - top - math.log(total) for v in z]
        value -= math.fsum(tc * lc for tc, lc in zip(t, logp)) / batch
        grad.append([(math.exp(lc) - tc) / batch for tc, lc in zip(t, logp)])
    return value, np.array(grad)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from(["int", "one-hot", "soft"]))
def test_softmax_cross_entropy_value_and_gradient_are_the_hand_formula(batch, classes, seed, form):
    logits = 10 * RNG(seed).standard_normal((batch, classes))
    labels = RNG(seed + 1).integers(0, classes, batch)
    rows = np.eye(classes)[labels]
    if form == "soft":
        rows = RNG(seed + 2).random((batch, classes)) + 1e-3
        rows /= rows.sum(axis=1, keepdims=True)
    value, grad = softmax_cross_entropy(logits, labels if form == "int" else rows)
    expected_value, expected_grad = hand_softmax_cross_entropy(logits, rows)
    assert isinstance(value, float) and value >= 0
    assert value == pytest.approx(expected_value, rel=1e-12, abs=1e-14)
    assert grad.shape == logits.shape and grad.dtype == np.float64
    # p - t cancels where p is close to t = 1: each side then carries about one rounding of 1
    # (2.2e-16) in p, divided by the batch, so the absolute bound is a few of those, not 1e-16
    # (hypothesis found batch=2, classes=6, seed=984: a difference of 1.1e-16 on -8e-08)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=4 * np.finfo(float).eps / batch)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)  # rows of p - t sum to 1 - 1


@pytest.mark.parametrize("loss, make", [
    (mse, lambda rng, shape: (rng.standard_normal(shape), rng.standard_normal(shape))),
    (softmax_cross_entropy, lambda rng, shape: (3 * rng.standard_normal(shape), rng.integers(0, shape[1], shape[0]))),
    (softmax_cross_entropy, lambda rng, shape: (3 * rng.standard_normal(shape), np.eye(shape[1])[rng.integers(0, shape[1], shape[0])])),
    (binary_cross_entropy, lambda rng, shape: (3 * rng.standard_normal(shape), rng.random(shape))),
], ids=["mse", "ce-int", "ce-rows", "bce"])
def test_losses_are_means_over_the_batch_and_their_gradients_scale_with_it(loss, make):
    """A batch repeated twice has the same loss and half the gradient per copy (a sum instead of
    a mean, or a mean over the wrong axis, breaks one of these); a batch's loss is the mean of
    its samples' losses, and its gradient the samples' gradients divided by the batch size."""
    y_pred, y_true = make(RNG(0), (5, 4))
    value, grad = loss(y_pred, y_true)
    value2, grad2 = loss(np.concatenate([y_pred, y_pred]), np.concatenate([y_true, y_true]))
    assert value2 == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(grad2, np.concatenate([grad, grad]) / 2, rtol=1e-13, atol=1e-17)
    singles = [loss(y_pred[i : i + 1], y_true[i : i + 1]) for i in range(5)]
    assert value == pytest.approx(np.mean([v for v, _ in singles]), rel=1e-13)
    np.testing.assert_allclose(grad, np.concatenate([g for _, g in singles]) / 5, rtol=1e-13, atol=1e-17)


# ---------------------------------------------------------------- binary cross-entropy


def test_binary_cross_entropy_hand_formula():
    z = RNG(0).standard_normal((4, 3)) * 3
    t = RNG(1).random((4, 3))
    s = 1 / (1 + np.exp(-z))
    value, grad = binary_cross_entropy(z, t)
    assert value == pytest.approx(-np.mean(t * np.log(s) + (1 - t) * np.log(1 - s)), rel=1e-12)
    np.testing.assert_allclose(grad, (s - t) / t.size, rtol=1e-12)


def test_binary_cross_entropy_is_stable_for_logits_of_1000():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    value, grad = binary_cross_entropy(z, np.array([1.0, 0.0, 0.0, 1.0]))
    assert value == pytest.approx(2000 / 4, rel=1e-15)  # two right (0), two wrong (1000 each)
    np.testing.assert_allclose(grad, np.array([0, 0, 1, -1]) / 4, atol=1e-15)
    value, grad = binary_cross_entropy(np.float32([1000, -1000]), np.float32([1, 0]))
    assert value == 0.0 and grad.dtype == np.float32 and np.abs(grad).max() == 0.0


def test_binary_cross_entropy_shape_error():
    with pytest.raises(ShapeError, match=r"binary_cross_entropy: logits have shape \(4, 1\) but targets have \(4,\)"):
        binary_cross_entropy(np.zeros((4, 1)), np.zeros(4))


# ---------------------------------------------------------------- one_hot


def test_one_hot_rows():
    rows = one_hot(np.array([0, 2, 1]), 3)
    np.testing.assert_array_equal(rows, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert rows.dtype == np.float32
    assert one_hot([1], 2, dtype=np.float64).dtype == np.float64
    assert one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=20), st.integers(10, 12))
def test_one_hot_inverts_argmax(labels, classes):
    rows = one_hot(np.array(labels, dtype=np.int64), classes)
    assert rows.shape == (len(labels), classes)
    np.testing.assert_array_equal(rows.argmax(axis=1), labels)
    np.testing.assert_array_equal(rows.sum(axis=1), 1)


def test_one_hot_errors():
    with pytest.raises(TypeError, match=r"one_hot: labels must be integers, got dtype float64"):
        one_hot(np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match=r"one_hot: labels must be in \[0, 10\), got values from 0 to 10"):
        one_hot(np.array([0, 10]), 10)
    with pytest.raises(ValueError, match=r"got values from -2 to 1"):
        one_hot(np.array([-2, 1]), 10)


def test_softmax_cross_entropy_of_half_floats_averages_as_numpy_does():
    """float16 logits: the mean is summed in float32, as ndarray.mean does."""
    logits = RNG(0).standard_normal((2000, 10)).astype(np.float16) * 3
    labels = RNG(1).integers(0, 10, 2000)
    value, grad = softmax_cross_entropy(logits, labels)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    assert value == float(-logp[np.arange(2000), labels].mean()) and grad.dtype == np.float16


# ---------------------------------------------------------------- decision thresholds


def test_binary_cross_entropy_decides_at_a_logit_of_zero_the_others_at_one_half():
    assert decision_threshold(binary_cross_entropy) == decision_threshold("binary_cross_entropy") == 0.0
    # sigmoid(z) > 0.5 exactly when z > 0: the loss is lowest for target 1 above that logit
    assert binary_cross_entropy(np.array([[1e-3]]), np.array([[1.0]]))[0] < math.log(2)
    assert binary_cross_entropy(np.array([[-1e-3]]), np.array([[1.0]]))[0] > math.log(2)
    for loss in (mse, "mse", softmax_cross_entropy, lambda y, t: mse(y, t)):
        assert decision_threshold(loss) == DEFAULT_THRESHOLD == 0.5


def test_a_custom_loss_on_logits_declares_its_threshold():
    def hinge(y, t):
        return mse(y, t)

    hinge.decision_threshold = -1
    assert decision_threshold(hinge) == -1.0 and isinstance(decision_threshold(hinge), float)
    hinge.decision_threshold = "zero"
    with pytest.raises(ArgumentTypeError, match=r"`decision_threshold` must be a real number, got 'zero'"):
        decision_threshold(hinge)
    hinge.decision_threshold = math.inf
    with pytest.raises(ArgumentError, match=r"`decision_threshold` must be a real number, got inf"):
        decision_threshold(hinge)
    with pytest.raises(ArgumentTypeError, match=r"`loss` must be a function"):
        decision_threshold("hinge")
