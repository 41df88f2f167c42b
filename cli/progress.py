"""Rich progress bars for training runs (the library itself never prints)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def training_progress(console: Console) -> Progress:
    """A bar with the task's description, count, elapsed time and a free ``status`` field."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )


def format_loss(value: float, digits: int = 4) -> str:
    """A loss with ``digits`` decimals, in scientific notation from 10000 on, so that a diverging
    run does not stretch the progress bar's line."""
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3e}"
