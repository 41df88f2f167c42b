"""Model summaries: each layer's output shape, parameter count and state size, without running it.

::

    >>> print(pn.summary(model, (784,)))        # per-sample input shape, no batch axis

Shapes come from each layer's ``output_shape`` and counts from ``param_shapes()`` and
``state_shapes()``, so nothing is allocated and no batch is run: a summary of a model too big to
initialise still works, and a layer that cannot take its input is named before any training. A
layer that does not define ``output_shape`` (your own, perhaps) shows ``?`` from there on.
Containers (``Sequential``, ``Residual``, ``Parallel``) get a row with their totals and their
children indented below it.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import attrs
import numpy as np

from purenn.errors import ShapeError
from purenn.errors import ArgumentTypeError
from purenn.layers.base import output_shape, param_shapes, state_shapes
from purenn.layers.blocks import Parallel, Residual
from purenn.layers.sequential import Sequential
from purenn.validation import check, to_shape
from purenn.validation import shape as shape_rule

__all__ = ["summary", "ModelSummary", "SummaryRow"]

_BATCH = 1  # the batch size the shapes are inferred with (any size gives the same per-sample shapes)


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
    if not all(callable(getattr(model, m, None)) for m in ("init", "forward", "backward")):
        raise ArgumentTypeError(f"summary describes a layer or model (with init, forward and "
                                f"backward), got {model!r:.80}")
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (int(input_shape),)
    input_shape = check("input_shape", input_shape, shape_rule, to_shape)
    rows = list(_rows(model, (_BATCH, *input_shape), 0))
    out = _output(model, (_BATCH, *input_shape))
    params, pbytes = _count(param_shapes(model))
    state, sbytes = _count(state_shapes(model))
    if isinstance(model, Sequential):  # the model itself is the table, not a row of it
        rows = [attrs.evolve(r, depth=r.depth - 1) for r in rows[1:]]
    return ModelSummary(tuple(input_shape), None if out is None else out[1:], tuple(rows),
                        params, state, pbytes, sbytes)


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
