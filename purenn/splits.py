"""Holding out a validation set: a seeded, stratified split of a training set (no I/O).

The test set is for the final estimate only; choosing anything by it (an epoch, a learning rate)
makes its accuracy an optimistic one. A validation set, held out of the training data, is what a
run watches instead::

    (x_train, y_train), (x_val, y_val) = pn.train_val_split(x, y, 0.1, seed=0)
    params, history = pn.fit(model, params, x_train, y_train, validation=(x_val, y_val), ...)

Stratified (the default), each class gives ``round(fraction * its count)`` of its samples
(halves rounded up), drawn without replacement from one generator, class by class in label
order; so the validation set has the classes in the training set's proportions. Both parts keep
the samples in their original order (the indices are sorted), so a run that does not shuffle
sees the remaining samples in the order it would have seen all of them. The same ``y``,
``fraction`` and ``seed`` give the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from purenn.errors import ArgumentError
from purenn.validation import Rule, boolean, check, real

__all__ = ["split_fraction", "split_indices", "split_seed", "train_val_split"]

#: A validation fraction: strictly between 0 (no validation set) and 1 (no training set).
split_fraction = real(0.0, 1.0, low_open=True)


def _is_seed_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


#: A split's seed: what ``np.random.default_rng`` takes as entropy, as plain data.
split_seed = Rule(
    "a non-negative integer, or a non-empty sequence of them",
    lambda v: _is_seed_int(v) or (isinstance(v, (tuple, list)) and all(_is_seed_int(i) for i in v)),
    lambda v: (v >= 0) if _is_seed_int(v) else (len(v) > 0 and min(v) >= 0),
)


def split_indices(y: Any, fraction: float, *, seed: int | Sequence[int] = 0,
                  stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, validation_indices)``: sorted int64 indices into ``y`` (one entry per
    sample), disjoint, together every sample once; about ``fraction`` of them held out.

    ``fraction``: in (0, 1). ``seed``: a non-negative int or a sequence of them (the generator
    is ``np.random.default_rng(seed)``). ``stratify``: ``y`` holds integer class labels, one per
    sample, and each class gives ``round(fraction * its count)`` samples (module docstring);
    ``False``: ``round(fraction * len(y))`` samples drawn from all alike (``y`` only counts).

    An :class:`~purenn.errors.ArgumentError` if ``fraction`` or ``seed`` is out of range, the
    validation set would be empty, or (stratified) a class would keep no training sample."""
    fraction = check("fraction", fraction, split_fraction)
    check("seed", seed, split_seed)
    check("stratify", stratify, boolean)
    labels = _labels(y, stratify)
    rng = np.random.default_rng(seed)
    if stratify:
        held = [_draw(rng, np.flatnonzero(labels == c), fraction, c) for c in np.unique(labels)]
        validation = np.sort(np.concatenate(held))
    else:
        validation = np.sort(_draw(rng, np.arange(len(labels)), fraction, None))
    if len(validation) == 0:
        raise ArgumentError(f"a validation fraction of {fraction:g} of {len(labels)} samples holds out "
                            "none: give a larger fraction, or more samples")
    keep = np.ones(len(labels), dtype=bool)
    keep[validation] = False
    return np.flatnonzero(keep).astype(np.int64), validation.astype(np.int64)


def train_val_split(x: Any, y: Any, fraction: float, *, seed: int | Sequence[int] = 0,
                    stratify: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_val, y_val))``: the samples (rows of ``x`` and ``y``) of
    :func:`split_indices`, each part in the original order; the arguments and errors as there,
    and an :class:`~purenn.errors.ArgumentError` unless ``x`` and ``y`` have one row per sample."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ArgumentError(f"train_val_split needs one row of `x` per entry of `y`; got "
                            f"{len(x) if x.ndim else 'a scalar'} and {len(y) if y.ndim else 'a scalar'}")
    train, validation = split_indices(y, fraction, seed=seed, stratify=stratify)
    return (x[train], y[train]), (x[validation], y[validation])


def _labels(y: Any, stratify: bool) -> np.ndarray:
    """``y`` as an array with one entry per sample; stratified, integer class labels."""
    labels = np.asarray(y)
    if labels.ndim == 0:
        raise ArgumentError("`y` must hold one entry per sample, got a scalar")
    if stratify and (labels.ndim != 1 or labels.dtype.kind not in "iub"):
        raise ArgumentError(
            f"a stratified split needs integer class labels, one per sample (a 1-D integer array); "
            f"got an array of shape {labels.shape} and dtype {labels.dtype}: pass labels (for one-hot "
            "rows, y.argmax(axis=1)), or stratify=False")
    return labels


def _draw(rng: np.random.Generator, indices: np.ndarray, fraction: float, label: Any) -> np.ndarray:
    """``round(fraction * len(indices))`` of ``indices`` (halves up), drawn without replacement;
    ``label``'s class (None: all samples) must keep at least one."""
    n = int(np.floor(fraction * len(indices) + 0.5))
    if n >= len(indices):
        whose = "the training set" if label is None else f"class {label} ({len(indices)} samples)"
        raise ArgumentError(f"a validation fraction of {fraction:g} leaves {whose} no training sample: "
                            "give a smaller fraction")
    return rng.permutation(indices)[:n]
