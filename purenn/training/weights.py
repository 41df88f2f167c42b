"""``fit``'s ``sample_weight`` and ``class_weight``: checked once, then each batch's loss options
and its share of the epoch's weight.

A row's weight in the epoch's loss is its weight in the loss's own mean (see
:mod:`purenn.losses`): ``s_i`` (its sample weight, 1 without) times, with class weights, its class's
weight (``w[y_i]``, or ``sum_c w_c t_ic`` for one-hot or probability rows). The epoch's loss is the
weighted mean ``sum_b value_b W_b / sum_i r_i`` over its batches (``W_b``: the batch's total
weight), so full-batch training with a row of weight 2 is training with that row twice.

**Class weights** go to a loss that takes ``class_weight`` (``softmax_cross_entropy``: PyTorch's
``CrossEntropyLoss(weight=)``, label smoothing weighted per class as PyTorch does). For any other
loss they become sample weights, ``s_i w[class of row i]``, as Keras does (targets must then be
classes, and the loss must take ``sample_weight``). A loss that takes neither option is refused.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.losses import accepts
from purenn.metrics import class_labels, is_class_target
from purenn.validation import as_float_array

__all__ = ["Weights", "plan_weights"]


@attrs.frozen(eq=False)
class Weights:
    """A run's weights: ``sample`` (one per row, for the loss's ``sample_weight``; None without),
    ``class_weight`` (one per class, for the loss's ``class_weight``; None when the loss does not
    get it), ``rows`` (each row's weight in the loss's mean, float64) and ``total`` (their sum)."""

    sample: np.ndarray | None
    class_weight: np.ndarray | None
    rows: np.ndarray
    total: float

    def batch(self, index: Any) -> tuple[dict[str, Any], float]:
        """The loss's keyword options for the rows ``index`` (a slice or index array) and the
        batch's total weight."""
        options: dict[str, Any] = {}
        if self.class_weight is not None:
            options["class_weight"] = self.class_weight
        if self.sample is not None:
            options["sample_weight"] = self.sample[index]
        return options, float(np.add.reduce(self.rows[index], dtype=np.float64))

    def describe(self) -> str | None:
        """The class weights as the run's settings record them (None without)."""
        return None if self.class_weight is None else repr([float(w) for w in self.class_weight])


def _check_values(name: str, w: np.ndarray) -> None:
    if w.size and not (np.all(np.isfinite(w)) and np.minimum.reduce(w) >= 0):
        raise ArgumentError(f"fit: `{name}` must be finite numbers >= 0, got values from "
                            f"{np.min(w)} to {np.max(w)}")


def _sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    w = as_float_array(sample_weight, "fit", np.float64, "`sample_weight`")
    if w.shape != (n,):
        raise ShapeError(f"fit: `sample_weight` must have one weight per training row, shape ({n},), "
                         f"got shape {w.shape}")
    _check_values("sample_weight", w)
    return w


def _classes_in(y: np.ndarray) -> int:
    """How many classes targets ``y`` (already known to be classes) name at least."""
    if y.ndim == 1 and y.dtype.kind in "iu":
        return int(y.max(initial=0)) + 1
    flat = y.reshape(len(y), -1)
    return 2 if flat.shape[1] == 1 else flat.shape[1]


def _class_weight(class_weight: Any, y: np.ndarray) -> np.ndarray:
    """One weight per class: from a sequence as it is (PyTorch's ``weight=``); from a dict
    ``{class: weight}`` (Keras's) with weight 1 for the classes it does not name, up to the
    largest class it or the targets name."""
    if isinstance(class_weight, dict):
        if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 0
                   for k in class_weight):
            raise ArgumentTypeError(f"fit: `class_weight`'s keys must be class indices (ints >= 0), "
                                    f"got {sorted(map(repr, class_weight))[:5]}")
        size = max([_classes_in(y), *(int(k) + 1 for k in class_weight)])
        full = np.ones(size)
        for k, v in class_weight.items():
            full[int(k)] = as_float_array(v, "fit", np.float64, f"`class_weight[{k}]`")
        class_weight = full
    w = as_float_array(class_weight, "fit", np.float64, "`class_weight`")
    if w.ndim != 1 or w.size == 0:
        raise ShapeError(f"fit: `class_weight` must be one weight per class (a list, an array of shape "
                         f"(classes,), or a dict {{class: weight}}), got shape {w.shape}")
    _check_values("class_weight", w)
    return w


def plan_weights(loss: Any, y: np.ndarray, sample_weight: Any, class_weight: Any) -> Weights | None:
    """The run's :class:`Weights` (None without either), checked: shapes, finite values >= 0, a
    total above 0, a loss that takes them (see the module's docstring)."""
    if sample_weight is None and class_weight is None:
        return None
    name = getattr(loss, "__name__", type(loss).__name__)
    if not accepts(loss, "sample_weight") and not (sample_weight is None and accepts(loss, "class_weight")):
        raise ArgumentError(
            f"fit: the loss {name} takes no `sample_weight`, so it cannot weigh rows; give it a "
            "keyword `sample_weight` (one weight per row of the batch, as purenn's losses do) or "
            "train without weights")
    n = len(y)
    sample = None if sample_weight is None else _sample_weight(sample_weight, n)
    rows = np.ones(n) if sample is None else sample
    passed = None
    if class_weight is not None:
        if accepts(loss, "class_weight"):
            passed = _class_weight(class_weight, y)
            rows = rows * _row_class_weights(passed, y)
        else:
            if not is_class_target(y):
                raise ArgumentError(f"fit: `class_weight` needs class targets (integer labels, one-hot "
                                    f"rows or 0/1 values), and the loss {name} takes no class_weight of "
                                    "its own; weigh the rows with sample_weight instead")
            w = _class_weight(class_weight, y)
            labels = class_labels(y)
            if labels.size and labels.max() >= w.size:
                raise ArgumentError(f"fit: `class_weight` has {w.size} weights but the targets name "
                                    f"class {labels.max()}; give one weight per class")
            rows = rows * w[labels]
            sample = rows
    total = float(np.add.reduce(rows, dtype=np.float64))
    if not total > 0:
        raise ArgumentError("fit: the rows' weights (sample_weight times class_weight) are all 0, so "
                            "no row counts; give at least one row a weight above 0")
    return Weights(sample, passed, rows, total)


def _row_class_weights(w: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's class weight as ``softmax_cross_entropy`` counts it: ``w[label]`` for integer
    labels, ``t @ w`` for rows (which it checks against the logits when training)."""
    if y.ndim == 1 and y.dtype.kind in "iub":
        labels = y.astype(np.intp)
        if labels.size and (labels.min() < 0 or labels.max() >= w.size):
            raise ArgumentError(f"fit: `class_weight` has {w.size} weights but the labels run from "
                                f"{labels.min()} to {labels.max()}; give one weight per class")
        return w[labels]
    t = y.reshape(len(y), -1).astype(np.float64)
    if t.shape[1] != w.size:
        raise ShapeError(f"fit: `class_weight` has {w.size} weights but the target rows have "
                         f"{t.shape[1]} classes; give one weight per class")
    return t @ w
