"""Classification metrics on model outputs: pure functions, no I/O."""

from __future__ import annotations

from typing import Any

import numpy as np

from purenn.errors import ArgumentError, ShapeError


def class_predictions(y_pred: Any) -> np.ndarray:
    """Predicted classes: argmax over the last axis, or ``y > 0.5`` for a single output."""
    y = np.asarray(y_pred)
    y = y.reshape(y.shape[0], -1)
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else y.argmax(axis=1)


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


def accuracy(y_pred: Any, y_true: Any) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    pred, true = class_predictions(y_pred), class_labels(y_true)
    if pred.shape != true.shape:
        raise ShapeError(f"accuracy: {pred.shape[0]} predictions but {true.shape[0]} labels")
    return float(np.mean(pred == true)) if pred.size else float("nan")


def confusion_matrix(y_pred: Any, y_true: Any, num_classes: int | None = None) -> np.ndarray:
    """``m[i, j]`` counts samples of true class i predicted as class j."""
    pred, true = class_predictions(y_pred), class_labels(y_true)
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
