"""Holding out a validation set: a seeded, stratified split of a training set (no I/O).

The test set is for the final estimate only; choosing anything by it (an epoch, a learning rate)
makes its accuracy an optimistic one. A validation set, held out of the training data, is what a
run watches instead::

    (x_train, y_train), (x_val, y_val) = pn.train_val_split(x, y, 0.1, seed=0)
    params, history = pn.fit(model, params, x_train, y_train, validation=(x_val, y_val), ...)

The validation set has ``round(fraction * len(y))`` samples (halves rounded up). Stratified (the
default), they are shared among the classes in proportion to their counts: each class gives the
floor or the ceiling of its share ``fraction * its count``, the ceilings going to the largest
remainders (ties: the lower label), so the validation set has the classes in the training set's
proportions, as nearly as whole samples allow; a class whose ceiling would leave it no training
sample keeps its floor, and the next largest remainder gets the ceiling. The samples are drawn without replacement from
one generator, class by class in label order. Both parts keep the samples in their original
order (the indices are sorted), so a run that does not shuffle sees the remaining samples in
the order it would have seen all of them. The same ``y``, ``fraction`` and ``seed`` give the
same split.
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

    ``fraction``: in (0, 1); ``round(fraction * len(y))`` samples are held out. ``seed``: a
    non-negative int or a sequence of them (the generator is ``np.random.default_rng(seed)``).
    ``stratify``: ``y`` holds integer class labels, one per sample, and each class gives its
    share (module docstring); ``False``: drawn from all samples alike (``y`` only counts).

    An :class:`~purenn.errors.ArgumentError` if ``fraction`` or ``seed`` is out of range, the
    validation set would be empty, or (stratified) a class would keep no training sample."""
    fraction = check("fraction", fraction, split_fraction)
    check("seed", seed, split_seed)
    check("stratify", stratify, boolean)
    labels = _labels(y, stratify)
    held_out = int(np.floor(fraction * len(labels) + 0.5))
    if held_out == 0:
        raise ArgumentError(f"a validation fraction of {fraction:g} of {len(labels)} samples holds out "
                            "none: give a larger fraction, or more samples")
    rng = np.random.default_rng(seed)
    if stratify:
        classes = np.unique(labels)
        members = [np.flatnonzero(labels == c) for c in classes]
        shares = _shares(np.array([len(m) for m in members]), fraction, held_out, classes)
        validation = np.sort(np.concatenate([rng.permutation(m)[:n] for m, n in zip(members, shares)]))
    elif held_out == len(labels):
        raise ArgumentError(f"a validation fraction of {fraction:g} of {len(labels)} samples holds out "
                            "all of them: give a smaller fraction")
    else:
        validation = np.sort(rng.permutation(len(labels))[:held_out])
    keep = np.ones(len(labels), dtype=bool)
    keep[validation] = False
    return np.flatnonzero(keep).astype(np.int64), validation.astype(np.int64)


def _shares(counts: np.ndarray, fraction: float, total: int, classes: np.ndarray) -> np.ndarray:
    """How many samples each class gives: the floor of ``fraction * count``, plus one for the
    classes with the largest remainders (ties: the first) that keep a training sample even so,
    ``total`` in all; an ArgumentError when too few such classes are left."""
    quotas = fraction * counts
    shares = np.floor(quotas).astype(np.int64)  # < count: fraction < 1
    extra = total - int(shares.sum())  # >= 0: the floors sum to at most the total
    order = [i for i in np.argsort(-(quotas - shares), kind="stable") if shares[i] + 1 < counts[i]]
    if len(order) < extra:
        smallest = int(np.argmin(counts))
        raise ArgumentError(f"holding out {total} of {int(counts.sum())} samples (a fraction of {fraction:g}) "
                            f"in proportion to the classes would leave a class no training sample (class "
                            f"{classes[smallest]} has {counts[smallest]}): give a smaller fraction, or "
                            "stratify=False")
    shares[order[:extra]] += 1
    return shares


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
