"""The loss registry: every built-in loss, and its keyword options, with a strategy of valid inputs.

``LOSS_CASES[name]`` is ``(loss, strategy)``; the strategy draws ``(y_pred, y_true)`` or
``(y_pred, y_true, options)``. A case named ``loss[option, ...]`` draws those keyword options.
tests/test_gradients.py checks every case against finite differences, and every keyword option of
every loss against the case names; tests/test_registries.py fails while a loss has no case.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from purenn.losses import binary_cross_entropy, mse, one_hot, softmax_cross_entropy

from layer_strategies import normal, seeds, shapes, sizes


@st.composite
def mse_case(draw: st.DrawFn):
    shape, s = draw(shapes), draw(seeds)
    return normal(s, shape), normal(s + 1, shape)


@st.composite
def _logits_and_classes(draw: st.DrawFn):
    batch, classes = draw(sizes), draw(st.integers(1, 5))
    logits = 4 * normal(draw(seeds), (batch, classes))
    labels = np.random.default_rng(draw(seeds)).integers(0, classes, batch)
    return logits, labels, classes


@st.composite
def ce_int_case(draw: st.DrawFn):
    logits, labels, _ = draw(_logits_and_classes())
    return logits, labels


@st.composite
def ce_rows_case(draw: st.DrawFn):
    """One-hot rows, or soft probability rows (label smoothing, distillation)."""
    logits, labels, classes = draw(_logits_and_classes())
    rows = one_hot(labels, classes, dtype=np.float64)
    if draw(st.booleans()):
        soft = np.random.default_rng(draw(seeds)).random(rows.shape)
        rows = soft / soft.sum(axis=1, keepdims=True)
    return logits, rows


@st.composite
def bce_case(draw: st.DrawFn):
    shape, s = draw(shapes), draw(seeds)
    targets = np.random.default_rng(s + 1).random(shape)
    if draw(st.booleans()):
        targets = np.round(targets)
    return 4 * normal(s, shape), targets


def _row_weights(draw: st.DrawFn, batch: int) -> np.ndarray:
    """Weights >= 0 for ``batch`` rows, some of them 0 now and then, all of them 0 rarely."""
    weights = 3 * np.random.default_rng(draw(seeds)).random(batch)
    zeros = draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    return np.where(zeros, 0.0, weights)


@st.composite
def with_options(draw: st.DrawFn, case: Any, *options: str):
    """A case of a loss, with keyword options drawn for it: ``sample_weight`` (per row),
    ``class_weight`` (per class), ``label_smoothing`` (in [0, 1])."""
    y_pred, y_true = draw(case)
    kwargs: dict[str, Any] = {}
    if "sample_weight" in options:
        kwargs["sample_weight"] = _row_weights(draw, y_pred.shape[0])
    if "class_weight" in options:
        kwargs["class_weight"] = _row_weights(draw, y_pred.shape[1]) + draw(st.sampled_from([0.0, 0.5]))
    if "label_smoothing" in options:
        kwargs["label_smoothing"] = draw(st.sampled_from([0.05, 0.3, 1.0]))
    return y_pred, y_true, kwargs


@st.composite
def rows_case(draw: st.DrawFn):
    """``mse_case`` and ``bce_case`` with a batch axis (per-row weights need one)."""
    shape, s = (draw(sizes), *draw(st.lists(sizes, max_size=2))), draw(seeds)
    targets = np.random.default_rng(s + 1).random(shape)
    return 4 * normal(s, shape), targets


CE = softmax_cross_entropy
LOSS_CASES = {
    "mse": (mse, mse_case()),
    "mse[sample_weight]": (mse, with_options(rows_case(), "sample_weight")),
    "softmax_cross_entropy[int labels]": (CE, ce_int_case()),
    "softmax_cross_entropy[rows]": (CE, ce_rows_case()),
    "softmax_cross_entropy[int labels, label_smoothing]": (CE, with_options(ce_int_case(), "label_smoothing")),
    "softmax_cross_entropy[rows, label_smoothing]": (CE, with_options(ce_rows_case(), "label_smoothing")),
    "softmax_cross_entropy[int labels, class_weight]": (CE, with_options(ce_int_case(), "class_weight")),
    "softmax_cross_entropy[rows, class_weight]": (CE, with_options(ce_rows_case(), "class_weight")),
    "softmax_cross_entropy[int labels, sample_weight]": (CE, with_options(ce_int_case(), "sample_weight")),
    "softmax_cross_entropy[int labels, label_smoothing, class_weight, sample_weight]": (
        CE, with_options(ce_int_case(), "label_smoothing", "class_weight", "sample_weight")),
    "softmax_cross_entropy[rows, label_smoothing, class_weight, sample_weight]": (
        CE, with_options(ce_rows_case(), "label_smoothing", "class_weight", "sample_weight")),
    "binary_cross_entropy": (binary_cross_entropy, bce_case()),
    "binary_cross_entropy[sample_weight]": (binary_cross_entropy, with_options(rows_case(), "sample_weight")),
}
NOT_LOSSES = {"one_hot", "as_loss", "decision_threshold", "accepts"}  # public helpers in purenn.losses that are not (y_pred, y_true) losses
