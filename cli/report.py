"""Shared pieces of the MNIST commands: loading data with friendly errors, result tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from purenn.errors import DataError
from purenn.io.datasets import Dataset, load_mnist
from purenn.metrics import confusion_matrix
from purenn.summary import ModelSummary, format_shape
from purenn_cli.errors import explain, fail


def load_data(console: Console, data_dir: Path | None, dataset: str,
              splits: tuple[str, ...] = ("train", "test")) -> Dataset:
    """``load_mnist`` (only ``splits``) with its errors shown as the command line's messages."""
    try:
        with console.status(f"loading {dataset}..."):
            return load_mnist(data_dir, dataset=dataset, splits=splits)
    except DataError as e:
        raise fail(console, explain(e)) from None


def per_class_table(outputs: np.ndarray, labels: np.ndarray, title: str) -> Table:
    """Accuracy per class and the confusion matrix (rows: true class, columns: predicted), for
    every class the model can predict or the labels hold."""
    classes = max(outputs.shape[1] if outputs.ndim == 2 and outputs.shape[1] > 1 else 2,
                  int(labels.max(initial=0)) + 1)
    m = confusion_matrix(outputs, labels, num_classes=classes)
    table = Table(title=title)
    table.add_column("true", justify="right")
    for j in range(m.shape[1]):
        table.add_column(f"→{j}", justify="right")
    table.add_column("accuracy", justify="right")
    for i, row in enumerate(m):
        cells = [f"[bold]{v}[/bold]" if i == j else (str(v) if v else "·") for j, v in enumerate(row)]
        acc = row[i] / row.sum() if row.sum() else float("nan")
        table.add_row(str(i), *cells, f"{acc:.2%}")
    return table




_SUMMARY_COLUMNS = ("output shape", "params", "state")


def _widest(rows: list[tuple[str, ...]], column: int, header: str) -> int:
    return max([len(header), *(len(row[column]) for row in rows)])


def print_summary(console: Console, summary: ModelSummary, title: str, *, compact: bool = False) -> None:
    """A model's :func:`purenn.summary` as a table (every layer, or with ``compact`` the model's
    own layers, named shortly, without what is inside its blocks), then its totals."""
    rows = summary.table(0 if compact else None, short=compact)
    table = Table(title=title, box=box.SIMPLE_HEAD)
    # a row per layer, even when narrow: the names are abbreviated (…) to leave the other columns
    # their full width, which rich would otherwise drop whole on a narrow terminal
    others = [_widest(rows, i, header) for i, header in enumerate(_SUMMARY_COLUMNS, start=1)]
    # each column is padded by one space a side, and the table's edges take one more each
    room = console.width - sum(others) - 2 * (len(others) + 1) - 2
    table.add_column("layer", no_wrap=True, overflow="ellipsis", max_width=max(room, 8))
    for header, width in zip(_SUMMARY_COLUMNS, others):
        table.add_column(header, justify="left" if header == "output shape" else "right",
                         no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"input {format_shape(summary.input_shape)}, output "
                  f"{format_shape(summary.output_shape)}; {summary.totals()}", highlight=False)
