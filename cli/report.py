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




def print_summary(console: Console, summary: ModelSummary, title: str, *, compact: bool = False) -> None:
    """A model's :func:`purenn.summary` as a table (every layer, or with ``compact`` the model's
    own layers, named shortly, without what is inside its blocks), then its totals."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("layer", no_wrap=True, overflow="ellipsis")  # a row per layer, even when narrow
    table.add_column("output shape", no_wrap=True)
    table.add_column("params", justify="right")
    table.add_column("state", justify="right")
    for row in summary.table(0 if compact else None, short=compact):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"input {format_shape(summary.input_shape)}, output "
                  f"{format_shape(summary.output_shape)}; {summary.totals()}", highlight=False)
