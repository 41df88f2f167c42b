"""Losses against hand formulas, at extreme logits, and with bad labels and shapes; their options
(sample and class weights, label smoothing) against PyTorch's numbers and their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.losses import (
    DEFAULT_THRESHOLD,
    accepts,
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


# ---------------------------------------------------------------- weights and label smoothing

# softmax_cross_entropy's options against PyTorch (not a dependency). Recorded with torch 2.13.0
# (CPU) in float64 by this script; PyTorch has no per-sample weights, so those cases weigh its
# per-row losses (reduction="none") by the definition, sum_i s_i l_i / sum_i s_i w_{y_i}:
#
#   import torch, torch.nn.functional as F
#   torch.set_default_dtype(torch.float64)
#   for name, (eps, w, s, _, _) in TORCH_CE.items():
#       z, y = torch.tensor(LOGITS, requires_grad=True), torch.tensor(LABELS)
#       weight = None if w is None else torch.tensor(w)
#       if s is None:
#           loss = F.cross_entropy(z, y, weight=weight, label_smoothing=eps)
#       else:
#           rows = F.cross_entropy(z, y, weight=weight, label_smoothing=eps, reduction="none")
#           cw = torch.ones(4) if weight is None else weight
#           loss = (torch.tensor(s) * rows).sum() / (torch.tensor(s) * cw[y]).sum()
#       loss.backward()
#       print(name, loss.item(), z.grad.tolist())
LOGITS = [[1.5, -0.5, 0.25, 2.0], [-1.0, 0.75, 3.0, -2.5], [0.1, 0.2, -0.3, 0.4],
          [4.0, -1.25, 0.5, 1.0], [-0.6, -2.0, 1.75, 0.3]]
LABELS = [3, 2, 0, 1, 2]
CLASS_WEIGHT = [0.5, 2.0, 1.0, 0.25]
SAMPLE_WEIGHT = [1.0, 0.5, 2.0, 0.0, 3.0]
TORCH_CE = {  # name: (label_smoothing, class_weight, sample_weight, loss, gradient)
    "smoothing": (0.1, None, None, 1.632747490643892, [
        [0.06013466990265221, 0.003815018999798709, 0.013661395369014909, -0.07761108427146585],
        [-0.0017519751129752837, 0.013691092706605634, -0.007663849906838239, -0.0042752676867920895],
        [-0.1365192623489477, 0.04857950133879809, 0.027497610294095125, 0.060442150716054494],
        [0.17929239599815852, -0.18403292226117043, 0.0005651481437741494, 0.004175378119237775],
        [0.00909267503778495, -0.0015247891218665665, -0.037230273283378114, 0.02966238736745974]]),
    "class_weight": (0.0, CLASS_WEIGHT, None, 2.515907476552857, [
        [0.01714070260596111, 0.0023197418420522918, 0.004910893518161818, -0.024371337966175223],
        [0.003418973565289175, 0.019674834428005928, -0.023856684112461318, 0.0007628761191662217],
        [-0.07974698018365668, 0.028199737546735833, 0.017104005417944802, 0.03444323721897605],
        [0.3879839915750706, -0.4190166784445693, 0.011716101355313998, 0.019316585514184786],
        [0.014834394776615734, 0.0036581167138246664, -0.05497923503513487, 0.03648672354469446]]),
    "class_weight_smoothing": (0.2, CLASS_WEIGHT, None, 2.5214261438693697, [
        [0.021304931144502878, -0.017457031723766316, -0.002914430836322866, -0.0009334685844136997],
        [-0.0018869214990137816, -0.0016237325812915118, 0.005388892859997087, -0.001878238779691777],
        [-0.05949217540000714, 0.012082060038467237, 0.009570890576611459, 0.03783922478492843],
        [0.3414975345754825, -0.3560751037282549, -5.5050203161797955e-05, 0.014632619355934235],
        [0.009385806947171197, -0.017440241324045508, -0.025344626176143047, 0.03339906055301736]]),
    "sample_weight": (0.0, None, SAMPLE_WEIGHT, 0.680659041542139, [
        [0.05010359223280939, 0.006780783845999007, 0.014354919514626852, -0.07123929559343527],
        [0.0012492403411633525, 0.0071888818102329366, -0.008716865348783943, 0.00027874319738765795],
        [-0.23310655745991957, 0.08243000205968937, 0.04999632352937712, 0.10068023187085307],
        [0.0, -0.0, 0.0, 0.0],
        [0.03252155777950373, 0.008019717411077154, -0.12053139988471875, 0.07999012469413787]]),
    "all": (0.2, CLASS_WEIGHT, SAMPLE_WEIGHT, 1.005714387000453, [
        [0.021304931144502878, -0.017457031723766316, -0.002914430836322866, -0.0009334685844136997],
        [-0.0009434607495068908, -0.0008118662906457559, 0.0026944464299985434, -0.0009391193898458885],
        [-0.11898435080001428, 0.024164120076934473, 0.019141781153222917, 0.07567844956985686],
        [0.0, -0.0, 0.0, 0.0],
        [0.028157420841513594, -0.05232072397213653, -0.07603387852842912, 0.1001971816590521]]),
}


@pytest.mark.parametrize("name", list(TORCH_CE))
@pytest.mark.parametrize("form", ["int", "one-hot"])
def test_weighted_smoothed_cross_entropy_matches_pytorch(name, form):
    eps, w, s, want_value, want_grad = TORCH_CE[name]
    labels = np.array(LABELS) if form == "int" else one_hot(np.array(LABELS), 4, dtype=np.float64)
    value, grad = softmax_cross_entropy(np.array(LOGITS), labels, label_smoothing=eps,
                                        class_weight=w, sample_weight=s)
    assert isinstance(value, float) and value == pytest.approx(want_value, rel=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-13, atol=1e-17)


def test_sample_weights_of_mse_and_bce_by_hand():
    y, t = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [5.0, 4.0], [1.0, 1.0]])
    value, grad = mse(y, t, sample_weight=[2.0, 1.0, 0.0])
    assert value == (2 * (1 + 0) + 1 * (4 + 1)) / (3 * 2)  # per row: the mean of its 2 elements
    np.testing.assert_array_equal(grad, [[2 * 2 * 1 / 6, 0], [2 * -2 / 6, 2 * 1 / 6], [0, 0]])
    z, targets = np.array([[0.0], [2.0]]), np.array([[1.0], [0.0]])
    value, grad = binary_cross_entropy(z, targets, sample_weight=np.array([3.0, 1.0]))
    losses = [math.log(2), 2 + math.log1p(math.exp(-2))]
    assert value == pytest.approx((3 * losses[0] + losses[1]) / 4, rel=1e-15)
    np.testing.assert_allclose(grad, [[3 * (0.5 - 1) / 4], [1 / (1 + math.exp(-2)) / 4]], rtol=1e-15)


CASES = {  # loss, (y_pred, y_true) of 4 rows
    "mse": (mse, lambda rng: (rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))),
    "ce-int": (softmax_cross_entropy, lambda rng: (3 * rng.standard_normal((4, 5)), rng.integers(0, 5, 4))),
    "ce-rows": (softmax_cross_entropy, lambda rng: (3 * rng.standard_normal((4, 5)),
                                                    rng.dirichlet(np.ones(5), 4))),
    "bce": (binary_cross_entropy, lambda rng: (3 * rng.standard_normal((4, 2)), rng.random((4, 2)))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_row_of_weight_k_is_that_row_k_times_in_full_batch_training(name):
    """loss -> backward -> sgd_step on the full batch: weights (2, 0, 1, 3) train exactly as the
    batch with row 0 twice, row 1 left out and row 3 three times (to rounding)."""
    loss, make = CASES[name]
    model = pn.Dense(3, make(RNG(0))[0].shape[1], dtype="float64")
    x = RNG(1).standard_normal((4, 3))
    _, targets = make(RNG(2))
    weights, copies = np.array([2.0, 0.0, 1.0, 3.0]), [0, 0, 2, 3, 3, 3]
    weighted = repeated = model.init(RNG(3))
    for _ in range(5):
        for params, xs, ts, opts in ((weighted, x, targets, {"sample_weight": weights}),
                                     (repeated, x[copies], targets[copies], {})):
            out, cache = model.forward(params, xs)
            value, dy = loss(out, ts, **opts)
            new = pn.sgd_step(params, model.param_grads(params, cache, dy), 0.5)
            if opts:
                weighted, weighted_value = new, value
            else:
                repeated, repeated_value = new, value
        assert weighted_value == pytest.approx(repeated_value, rel=1e-13)
    for a, b in zip(pn.tree_leaves(weighted), pn.tree_leaves(repeated)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert not np.allclose(weighted["w"], model.init(RNG(3))["w"])


@pytest.mark.parametrize("name", list(CASES))
def test_unit_weights_and_no_smoothing_are_the_plain_loss(name):
    loss, make = CASES[name]
    y_pred, y_true = make(RNG(4))
    value, grad = loss(y_pred, y_true)
    options = [{"sample_weight": np.ones(4)}]
    if loss is softmax_cross_entropy:
        options += [{"class_weight": [1.0] * 5}, {"label_smoothing": 0.0}, {"label_smoothing": 0}]
    for kwargs in options:
        v, g = loss(y_pred, y_true, **kwargs)
        assert v == pytest.approx(value, rel=1e-14)
        np.testing.assert_allclose(g, grad, rtol=1e-13, atol=1e-17)
    assert loss(y_pred, y_true, sample_weight=np.full(4, 7.5))[0] == pytest.approx(value, rel=1e-14)


def test_weights_keep_float32_and_a_batch_of_weight_zero_counts_for_nothing():
    z = RNG(0).standard_normal((3, 4)).astype(np.float32)
    for kwargs in ({"sample_weight": np.ones(3)}, {"label_smoothing": 0.1}, {"class_weight": np.ones(4)}):
        assert softmax_cross_entropy(z, np.array([0, 1, 2]), **kwargs)[1].dtype == np.float32
    assert mse(z, z * 0, sample_weight=[1, 2, 3])[1].dtype == np.float32
    for loss, target in ((softmax_cross_entropy, np.array([0, 1, 2])), (mse, z * 0), (binary_cross_entropy, z * 0)):
        value, grad = loss(z, target, sample_weight=np.zeros(3))
        assert value == 0.0 and grad.dtype == np.float32 and not grad.any()
    value, grad = softmax_cross_entropy(z, np.array([0, 1, 1]), class_weight=[1.0, 0.0, 5.0, 5.0])
    np.testing.assert_array_equal(grad[1:], 0 * grad[1:])  # rows of a class of weight 0 count for nothing


def test_full_label_smoothing_targets_the_uniform_distribution():
    z = RNG(0).standard_normal((3, 4))
    value, grad = softmax_cross_entropy(z, np.array([0, 1, 2]), label_smoothing=1.0)
    uniform = np.full((3, 4), 0.25)
    assert value == pytest.approx(softmax_cross_entropy(z, uniform)[0], rel=1e-14)
    np.testing.assert_allclose(grad, softmax_cross_entropy(z, uniform)[1], rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("call, error, message", [
    (lambda: mse(np.zeros((3, 2)), np.zeros((3, 2)), sample_weight=np.ones(2)), ShapeError,
     r"mse: `sample_weight` must have one weight per row, shape \(3,\), got shape \(2,\)"),
    (lambda: mse(np.zeros(()), np.zeros(()), sample_weight=np.ones(1)), ShapeError,
     r"mse: `sample_weight` needs rows \(a batch axis first\), got a 0-d y_pred"),
    (lambda: binary_cross_entropy(np.zeros((2, 1)), np.zeros((2, 1)), sample_weight=[1.0, -1.0]), ArgumentError,
     r"binary_cross_entropy: `sample_weight` must be finite numbers >= 0, got values from -1.0 to 1.0"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], sample_weight=[np.nan, 1.0]), ArgumentError,
     r"`sample_weight` must be finite numbers >= 0"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], sample_weight=["a", "b"]), ArgumentTypeError,
     r"softmax_cross_entropy: `sample_weight` must be numeric, got an array of dtype <U1"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], class_weight=[1.0, 2.0]), ShapeError,
     r"`class_weight` must have one weight per class, shape \(3,\), got shape \(2,\)"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], class_weight=[1.0, np.inf, 1.0]), ArgumentError,
     r"`class_weight` must be finite numbers >= 0, got values from 1.0 to inf"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=1.5), ArgumentError,
     r"`label_smoothing` must be a real number in \[0, 1\], got 1.5"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=None), ArgumentTypeError,
     r"`label_smoothing` must be a real number in \[0, 1\], got None"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), [0, 3], label_smoothing=0.1), ArgumentError,
     r"labels must be in \[0, 3\), got values from 0 to 3"),
])
def test_bad_weights_and_smoothing_are_refused_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_accepts_says_which_options_a_loss_takes():
    assert all(accepts(loss, "sample_weight") for loss in (mse, "mse", softmax_cross_entropy, binary_cross_entropy))
    assert accepts(softmax_cross_entropy, "class_weight") and not accepts(mse, "class_weight")
    assert not accepts(lambda y, t: mse(y, t), "sample_weight")
    assert accepts(lambda y, t, **options: mse(y, t, **options), "sample_weight")
    assert not accepts(np.add, "sample_weight")  # no signature to read: not known to take it
