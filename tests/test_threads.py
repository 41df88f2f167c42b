"""purenn.threads: element-wise work on as many threads as the BLAS may use, with the same
numbers whatever that number is."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import purenn as pn
from purenn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Reshape, Sequential
from purenn.threads import for_slices, slices, threads_available


def _two_threads():
    """threadpool_limits(2) for the BLAS, or a skip where the BLAS will not take it."""
    limits = threadpool_limits(limits=2, user_api="blas")
    if threads_available() != 2:
        limits.restore_original_limits()
        pytest.skip("the BLAS cannot be set to 2 threads here")
    return limits


def test_slices_cover_the_range_in_order():
    assert slices(10, 4, 12) == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    assert slices(3, 100, 10) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # at least one item
    assert slices(0, 4, 12) == []


def test_every_slice_runs_once_and_on_two_threads_when_the_blas_has_two():
    parts = slices(100, 1, 10)
    seen, names = [], set()

    def work(part):
        seen.append(part)
        names.add(threading.current_thread().name)

    with _two_threads():
        for_slices(work, parts, min_bytes=0, nbytes=1)
    assert sorted(seen, key=lambda s: s.start) == parts
    assert len(names) == 2
    seen.clear(), names.clear()
    with threadpool_limits(limits=1, user_api="blas"):
        for_slices(work, parts, min_bytes=0, nbytes=1)
    assert seen == parts and names == {threading.current_thread().name}
    seen.clear()
    with _two_threads():
        for_slices(work, parts, min_bytes=100, nbytes=99)  # too little work to share
    assert seen == parts


def test_a_workers_exception_reaches_the_caller():
    def work(part):
        if part.start >= 50:
            raise ValueError(f"bad slice {part}")

    with _two_threads(), pytest.raises(ValueError, match="bad slice"):
        for_slices(work, slices(100, 1, 10), min_bytes=0, nbytes=1)


def test_training_gives_the_same_bits_with_one_and_two_threads():
    """Pooling, patch matrices, scattered adds, ReLU and Adam's blocks are split over threads;
    a CNN trained with 1 and with 2 BLAS threads must end with identical params."""
    model = Sequential([Reshape((28, 28, 1)), Conv2D(1, 8, 5), MaxPool2D(2), ReLU(), Conv2D(8, 16, 3),
                        MaxPool2D(2), ReLU(), Flatten(), Dense(5 * 5 * 16, 300), ReLU(), Dropout(0.25),
                        Dense(300, 10)])
    rng = np.random.default_rng(0)
    x, y = rng.random((256, 784), dtype=np.float32), rng.integers(0, 10, 256)
    params = model.init(np.random.default_rng(1))

    def train():
        return pn.fit(model, params, x, y, loss=pn.softmax_cross_entropy, optimizer=pn.Adam(1e-3),
                      epochs=1, batch_size=128, seed=2)[0]

    with threadpool_limits(limits=1, user_api="blas"):
        one = train()
    with _two_threads():
        two = train()
    for a, b in zip(pn.tree_leaves(one), pn.tree_leaves(two), strict=True):
        np.testing.assert_array_equal(a, b)
