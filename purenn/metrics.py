"""Classification metrics on model outputs: pure functions, no I/O.

Predictions come in three forms (:func:`class_predictions`): one output per class ``(n, k)``,
``k > 1`` (the class is the argmax); one output per sample ``(n, 1)`` (class 1 when it is above
``threshold``: 0.5 for probabilities, 0 for logits, see :func:`purenn.losses.decision_threshold`);
or the class labels themselves, 1-D integers (or booleans). A 1-D float array is refused: it
could be one output per sample or labels stored as floats, and a metric must not guess.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from purenn.errors import ArgumentError, ShapeError
from purenn.validation import check, real, to_float

__all__ = ["accuracy", "confusion_matrix"]

_THRESHOLD = real()  # any finite real number


def class_predictions(y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Predicted classes ``(n,)`` of int64 from model outputs or labels.

    ``(n, k)`` with ``k > 1``: the argmax of each row. ``(n, 1)``: 1 where the output is
    ``> threshold``, else 0. 1-D integers or booleans: the labels themselves. Higher dimensions
    are flattened per sample first (``(n, 1, 1)`` is one output). A 1-D float array is an
    :class:`~purenn.errors.ArgumentError` (ambiguous: reshape it to ``(n, 1)`` or pass integers).
    """
    threshold = check("threshold", threshold, _THRESHOLD, to_float)
    y = np.asarray(y_pred)
    if y.ndim == 1:
        if y.dtype.kind in "iub":
            return y.astype(np.int64)
        raise ArgumentError(
            f"1-D predictions of dtype {y.dtype} are ambiguous: for one output per sample, pass "
            f"them as a column (y_pred.reshape(-1, 1), thresholded at {threshold:g}); for class "
            "labels, pass integers (e.g. outputs.argmax(axis=1), or y_pred.astype(int))"
        )
    if y.ndim == 0 or (y.size == 0 and y.shape[0] > 0):
        raise ShapeError(f"predictions must have one row of outputs per sample, got shape {y.shape}")
    y = y.reshape(y.shape[0], -1)
    return (y[:, 0] > threshold).astype(np.int64) if y.shape[1] == 1 else y.argmax(axis=1)


def is_class_target(y_true: Any) -> bool:
    """Whether ``y_true`` names classes: integer (or boolean) labels, one-hot rows or 0/1 values."""
    t = np.asarray(y_true)
    return t.dtype.kind in "iub" or bool(np.all((t == 0) | (t == 1)))


def class_labels(y_true: Any) -> np.ndarray:
    """Integer labels from integer labels, one-hot rows, or 0/1 targets."""
    t = np.asarray(y_true)
    if not is_class_target(t):
        raise ArgumentError(
            "class labels must be integers, one-hot rows or 0/1 values; got targets of dtype "
            f"{t.dtype} with other values (accuracy has no meaning for them)"
        )
    if t.ndim == 1 and t.dtype.kind in "iub":
        return t.astype(np.int64)
    t = t.reshape(t.shape[0], -1)
    return (t[:, 0] > 0.5).astype(np.int64) if t.shape[1] == 1 else t.argmax(axis=1)


def accuracy(y_pred: Any, y_true: Any, *, threshold: float = 0.5) -> float:
    """Fraction of samples whose predicted class (:func:`class_predictions`, a single output
    compared with ``threshold``) equals the true class (:func:`class_labels`)."""
    pred, true = class_predictions(y_pred, threshold), class_labels(y_true)
    if pred.shape != true.shape:
        raise ShapeError(f"accuracy: {pred.shape[0]} predictions but {true.shape[0]} labels")
    return float(np.mean(pred == true)) if pred.size else float("nan")


def confusion_matrix(y_pred: Any, y_true: Any, num_classes: int | None = None, *,
                     threshold: float = 0.5) -> np.ndarray:
    """``m[i, j]`` counts samples of true class i predicted as class j (predictions and labels
    as for :func:`accuracy`); ``num_classes`` defaults to the largest class seen plus one."""
    pred, true = class_predictions(y_pred, threshold), class_labels(y_true)
    if pred.shape != true.shape:
        raise ShapeError(f"confusion_matrix: {pred.shape[0]} predictions but {true.shape[0]} labels")
    k = num_classes or int(max(pred.max(initial=0), true.max(initial=0)) + 1)
    if pred.size and (max(pred.max(), true.max()) >= k or min(pred.min(), true.min()) < 0):
        raise ArgumentError(
            f"confusion_matrix: classes must be in [0, {k}); got predictions in "
            f"[{pred.min()}, {pred.max()}] and labels in [{true.min()}, {true.max()}]"
        )
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (true, pred), 1)
    return m
