"""Checking and converting values: one vocabulary for every record field and function argument.

A :class:`Rule` says what a value must be. The same rule serves as an ``attrs`` validator and,
through :func:`check`, for a plain function argument, so every message has one shape::

    `out_features` must be a positive integer, got 0
    `b1` must be a real number in [0, 1), got 1.5
    `initializer` must be one of ('uniform', 'glorot', 'he'), got 'zeros'

A value of the wrong kind raises :class:`~purenn.errors.ArgumentTypeError` (a ``TypeError``), one
of the right kind but outside what is allowed :class:`~purenn.errors.ArgumentError` (a
``ValueError``). Converters (``to_float``, ``to_int``, ``to_pair``) run before the rule: they turn
what is clearly meant (a NumPy integer, ``3`` for a square kernel) into the canonical form, and
leave anything else for the rule to refuse by name.

    field = attrs.field(converter=to_int, validator=positive_int)   # in a record
    epochs = check("epochs", epochs, positive_int, to_int)           # in a function
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError

__all__ = [
    "Rule", "check", "to_float", "to_int", "to_pair", "to_shape", "shape", "real", "integer", "positive_int",
    "array_size", "thread_count", "MAX_THREADS",
    "non_negative_int", "positive_number", "non_negative_number", "unit_interval", "float_field", "one_of", "optional", "positive_pair", "boolean",
    "FLOAT_DTYPES", "float_dtype", "as_float_array", "as_samples",
]


@attrs.frozen
class Rule:
    """What a value must be: ``what`` for the message, ``kind`` (the type test) and ``test``
    (the value test, run only on values of the right kind). Usable as an attrs validator."""

    what: str
    kind: Callable[[Any], bool]
    test: Callable[[Any], bool] = lambda value: True

    def check(self, name: str, value: Any) -> None:
        """Raise naming ``name``, ``value`` and :attr:`what` unless ``value`` passes."""
        if not self.kind(value):
            raise ArgumentTypeError(
                f"`{name}` must be {self.what}, got {value!r:.80} of type {type(value).__name__}"
            )
        if not self.test(value):
            raise ArgumentError(f"`{name}` must be {self.what}, got {value!r:.80}")

    def __call__(self, instance: object, attribute: attrs.Attribute, value: Any) -> None:
        self.check(attribute.name, value)


def float_field(rule: Rule, default: Any = attrs.NOTHING) -> Any:
    """An attrs field holding a real number: converted with :func:`to_float`, checked by ``rule``."""
    return attrs.field(default=default, converter=to_float, validator=rule)


def check(name: str, value: Any, rule: Rule, convert: Callable[[Any], Any] | None = None) -> Any:
    """Convert ``value`` (if ``convert`` is given), check it against ``rule`` and return it."""
    if convert is not None:
        value = convert(value)
    rule.check(name, value)
    return value


# --- converters: the canonical form of what is clearly meant ---------------------------------


def to_float(value: Any) -> Any:
    """Real numbers (not bools, NumPy's included) become Python floats; anything else is left
    for the rule. Python floats keep float32 arrays float32 under NumPy 2's promotion rules."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def to_int(value: Any) -> Any:
    """Integers (not bools, NumPy's included) become Python ints, so records compare and
    serialise as written; anything else is left for the rule."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def to_pair(value: Any) -> Any:
    """``3`` -> ``(3, 3)``; a pair of integers -> a tuple of ints; anything else unchanged."""
    if _is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    return value


def to_shape(value: Any) -> Any:
    """A list or tuple of integers -> a tuple of ints; anything else unchanged."""
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    return value


# --- rules -----------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = True) -> Rule:
    """A finite real number, optionally in an interval: ``real(0, 1)`` is [0, 1),
    ``real(0, low_open=True)`` is > 0."""
    if low is not None and high is not None:
        where = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        where = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        where = f" {'<' if high_open else '<='} {high:g}"
    else:
        where = ""

    def test(v: Any) -> bool:
        try:
            v = float(v)  # an int too large for a float is out of every range here
        except OverflowError:
            return False
        return (math.isfinite(v)
                and (low is None or (v > low if low_open else v >= low))
                and (high is None or (v < high if high_open else v <= high)))

    what = {" > 0": "a positive number", " >= 0": "a non-negative number"}.get(where, f"a real number{where}")
    return Rule(what, _is_real, test)


def integer(low: int) -> Rule:
    """An integer (not a bool) >= ``low``."""
    what = {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer >= {low}")
    return Rule(what, _is_int, lambda v: v >= low)


positive_int = integer(1)
#: A size of an array axis: a positive integer an array can have (NumPy's index type is 64-bit;
#: 2**31 leaves room for the products of two sizes, e.g. a Dense layer's weights).
array_size = Rule("a positive integer below 2**31", _is_int, lambda v: 1 <= v < 2**31)
MAX_THREADS = 1024
thread_count = Rule(f"a number of threads from 1 to {MAX_THREADS}", _is_int, lambda v: 1 <= v <= MAX_THREADS)
non_negative_int = integer(0)
positive_number = real(0.0, low_open=True)
non_negative_number = real(0.0)
unit_interval = real(0.0, 1.0)  # [0, 1): decay rates of moving averages, momenta
boolean = Rule("True or False", lambda v: isinstance(v, bool))


def one_of(choices: tuple[Any, ...]) -> Rule:
    """One of ``choices`` (compared with ``in``)."""
    return Rule(f"one of {choices}", lambda v: True, lambda v: v in choices)


def optional(rule: Rule) -> Rule:
    """``None``, or a value ``rule`` accepts."""
    return Rule(f"{rule.what} or None", lambda v: v is None or rule.kind(v),
                lambda v: v is None or rule.test(v))


positive_pair = Rule(
    "a positive integer or a pair (height, width) of positive integers",
    lambda v: isinstance(v, tuple) and len(v) == 2 and all(type(i) is int for i in v),
    lambda v: min(v) > 0,
)

shape = Rule(
    "a non-empty tuple of positive integers",
    lambda v: isinstance(v, tuple) and all(type(i) is int for i in v),
    lambda v: len(v) > 0 and min(v) > 0,
)

FLOAT_DTYPES = ("float32", "float64")
float_dtype = one_of(FLOAT_DTYPES)


# --- arrays ----------------------------------------------------------------------------------


def as_float_array(x: Any, who: object, dtype: Any = None, name: str = "input") -> np.ndarray:
    """``x`` as a floating array, refusing non-numeric data with a message naming ``who`` (a
    layer, or a loss's name) and ``name`` (the argument).

    ``dtype`` given: convert to it (integer XOR arrays become the layer's floats). Otherwise
    floating input keeps its dtype and integer or boolean input becomes float32.
    """
    if type(x) is np.ndarray and (x.dtype == dtype or (dtype is None and x.dtype.kind == "f")):
        return x
    label = who if isinstance(who, str) else repr(who)
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ArgumentTypeError(f"{label}: {name} could not be turned into an array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise ArgumentTypeError(
            f"{label}: {name} must be numeric, got an array of dtype {a.dtype}; "
            "convert it first, e.g. np.asarray(x, dtype=np.float32)"
        )
    target = dtype if dtype is not None else (a.dtype if a.dtype.kind == "f" else np.float32)
    return a.astype(target, copy=False)


def as_samples(x: Any, y: Any, what: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets as arrays with one row per sample each, or an error saying why not."""
    try:
        x, y = np.asarray(x), np.asarray(y)
    except ValueError as e:  # ragged nested lists
        raise ArgumentError(f"{what}: inputs and targets must be rectangular arrays ({e})") from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ArgumentError(
            f"{what}: inputs and targets need one row per sample; got "
            f"{len(x) if x.ndim else 'a scalar'} inputs and {len(y) if y.ndim else 'a scalar'} targets"
        )
    return x, y
