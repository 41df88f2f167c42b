"""The one vocabulary of checks: every rule's message names the field, the value and what is
allowed; wrong kinds are ArgumentTypeError (a TypeError), wrong values ArgumentError."""

from __future__ import annotations

import re

import attrs
import numpy as np
import pytest

from purenn.errors import ArgumentError, ArgumentTypeError, PurennError
from purenn.validation import (
    as_float_array, as_samples, check, integer, one_of, optional, positive_int, positive_number,
    positive_pair, real, to_float, to_int, to_pair, to_shape,
)


@pytest.mark.parametrize("rule, good, bad, message", [
    (positive_int, [1, 7], [0, -3], "a positive integer"),
    (integer(2), [2, 9], [1], "an integer >= 2"),
    (positive_number, [0.5, 1e30], [0.0, -1.0, float("inf"), float("nan")], "a positive number"),
    (real(0.0, 1.0), [0.0, 0.99], [1.0, -0.1], r"a real number in \[0, 1\)"),
    (real(0.0, 1.0, low_open=True, high_open=False), [1.0], [0.0], r"a real number in \(0, 1\]"),
    (one_of(("a", "b")), ["a"], ["c"], r"one of \('a', 'b'\)"),
    (optional(positive_int), [None, 3], [0], "a positive integer or None"),
    (positive_pair, [(1, 2)], [(0, 2)], "a positive integer or a pair"),
])
def test_rules_accept_and_refuse_with_the_field_and_value_named(rule, good, bad, message):
    for value in good:
        assert check("n", value, rule) == value
    for value in bad:
        with pytest.raises(ArgumentError, match=f"^`n` must be {message}.*, got {re.escape(repr(value))}$"):
            check("n", value, rule)


@pytest.mark.parametrize("rule, value", [(positive_int, 1.0), (positive_int, True), (positive_number, "1"),
                                         (positive_pair, [1, 2]), (real(), None)])
def test_wrong_kinds_are_type_errors_and_purenn_errors(rule, value):
    with pytest.raises(ArgumentTypeError, match=f"got {re.escape(repr(value))} of type {type(value).__name__}$") as e:
        check("n", value, rule)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)
    assert isinstance(e.value, PurennError)


def test_converters_turn_what_is_meant_into_canonical_values_and_leave_the_rest():
    assert type(to_float(np.float32(0.5))) is float and to_float(True) is True
    assert type(to_int(np.int64(3))) is int and to_int(2.0) == 2.0 and type(to_int(2.0)) is float
    assert to_pair(3) == (3, 3) and to_pair([2, np.int8(4)]) == (2, 4) and to_pair("x") == "x"
    assert to_shape([28, np.int64(28), 1]) == (28, 28, 1) and to_shape([2.5]) == [2.5]


def test_rules_are_attrs_validators():
    @attrs.frozen
    class Record:
        size: int = attrs.field(converter=to_int, validator=positive_int)

    assert Record(np.int16(4)).size == 4
    with pytest.raises(ArgumentError, match="`size` must be a positive integer, got 0"):
        Record(0)


def test_arrays_and_samples():
    assert as_float_array([1, 2], "who").dtype == np.float32
    assert as_float_array(np.ones(2), "who").dtype == np.float64
    with pytest.raises(ArgumentTypeError, match="who: `x` must be numeric, got an array of dtype <U1"):
        as_float_array(["a"], "who", name="`x`")
    x, y = as_samples([[1, 2], [3, 4]], [0, 1], "fit")
    assert x.shape == (2, 2)
    with pytest.raises(ArgumentError, match="fit: inputs and targets need one row per sample; got 2 inputs and 3"):
        as_samples(x, [0, 1, 2], "fit")
