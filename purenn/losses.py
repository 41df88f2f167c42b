"""Losses: pure functions ``(y_pred, y_true) -> (value, dE/dY)``.

``value`` is a Python float, the mean over the batch; ``dE/dY`` has ``y_pred``'s shape and dtype.

A loss that works on logits says where a single output's decision lies with an attribute
``decision_threshold`` (a real number): ``binary_cross_entropy``'s is 0 (sigmoid(z) > 0.5 exactly
when z > 0). :func:`decision_threshold` reads it, 0.5 for a loss without one (``mse`` on
probabilities, any custom loss); ``fit``'s validation accuracy and ``evaluate`` use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.validation import as_float_array, check, real, to_float

Loss = Callable[[Any, Any], tuple[float, np.ndarray]]


def mse(y_pred: Any, y_true: Any) -> tuple[float, np.ndarray]:
    """Mean squared error, the tutorial's: E = mean((Y* - Y)^2), dE/dY = 2 (Y - Y*) / n.

    ``n`` is the number of elements of ``y_pred``; shapes must match exactly.
    """
    if type(y_pred) is not np.ndarray or y_pred.dtype.kind != "f":  # fast path: float arrays
        y_pred = as_float_array(y_pred, "mse", None, "`y_pred`")
    if type(y_true) is not np.ndarray or y_true.dtype != y_pred.dtype:
        y_true = as_float_array(y_true, "mse", y_pred.dtype, "`y_true`")
    if y_pred.shape != y_true.shape:
        raise ShapeError(
            f"mse: y_pred has shape {y_pred.shape} but y_true has {y_true.shape}; they must match "
            "(one-hot encode integer labels with purenn.one_hot)"
        )
    diff = y_pred - y_true
    sq = diff * diff
    # np.mean's own arithmetic (a pairwise sum, then one division) without its Python overhead
    value = np.add.reduce(sq, axis=None) / sq.size if sq.size else np.mean(sq)
    return float(value), diff * (2.0 / diff.size)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    # z.max / .sum without their Python wrappers (the same reductions): this runs every step
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))


def softmax_cross_entropy(logits: Any, labels: Any) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(logits) against labels, averaged over the batch.

    ``logits``: ``(batch, classes)``. ``labels``: integer classes ``(batch,)``, or one-hot /
    probability rows ``(batch, classes)``. With p = softmax(logits) and t the target rows:
    E = -mean_b sum_c t_bc log p_bc,  dE/dlogits = (p - t) / batch. Stable for any finite logits.
    """
    z = logits
    if type(z) is not np.ndarray or z.dtype.kind != "f":
        z = as_float_array(logits, "softmax_cross_entropy", None, "`logits`")
    if z.ndim != 2:
        raise ShapeError(f"softmax_cross_entropy: logits must be (batch, classes), got {z.shape}")
    batch, classes = z.shape
    if type(labels) is not np.ndarray:
        labels = np.asarray(labels)
    logp = _log_softmax(z)
    grad = np.exp(logp)
    if labels.ndim == 1 and labels.dtype.kind in "iub":
        if labels.shape[0] != batch:
            raise ShapeError(f"softmax_cross_entropy: {batch} logits rows but {labels.shape[0]} labels")
        if labels.size and (np.minimum.reduce(labels) < 0 or np.maximum.reduce(labels) >= classes):
            raise ArgumentError(
                f"softmax_cross_entropy: labels must be in [0, {classes}), "
                f"got values from {labels.min()} to {labels.max()}"
            )
        rows = np.arange(batch)
        # .mean()'s arithmetic without its wrapper: float16 summed in float32, then divided
        half = logp.dtype == np.float16
        picked = np.add.reduce(logp[rows, labels], dtype=np.float32 if half else None)
        value = -(np.float16 if half else picked.dtype.type)(picked / np.intp(batch))
        grad[rows, labels] -= 1
    else:
        t = as_float_array(labels, "softmax_cross_entropy", z.dtype, "`labels`")
        if t.shape != z.shape:
            raise ShapeError(
                f"softmax_cross_entropy: labels must be integer classes of shape ({batch},) or "
                f"rows of shape {z.shape}, got {t.shape} of dtype {t.dtype}"
            )
        value = -(t * logp).sum(axis=-1).mean()
        grad -= t
    grad /= batch
    return float(value), grad


def binary_cross_entropy(logits: Any, targets: Any) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], mean over elements.

    E = mean(max(z, 0) - z t + log(1 + exp(-|z|))),  dE/dz = (sigmoid(z) - t) / n. Stable for
    any finite logits.
    """
    z = as_float_array(logits, "binary_cross_entropy", None, "`logits`")
    t = as_float_array(targets, "binary_cross_entropy", z.dtype, "`targets`")
    if z.shape != t.shape:
        raise ShapeError(f"binary_cross_entropy: logits have shape {z.shape} but targets have {t.shape}")
    value = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    grad = (0.5 * (1 + np.tanh(0.5 * z)) - t) / z.size
    return float(value), grad.astype(z.dtype, copy=False)


binary_cross_entropy.decision_threshold = 0.0  # type: ignore[attr-defined]  # it works on logits


def one_hot(labels: Any, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer labels ``(n,)`` -> rows ``(n, num_classes)`` with a single 1 (the tutorial's
    ``to_categorical``)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ArgumentTypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ArgumentError(
            f"one_hot: labels must be in [0, {num_classes}), got values from {labels.min()} to {labels.max()}"
        )
    return np.eye(num_classes, dtype=dtype)[labels]


#: The built-in losses by name (``fit(loss="mse")``, presets, run records).
LOSSES: dict[str, Loss] = {
    "mse": mse,
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
}


def as_loss(loss: Any) -> Loss:
    """``loss`` itself if it is callable, the built-in loss of that name if it is a string."""
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    if callable(loss) and not isinstance(loss, str):
        return loss
    raise ArgumentTypeError(
        f"`loss` must be a function (y_pred, y_true) -> (value, dE/dY) or the name of a built-in "
        f"loss, one of {tuple(LOSSES)}; got {loss!r:.80}"
    )


#: A single output's decision threshold when its loss does not declare one: 0.5, for outputs
#: that are probabilities (or 0/1 regression targets).
DEFAULT_THRESHOLD = 0.5


def decision_threshold(loss: Any) -> float:
    """Where a single output of a model trained with ``loss`` (a function or a built-in's name)
    divides class 0 from class 1: the loss's ``decision_threshold`` attribute (0.0 for
    ``binary_cross_entropy``, whose outputs are logits), else :data:`DEFAULT_THRESHOLD` (0.5).
    Outputs with one column per class do not need it (their class is the argmax)."""
    value = getattr(as_loss(loss), "decision_threshold", DEFAULT_THRESHOLD)
    return float(check("decision_threshold", value, real(), to_float))
