"""The pure sgd_step (purenn.optim.base): exact, new read-only leaves, the old params untouched,
and its errors. (test_optimizers.py and test_transforms.py check other updates against it.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import purenn as pn
from purenn.optim.base import sgd_step
from purenn.tree import freeze, tree_leaves, tree_map, tree_structure

RNG = np.random.default_rng


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1e-4, 10.0), st.sampled_from([np.float32, np.float64]))
def test_sgd_step_is_pure_and_exact(seed, lr, dtype):
    r = RNG(seed)
    params = freeze({"w": r.standard_normal((3, 2)).astype(dtype), "b": (r.standard_normal(2).astype(dtype),)})
    grads = tree_map(lambda p: r.standard_normal(p.shape).astype(dtype), params)
    before = tree_map(np.copy, params)
    new = sgd_step(params, grads, lr)
    for p, old, g, n in zip(tree_leaves(params), tree_leaves(before), tree_leaves(grads), tree_leaves(new), strict=True):
        assert np.array_equal(p, old)  # old params unchanged
        assert not n.flags.writeable and n is not p
        assert n.dtype == dtype
        assert np.array_equal(n, p - lr * g)  # exactly, not approximately
    assert tree_structure(new) == tree_structure(params)


def test_sgd_step_structure_mismatch():
    with pytest.raises(ValueError, match="tree structures differ"):
        sgd_step({"w": np.ones(2)}, {"b": np.ones(2)}, 0.1)


def test_sgd_step_refuses_a_negative_learning_rate():
    params = {"w": pn.freeze(np.ones(3))}
    with pytest.raises(ValueError, match="`lr` must be a positive number, got -1"):
        pn.sgd_step(params, params, -1)
