"""Shared pieces of the MNIST commands: loading data with friendly errors, result tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from purenn.errors import DataError
from purenn.io.datasets import Dataset, load_mnist
from purenn.metrics import confusion_matrix


def fail(console: Console, message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load_data(console: Console, data_dir: Path | None, dataset: str, flatten: bool = True) -> Dataset:
    """``load_mnist`` with its errors shown as messages, not tracebacks."""
    try:
        with console.status(f"loading {dataset}..."):
            return load_mnist(data_dir, dataset=dataset, flatten=flatten)
    except (DataError, ValueError) as e:
        raise fail(console, str(e)) from None


def per_class_table(outputs: np.ndarray, labels: np.ndarray, title: str) -> Table:
    """Accuracy per class and the confusion matrix (rows: true class, columns: predicted)."""
    m = confusion_matrix(outputs, labels, num_classes=int(labels.max()) + 1)
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


