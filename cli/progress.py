"""Rich progress bars and compact terminal charts for training runs (the library itself never
prints)."""

from __future__ import annotations

import itertools
import math

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


BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 50) -> str:
    """``values`` as a line of block characters, low to high, at most ``width`` of them (longer
    series are averaged in equal slices). Non-finite values show as spaces."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in itertools.pairwise(edges)]
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(" ")
        else:
            out.append(BLOCKS[0 if span == 0 else min(int((v - low) / span * len(BLOCKS)), len(BLOCKS) - 1)])
    return "".join(out)


def print_curves(console: Console, losses: list[float], accuracies: list[float | None], label: str = "") -> None:
    """A compact chart of a run: training loss and test accuracy per epoch, with first and last
    values (no accuracy line when there is none)."""
    if not losses:
        return
    title = f"per epoch{f' ({label})' if label else ''}, first to last:"
    console.print(title, highlight=False)
    console.print(f"  loss      {sparkline(losses)}  {format_loss(losses[0])} → {format_loss(losses[-1])}",
                  highlight=False)
    acc = [a for a in accuracies if a is not None]
    if acc and len(acc) == len(accuracies):
        console.print(f"  accuracy  {sparkline(acc)}  {acc[0]:.2%} → {acc[-1]:.2%}", highlight=False)
