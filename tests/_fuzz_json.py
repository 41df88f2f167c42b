"""Hypothesis helpers for fuzzing JSON documents (checkpoint headers, run records):
``from _fuzz_json import json_values, json_paths``."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(words: list[str], max_leaves: int = 4) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars (with edge numbers and the given ``words`` a reader may expect),
    lists and objects of them."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30),
        st.sampled_from([10**12, -1, 0, 2**63, 10**400]), st.floats(allow_nan=True),
        st.text(max_size=8), st.sampled_from(words),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3),
    ), max_leaves=max_leaves)


def json_paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON document (the root excluded), as key/index paths."""
    out = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        out.append(path + (key,))
        out.extend(json_paths(value, path + (key,)))
    return out
