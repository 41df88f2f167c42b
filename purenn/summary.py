"""Model summaries: each layer's output shape, parameter count and state size, without running it.

::

    >>> print(pn.summary(model, (784,)))        # per-sample input shape, no batch axis

Shapes come from each layer's ``output_shape`` and counts from ``param_shapes()`` and
``state_shapes()``, so nothing is allocated and no batch is run: a summary of a model too big to
initialise still works, and a layer that cannot take its input is named before any training. A
layer that does not define ``output_shape`` (your own, perhaps) shows ``?`` from there on.
Containers (``Sequential``, ``Residual``, ``Parallel``) get a row with their totals and their
children indented below it.

The same shapes bound what running a model costs before it runs: :func:`sample_values` counts the
values a forward pass computes per sample, and :func:`check_sample_size` refuses a model above
:data:`MAX_SAMPLE_VALUES` (``purenn evaluate`` checks a file's model with it; a 81 KB file can
hold a model of ``Parallel`` blocks that would need terabytes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, ShapeError
from purenn.layers.base import output_shape, param_shapes, state_shapes
from purenn.layers.blocks import Parallel, Residual
from purenn.layers.sequential import Sequential
from purenn.validation import check, to_shape
from purenn.validation import shape as shape_rule

__all__ = [
    "MAX_SAMPLE_VALUES",
    "ModelSummary",
    "SummaryRow",
    "check_sample_size",
    "sample_values",
    "summary",
]

_BATCH = 1  # the batch size the shapes are inferred with (any size gives the same per-sample shapes)

#: Most values a model read from a file may compute per sample (every layer's output, summed:
#: what a forward pass holds in its caches) for :func:`check_sample_size`: 2**22 = 4,194,304,
#: 16 MiB a sample in float32. The presets compute at most 90,778 (``resnet``); a ``Parallel``
#: of 400 ``Identity`` branches multiplies its input's size by 400.
MAX_SAMPLE_VALUES = 2**22


@attrs.frozen
class SummaryRow:
    """One layer: its ``name`` (a short description), nesting ``depth`` (0 for the model's own
    layers), per-sample ``output_shape`` (None when the layer cannot say), and the number of
    trainable ``params`` and of ``state`` values (running statistics), with their bytes."""

    name: str
    short_name: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    state: int
    param_bytes: int
    state_bytes: int


@attrs.frozen
class ModelSummary:
    """What :func:`summary` returns; ``str()`` is a table for a terminal, :meth:`compact` a shorter
    one (the model's own layers only)."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    rows: tuple[SummaryRow, ...]
    params: int
    state: int
    param_bytes: int
    state_bytes: int

    def table(self, max_depth: int | None = None, *, short: bool = False) -> list[tuple[str, str, str, str]]:
        """The rows as text cells ``(layer, output shape, params, state)``, rows nested deeper
        than ``max_depth`` left out; ``short``: layers named by their required fields only."""
        return [("  " * r.depth + (r.short_name if short else r.name), format_shape(r.output_shape),
                 f"{r.params:,}",
                 f"{r.state:,}" if r.state else "")
                for r in self.rows if max_depth is None or r.depth <= max_depth]

    def totals(self) -> str:
        """One line: parameter and state counts and their bytes."""
        text = f"{self.params:,} parameters ({format_bytes(self.param_bytes)})"
        if self.state:
            text += f", {self.state:,} state values ({format_bytes(self.state_bytes)})"
        return text

    def __str__(self) -> str:
        return self._render(None)

    def compact(self) -> str:
        """The table without the layers inside containers, and shorter names."""
        return self._render(0, short=True)

    def _render(self, max_depth: int | None, short: bool = False) -> str:
        head = ("layer", "output shape", "params", "state")
        cells = [head, *self.table(max_depth, short=short)]
        widths = [max(len(row[i]) for row in cells) for i in range(4)]

        def line(row: tuple[str, ...]) -> str:
            return (f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  "
                    f"{row[3]:>{widths[3]}}").rstrip()

        rule = "-" * len(line(tuple("x" * w for w in widths)))
        out = [f"input {format_shape(self.input_shape)}", line(head), rule]
        out += [line(row) for row in cells[1:]]
        out += [rule, f"output {format_shape(self.output_shape)}; total {self.totals()}"]
        return "\n".join(out)


def format_shape(shape: tuple[int, ...] | None) -> str:
    """``(24, 24, 32)``, or ``?`` when unknown."""
    return "?" if shape is None else "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def format_bytes(n: int) -> str:
    """Bytes in the largest unit that keeps the number at least 1: ``1.2 MiB``."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def summary(model: Any, input_shape: Any) -> ModelSummary:
    """Describe ``model`` for inputs of per-sample shape ``input_shape`` (``(784,)`` for flat MNIST
    rows, ``(28, 28, 1)`` for images; an int means ``(n,)``): each layer's name, output shape,
    parameter count and state size, the totals, and the bytes they take at the model's dtypes.

    Raises :class:`~purenn.errors.ShapeError` naming the first layer that cannot take its input.
    """
    input_shape = _per_sample(model, input_shape)
    rows = list(_rows(model, (_BATCH, *input_shape), 0))
    out = _output(model, (_BATCH, *input_shape))
    params, pbytes = _count(param_shapes(model))
    state, sbytes = _count(state_shapes(model))
    if isinstance(model, Sequential):  # the model itself is the table, not a row of it
        rows = [attrs.evolve(r, depth=r.depth - 1) for r in rows[1:]]
    return ModelSummary(tuple(input_shape), None if out is None else out[1:], tuple(rows),
                        params, state, pbytes, sbytes)


def sample_values(model: Any, input_shape: Any) -> int | None:
    """How many values ``model`` computes per sample for inputs of per-sample ``input_shape``:
    every layer's output size, summed (a ``Residual``'s or ``Parallel``'s merged output counted
    besides its children's, a ``Sequential``'s being its last layer's). From ``output_shape``
    alone: nothing is run or allocated. None when a layer cannot say (no ``output_shape``);
    :class:`~purenn.errors.ShapeError` naming the first layer that cannot take its input."""
    return _values(model, (_BATCH, *_per_sample(model, input_shape)))


def check_sample_size(model: Any, input_shape: Any, *,
                      limit: int = MAX_SAMPLE_VALUES) -> tuple[int, ...] | None:
    """The per-sample output shape of ``model`` for inputs of per-sample ``input_shape``, once it
    is known to take them (:class:`~purenn.errors.ShapeError` otherwise) and to compute at most
    ``limit`` values a sample (:func:`sample_values`; :class:`~purenn.errors.ArgumentError`
    naming both otherwise), before anything is run. None (and nothing checked) for a model with a
    layer that cannot say its output shape."""
    values = sample_values(model, input_shape)
    if values is None:
        return None
    if values > limit:
        raise ArgumentError(
            f"the model computes {values:,} values per sample of shape "
            f"{format_shape(_per_sample(model, input_shape))} (its layers' outputs, about "
            f"{format_bytes(4 * values)} in float32), more than the {limit:,} purenn runs "
            "(MAX_SAMPLE_VALUES); is it the model you meant?")
    out = _output(model, (_BATCH, *_per_sample(model, input_shape)))
    return None if out is None else out[1:]


def _per_sample(model: Any, input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` checked (an int means ``(n,)``), for a ``model`` that is a layer."""
    if not all(callable(getattr(model, m, None)) for m in ("init", "forward", "backward")):
        raise ArgumentTypeError(f"expected a layer or model (with init, forward and backward), "
                                f"got {model!r:.80}")
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (int(input_shape),)
    return check("input_shape", input_shape, shape_rule, to_shape)


def _values(layer: Any, shape: tuple[int, ...]) -> int | None:
    out = _output(layer, shape)
    if out is None:
        return None
    if isinstance(layer, Sequential):
        total = 0
        for child in layer.layers:
            inner, after = _values(child, shape), _output(child, shape)
            if inner is None or after is None:
                return None
            total, shape = total + inner, after
        return total
    total = math.prod(out[1:])
    if isinstance(layer, (Residual, Parallel)):  # every child sees the block's input
        for child in layer.children:
            inner = _values(child, shape)
            if inner is None:
                return None
            total += inner
    return total


def _rows(layer: Any, shape: tuple[int, ...] | None, depth: int) -> Iterator[SummaryRow]:
    out = _output(layer, shape)
    params, pbytes = _count(param_shapes(layer))
    state, sbytes = _count(state_shapes(layer))
    yield SummaryRow(_name(layer), _name(layer, short=True), depth, None if out is None else out[1:], params, state, pbytes, sbytes)
    if isinstance(layer, Sequential):
        for child in layer.layers:
            yield from _rows(child, shape, depth + 1)
            shape = _output(child, shape)
    elif isinstance(layer, (Residual, Parallel)):  # every child sees the block's input
        for child in layer.children:
            yield from _rows(child, shape, depth + 1)


def _output(layer: Any, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``layer.output_shape(shape)``; None when the input is unknown or the layer cannot say."""
    if shape is None:
        return None
    try:
        return output_shape(layer, shape)
    except NotImplementedError:
        return None
    except ShapeError as e:
        raise ShapeError(f"{_name(layer)} cannot take input of per-sample shape "
                         f"{format_shape(shape[1:])}: {e.message}") from None


def _count(shapes: Any) -> tuple[int, int]:
    """Number of values and bytes in a ``(shape, dtype)`` tree."""
    if isinstance(shapes, tuple) and len(shapes) == 2 and isinstance(shapes[1], str):
        n = math.prod(shapes[0])
        return n, n * np.dtype(shapes[1]).itemsize
    children = shapes.values() if isinstance(shapes, dict) else shapes
    totals = [_count(c) for c in children]
    return sum(t[0] for t in totals), sum(t[1] for t in totals)


def _name(layer: Any, short: bool = False) -> str:
    """``Conv2D(1, 32, (5, 5), use_bias=False)``: the class, its required fields and (unless
    ``short``) those that differ from their defaults; fields holding layers are left to the
    nested rows."""
    cls = type(layer).__name__
    if not attrs.has(type(layer)):
        return cls
    parts = []
    for field in attrs.fields(type(layer)):
        value = getattr(layer, field.name)
        if _holds_layers(value):
            continue
        if field.default is attrs.NOTHING:
            parts.append(repr(value))
        elif value != field.default and not short:
            parts.append(f"{field.name}={value!r}")
    text = f"{cls}({', '.join(parts)})"
    return text if len(text) <= 60 else text[:57] + "..."


def _holds_layers(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_holds_layers(v) for v in value)
    return all(callable(getattr(value, m, None)) for m in ("init", "forward", "backward"))
