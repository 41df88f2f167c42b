"""The validation split (purenn.splits): stratified by label, seeded, each part in the original
order, and refused by name when it cannot be made."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.splits import split_indices, train_val_split


def _labels(counts: list[int], seed: int = 0) -> np.ndarray:
    """Labels with ``counts[c]`` samples of class c, shuffled."""
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=1, max_size=6),
       fraction=st.floats(0.05, 0.45), seed=st.integers(0, 2**32))
def test_each_class_gives_its_share_and_the_parts_cover_every_sample_once(counts, fraction, seed):
    y = _labels(counts, seed)
    total = int(np.floor(fraction * len(y) + 0.5))
    if total == 0:
        with pytest.raises(pn.ArgumentError, match="holds out none"):
            split_indices(y, fraction, seed=seed)
        return
    train, val = split_indices(y, fraction, seed=seed)
    assert train.dtype == val.dtype == np.int64 and len(val) == total
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))  # disjoint, complete
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # the original order
    shares = np.bincount(y[val], minlength=len(counts))
    floors = np.floor(fraction * np.array(counts))
    assert np.all((shares == floors) | (shares == floors + 1))  # in proportion, as nearly as can be
    assert all(np.bincount(y[train], minlength=len(counts)) >= 1)  # every class keeps a training sample


def test_the_ceilings_go_to_the_largest_remainders():
    y = np.repeat([0, 1, 2], [10, 14, 16])  # 0.25 of 40 = 10: shares 2.5, 3.5, 4 -> floors 2, 3, 4, one over
    shares = np.bincount(y[split_indices(y, 0.25)[1]])
    assert shares.tolist() == [3, 3, 4]  # the tie of remainders (0.5, 0.5) goes to the lower label


def test_the_seed_alone_chooses_the_split():
    y = _labels([30, 20, 50])
    a = split_indices(y, 0.2, seed=0)
    assert all(np.array_equal(p, q) for p, q in zip(a, split_indices(y, 0.2, seed=0)))
    assert not np.array_equal(a[1], split_indices(y, 0.2, seed=1)[1])
    assert not np.array_equal(a[1], split_indices(y, 0.2, seed=(0, 1))[1])  # a pair is another seed
    assert np.array_equal(split_indices(y, 0.2, seed=(0, 1))[1], split_indices(y, 0.2, seed=[0, 1])[1])


def test_train_val_split_gives_the_rows_of_the_indices():
    y = _labels([10, 10, 10])
    x = np.arange(len(y) * 2, dtype=np.float32).reshape(-1, 2)
    (x_tr, y_tr), (x_val, y_val) = pn.train_val_split(x, y, 0.3, seed=5)
    train, val = split_indices(y, 0.3, seed=5)
    np.testing.assert_array_equal(x_tr, x[train])
    np.testing.assert_array_equal(y_val, y[val])
    assert (len(x_tr), len(x_val)) == (21, 9) and np.array_equal(y_tr, y[train]) and np.array_equal(x_val, x[val])


def test_an_unstratified_split_draws_from_all_samples_alike():
    y = np.zeros((10, 3))  # one-hot rows, or anything with one row per sample
    train, val = split_indices(y, 0.25, seed=0, stratify=False)
    assert (len(train), len(val)) == (7, 3)  # round(2.5) = 3: halves go up
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(10))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_a_fraction_outside_zero_to_one_is_refused_by_name(fraction):
    with pytest.raises(pn.ArgumentError, match=r"`fraction` must be a real number in \(0, 1\), got"):
        split_indices(_labels([5, 5]), fraction)


@pytest.mark.parametrize("fraction, ok", [(0.04, False), (0.05, True)])
def test_just_enough_samples_for_a_validation_set(fraction, ok):
    """10 samples: 0.05 of them rounds to 1 (held out), 0.04 to 0 (nothing to validate on)."""
    y = np.arange(10) % 2
    if ok:
        assert len(split_indices(y, fraction, stratify=False)[1]) == 1
    else:
        with pytest.raises(pn.ArgumentError, match="a validation fraction of 0.04 of 10 samples holds out none"):
            split_indices(y, fraction, stratify=False)


@pytest.mark.parametrize("fraction, ok", [(0.62, True), (0.63, False)])
def test_a_class_that_would_lose_every_training_sample_is_refused(fraction, ok):
    """Two classes of two: 0.62 of 4 rounds to 2 (one of each), 0.63 to 3, which would take a
    class's last training sample."""
    y = np.array([0, 0, 1, 1])
    if ok:
        assert np.bincount(y[split_indices(y, fraction)[1]]).tolist() == [1, 1]
    else:
        with pytest.raises(pn.ArgumentError, match=r"holding out 3 of 4 samples \(a fraction of 0.63\) in "
                                                    r"proportion to the classes would leave a class no training "
                                                    r"sample \(class 0 has 2\)"):
            split_indices(y, fraction)


def test_a_class_of_one_sample_keeps_it_for_training():
    y = np.array([0] * 9 + [1])  # 0.5 of 10: class 1's remainder (0.5) ties class 0's, but it has one sample
    train, val = split_indices(y, 0.5)
    assert 9 in train and len(val) == 5


@pytest.mark.parametrize("fraction, ok", [(0.8, True), (0.9, False)])
def test_an_unstratified_split_keeps_a_training_sample(fraction, ok):
    y = np.arange(3)
    if ok:
        assert len(split_indices(y, fraction, stratify=False)[0]) == 1
    else:
        with pytest.raises(pn.ArgumentError, match="a validation fraction of 0.9 of 3 samples holds out all of them"):
            split_indices(y, fraction, stratify=False)


@pytest.mark.parametrize("y, message", [
    (np.zeros((4, 2), dtype=int), r"a stratified split needs integer class labels.*shape \(4, 2\)"),
    (np.zeros(4), "a stratified split needs integer class labels.*dtype float64.*stratify=False"),
    (np.int64(3), "`y` must hold one entry per sample"),
])
def test_labels_a_stratified_split_cannot_use_are_refused(y, message):
    with pytest.raises(pn.ArgumentError, match=message):
        split_indices(y, 0.5)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", (), (1, -2), True])
def test_a_bad_seed_is_refused_by_name(seed):
    with pytest.raises(pn.ArgumentError, match="`seed` must be a non-negative integer, or a non-empty sequence"):
        split_indices(_labels([5, 5]), 0.2, seed=seed)


def test_rows_and_labels_must_match():
    with pytest.raises(pn.ArgumentError, match="one row of `x` per entry of `y`; got 3 and 4"):
        train_val_split(np.zeros((3, 2)), np.arange(4), 0.5)
