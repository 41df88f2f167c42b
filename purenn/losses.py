"""Losses: pure functions ``(y_pred, y_true) -> (value, dE/dY)``.

``value`` is a Python float, the mean over the batch; ``dE/dY`` has ``y_pred``'s shape and dtype.

**Weights** (keyword options; without them every loss computes what it always did, bit for bit):

- ``sample_weight`` (every built-in loss): one weight >= 0 per row, shape ``(batch,)``. The loss
  is the weighted mean ``sum_i s_i l_i / sum_i s_i`` (``l_i`` the row's loss: for ``mse`` and
  ``binary_cross_entropy`` the mean over the row's elements), so a row of weight 2 counts as that
  row twice: full-batch training with it equals training with the row duplicated. (Keras divides
  by the batch size instead; the two differ by a factor, which a learning rate absorbs.)
- ``class_weight`` (``softmax_cross_entropy``): one weight >= 0 per class, PyTorch's
  ``CrossEntropyLoss(weight=)``: each row counts ``w[its class]``, and the loss is divided by the
  sum of those weights (``sum_i w_{y_i} l_i / sum_i w_{y_i}`` without smoothing). For probability
  rows ``t`` a row's weight is ``sum_c w_c t_ic`` (the same for one-hot rows as for their integer
  labels; PyTorch divides probability rows by the batch size instead).
- Both together: a row's weight is ``s_i`` times its class weight. Weights that sum to 0 give a
  loss of 0 and a zero gradient: the batch counts for nothing.

``label_smoothing`` (``softmax_cross_entropy``) is PyTorch's: the target rows become
``(1 - eps) t + eps / classes``, and with class weights the smoothed part is weighted per class, as
PyTorch does. :func:`accepts` says whether a loss takes an option (``fit`` refuses weights for a
custom loss that does not).

A loss that works on logits says where a single output's decision lies with an attribute
``decision_threshold`` (a real number): ``binary_cross_entropy``'s is 0 (sigmoid(z) > 0.5 exactly
when z > 0). :func:`decision_threshold` reads it, 0.5 for a loss without one (``mse`` on
probabilities, any custom loss); ``fit``'s validation accuracy and ``evaluate`` use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.validation import as_float_array, check, real, to_float

#: What ``purenn`` re-exports from here; ``LOSSES``, ``as_loss``, ``accepts`` and
#: ``decision_threshold`` are for ``fit`` and recipes, imported from this module.
__all__ = ["binary_cross_entropy", "mse", "one_hot", "softmax_cross_entropy"]

Loss = Callable[[Any, Any], tuple[float, np.ndarray]]


def mse(y_pred: Any, y_true: Any, *, sample_weight: Any = None) -> tuple[float, np.ndarray]:
    """Mean squared error, the tutorial's: E = mean((Y* - Y)^2), dE/dY = 2 (Y - Y*) / n.

    ``n`` is the number of elements of ``y_pred``; shapes must match exactly. ``sample_weight``
    (see the module's docstring): E = sum_i s_i sum_j d_ij^2 / (m sum_i s_i), m elements per row.
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
    if sample_weight is not None:
        return _weighted_mean("mse", diff * diff, 2.0 * diff, sample_weight)
    sq = diff * diff
    # np.mean's own arithmetic (a pairwise sum, then one division) without its Python overhead
    value = np.add.reduce(sq, axis=None) / sq.size if sq.size else np.mean(sq)
    return float(value), diff * (2.0 / diff.size)


def _weights(who: str, name: str, weights: Any, size: int, dtype: Any, what: str) -> np.ndarray:
    """``weights`` as a float array of shape ``(size,)`` in ``dtype``, each finite and >= 0."""
    w = as_float_array(weights, who, dtype, f"`{name}`")
    if w.shape != (size,):
        raise ShapeError(f"{who}: `{name}` must have one weight per {what}, shape ({size},), "
                         f"got shape {w.shape}")
    if w.size and not (np.all(np.isfinite(w)) and np.minimum.reduce(w) >= 0):
        raise ArgumentError(f"{who}: `{name}` must be finite numbers >= 0, got values from "
                            f"{np.min(w)} to {np.max(w)}")
    return w


def _weighted_mean(who: str, losses: np.ndarray, grads: np.ndarray,
                   sample_weight: Any) -> tuple[float, np.ndarray]:
    """sum_i s_i mean_j losses_ij / sum_i s_i, and its gradient from ``grads`` (d losses / dY, element
    by element): ``(value, grads * s_i / (m sum_i s_i))``, ``m`` elements per row."""
    if losses.ndim == 0:
        raise ShapeError(f"{who}: `sample_weight` needs rows (a batch axis first), got a 0-d y_pred")
    batch = losses.shape[0]
    s = _weights(who, "sample_weight", sample_weight, batch, losses.dtype, "row")
    total = float(np.add.reduce(s, dtype=np.float64)) * (losses.size // batch if batch else 0)
    if total == 0:
        return 0.0, np.zeros_like(grads)
    rows = s.reshape((batch,) + (1,) * (losses.ndim - 1))
    value = float(np.add.reduce((losses * rows).reshape(-1), dtype=np.float64)) / total
    grad = grads * rows
    grad *= grad.dtype.type(1.0 / total)
    return value, grad


def _log_softmax(z: np.ndarray) -> np.ndarray:
    # z.max / .sum without their Python wrappers (the same reductions): this runs every step
    shifted = z - np.maximum.reduce(z, axis=-1, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))


def softmax_cross_entropy(logits: Any, labels: Any, *, label_smoothing: float = 0.0,
                          class_weight: Any = None, sample_weight: Any = None) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(logits) against labels, averaged over the batch.

    ``logits``: ``(batch, classes)``. ``labels``: integer classes ``(batch,)``, or one-hot /
    probability rows ``(batch, classes)``. With p = softmax(logits) and t the target rows:
    E = -mean_b sum_c t_bc log p_bc,  dE/dlogits = (p - t) / batch. Stable for any finite logits.

    Options (the module's docstring; PyTorch's ``CrossEntropyLoss(weight=, label_smoothing=)``):
    ``label_smoothing`` eps in [0, 1], ``class_weight`` ``(classes,)``, ``sample_weight``
    ``(batch,)``. With a_bc = s_b w_c t'_bc (t' = (1 - eps) t + eps / classes) and the rows'
    weights r_b = s_b sum_c w_c t_bc (s_b = 1 without sample weights; r_b = s_b without class
    weights): E = -sum_bc a_bc log p_bc / sum_b r_b,  dE/dz_b = (p_b sum_c a_bc - a_b) / sum_b r_b.
    """
    z = logits
    if type(z) is not np.ndarray or z.dtype.kind != "f":
        z = as_float_array(logits, "softmax_cross_entropy", None, "`logits`")
    if z.ndim != 2:
        raise ShapeError(f"softmax_cross_entropy: logits must be (batch, classes), got {z.shape}")
    batch, classes = z.shape
    if type(labels) is not np.ndarray:
        labels = np.asarray(labels)
    integer = labels.ndim == 1 and labels.dtype.kind in "iub"
    if integer:
        if labels.shape[0] != batch:
            raise ShapeError(f"softmax_cross_entropy: {batch} logits rows but {labels.shape[0]} labels")
        if labels.size and (np.minimum.reduce(labels) < 0 or np.maximum.reduce(labels) >= classes):
            raise ArgumentError(
                f"softmax_cross_entropy: labels must be in [0, {classes}), "
                f"got values from {labels.min()} to {labels.max()}"
            )
    if type(label_smoothing) is not float or label_smoothing != 0.0:
        label_smoothing = check("label_smoothing", label_smoothing, _SMOOTHING, to_float)
    if label_smoothing or class_weight is not None or sample_weight is not None:
        t = np.eye(classes, dtype=z.dtype)[labels.astype(np.intp)] if integer else _target_rows(labels, z)
        return _weighted_cross_entropy(z, t, label_smoothing, class_weight, sample_weight)
    logp = _log_softmax(z)
    grad = np.exp(logp)
    if integer:
        rows = np.arange(batch)
        # .mean()'s arithmetic without its wrapper: float16 summed in float32, then divided
        half = logp.dtype == np.float16
        picked = np.add.reduce(logp[rows, labels], dtype=np.float32 if half else None)
        value = -(np.float16 if half else picked.dtype.type)(picked / np.intp(batch))
        grad[rows, labels] -= 1
    else:
        t = _target_rows(labels, z)
        value = -(t * logp).sum(axis=-1).mean()
        grad -= t
    grad /= batch
    return float(value), grad


_SMOOTHING = real(0.0, 1.0, high_open=False)


def _target_rows(labels: Any, z: np.ndarray) -> np.ndarray:
    t = as_float_array(labels, "softmax_cross_entropy", z.dtype, "`labels`")
    if t.shape != z.shape:
        raise ShapeError(
            f"softmax_cross_entropy: labels must be integer classes of shape ({z.shape[0]},) or "
            f"rows of shape {z.shape}, got {t.shape} of dtype {t.dtype}"
        )
    return t


def _weighted_cross_entropy(z: np.ndarray, t: np.ndarray, smoothing: float, class_weight: Any,
                            sample_weight: Any) -> tuple[float, np.ndarray]:
    """softmax_cross_entropy with its options (the formulas are in its docstring)."""
    who = "softmax_cross_entropy"
    batch, classes = z.shape
    a = t * (1.0 - smoothing) + smoothing / classes if smoothing else t.copy()
    if class_weight is None:
        r = np.ones(batch, z.dtype)
    else:
        w = _weights(who, "class_weight", class_weight, classes, z.dtype, "class")
        a *= w
        r = t @ w
    if sample_weight is not None:
        s = _weights(who, "sample_weight", sample_weight, batch, z.dtype, "row")
        a *= s[:, None]
        r = r * s
    total = float(np.add.reduce(r, dtype=np.float64))
    if total == 0:
        return 0.0, np.zeros_like(z)
    logp = _log_softmax(z)
    value = -float(np.add.reduce((a * logp).reshape(-1), dtype=np.float64)) / total
    grad = np.exp(logp)
    grad *= np.add.reduce(a, axis=1, keepdims=True)
    grad -= a
    grad *= grad.dtype.type(1.0 / total)
    return value, grad


def binary_cross_entropy(logits: Any, targets: Any, *, sample_weight: Any = None) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], mean over elements.

    E = mean(max(z, 0) - z t + log(1 + exp(-|z|))),  dE/dz = (sigmoid(z) - t) / n. Stable for
    any finite logits. ``sample_weight``: the weighted mean over rows (the module's docstring).
    """
    z = as_float_array(logits, "binary_cross_entropy", None, "`logits`")
    t = as_float_array(targets, "binary_cross_entropy", z.dtype, "`targets`")
    if z.shape != t.shape:
        raise ShapeError(f"binary_cross_entropy: logits have shape {z.shape} but targets have {t.shape}")
    losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    if sample_weight is not None:
        dz = (0.5 * (1 + np.tanh(0.5 * z)) - t).astype(z.dtype, copy=False)
        return _weighted_mean("binary_cross_entropy", losses, dz, sample_weight)
    value = np.mean(losses)
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


def accepts(loss: Any, option: str) -> bool:
    """Whether ``loss`` (a function or a built-in's name) takes the keyword ``option``
    (``"sample_weight"``, ``"class_weight"``, ...): a parameter of that name, or ``**kwargs``."""
    try:
        parameters = inspect.signature(as_loss(loss)).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == option and p.kind is not p.POSITIONAL_ONLY)
               for p in parameters)


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
