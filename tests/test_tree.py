"""Params trees (purenn.tree): tree_map, freeze, readonly, leaves/unflatten. The pure sgd_step
built on them is tested in tests/optim/test_sgd_step.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purenn.tree import freeze, readonly, tree_leaves, tree_map, tree_structure, tree_unflatten

RNG = np.random.default_rng


def nested(seed: int = 0):
    r = RNG(seed)
    return {"a": (r.standard_normal(2), [r.standard_normal((2, 3)), {}]), "b": {"c": r.standard_normal(1)}}


# ---------------------------------------------------------------- tree_map


def test_tree_map_over_nested_dict_tuple_list_keeps_containers():
    t = nested()
    out = tree_map(lambda a: a * 2, t)
    assert isinstance(out["a"], tuple) and isinstance(out["a"][1], list) and out["a"][1][1] == {}
    np.testing.assert_array_equal(out["a"][1][0], t["a"][1][0] * 2)
    np.testing.assert_array_equal(out["b"]["c"], t["b"]["c"] * 2)


def test_tree_map_over_several_trees():
    a, b = nested(0), nested(1)
    out = tree_map(lambda x, y, z: x + 10 * y + 100 * z, a, b, a)
    for o, x, y in zip(tree_leaves(out), tree_leaves(a), tree_leaves(b), strict=True):
        np.testing.assert_array_equal(o, x + 10 * y + 100 * x)


@pytest.mark.parametrize("other, match", [
    ({"a": 1, "c": 2}, r"tree structures differ: dict with keys \['a', 'b'\] vs dict with keys \['a', 'c'\]"),
    ((1, 2), r"dict with keys \['a', 'b'\] vs sequence of length 2"),
])
def test_tree_map_structure_mismatch_errors(other, match):
    with pytest.raises(ValueError, match=match):
        tree_map(lambda x, y: x, {"a": 1, "b": 2}, other)


def test_tree_map_sequence_length_mismatch():
    with pytest.raises(ValueError, match=r"sequence of length 2 vs sequence of length 3"):
        tree_map(lambda x, y: x, (1, 2), [1, 2, 3])
    with pytest.raises(ValueError, match=r"sequence of length 1 vs leaf of type ndarray"):
        tree_map(lambda x, y: x, (1,), np.zeros(1))


# ---------------------------------------------------------------- leaves and unflatten


trees = st.recursive(
    st.integers(0, 3).map(lambda n: np.arange(n, dtype=np.float64)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text("abc", min_size=1, max_size=2), children, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=50, deadline=None)
@given(trees)
def test_leaves_unflatten_round_trip(tree):
    leaves = tree_leaves(tree)
    rebuilt = tree_unflatten(tree_structure(tree), leaves)
    assert tree_structure(rebuilt) == tree_structure(tree)
    for a, b in zip(tree_leaves(rebuilt), leaves, strict=True):
        assert a is b
    assert tree_structure(tree_map(lambda a: a + 1, tree)) == tree_structure(tree)


def test_leaves_order_follows_insertion():
    assert tree_leaves({"z": 1, "a": (2, [3, 4]), "m": {}}) == [1, 2, 3, 4]


def test_unflatten_with_wrong_number_of_leaves():
    structure = tree_structure({"w": 0, "b": 0})
    with pytest.raises(ValueError, match="more leaves than the structure has places for"):
        tree_unflatten(structure, [1, 2, 3])
    with pytest.raises(ValueError, match="more leaves than the structure has places for"):
        tree_unflatten(structure, [1, 2, None])
    with pytest.raises(ValueError, match=r"fewer leaves \(1\) than the structure has places for \(2\)"):
        tree_unflatten(structure, [1])


# ---------------------------------------------------------------- freeze and readonly


def test_freeze_makes_read_only_copies_and_leaves_callers_arrays_writable():
    mine = np.arange(3.0)
    frozen = freeze({"w": mine, "b": [1.0, np.float32(2.0)]})
    assert not frozen["w"].flags.writeable
    for leaf in frozen["b"]:  # Python and NumPy scalars become read-only 0-d arrays
        assert isinstance(leaf, np.ndarray) and leaf.shape == () and not leaf.flags.writeable
    assert mine.flags.writeable
    mine[0] = 99.0  # the caller keeps a working array, and the frozen copy does not change
    assert frozen["w"][0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        frozen["w"][0] = 1.0


def test_freeze_shares_arrays_that_are_already_read_only():
    a = readonly(np.ones(2))
    assert freeze([a])[0] is a


def test_readonly_marks_in_place_without_copying():
    a = np.ones(3)
    assert readonly(a) is a and not a.flags.writeable
