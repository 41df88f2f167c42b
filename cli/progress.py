"""Rich progress bars and compact terminal charts for training runs (the library itself never
prints unless given a :class:`purenn.progress.ProgressBar`, whose bars these are)."""

from __future__ import annotations

import itertools
import math

from rich.console import Console
from rich.progress import Progress

from purenn.progress import bar_display, format_loss

__all__ = ["BLOCKS", "format_loss", "print_curves", "sparkline", "training_progress"]


def training_progress(console: Console) -> Progress:
    """A bar with the task's description, count, elapsed time and a free ``status`` field: the
    library's :func:`purenn.progress.bar_display`, so ``purenn mnist`` and ``fit(...,
    callback=ProgressBar())`` look alike."""
    return bar_display(console)


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


def line_chart(xs: list[float], ys: list[float], *, width: int = 60, height: int = 12,
               mark: float | None = None) -> list[str]:
    """``ys`` against ``xs`` (positive, drawn on a log scale) as text lines: a dot per column at
    the row of the column's mean value, the y axis labelled with its lowest and highest value
    and the x axis with its first and last. Values above the top (a loss that blew up: the top
    is at most twice the way from the lowest value to the first) show as ``^``; non-finite ones
    are left out. ``mark``: an x to point at under the axis (``▲``)."""
    points = [(math.log10(x), y) for x, y in zip(xs, ys) if x > 0 and math.isfinite(y)]
    if len(points) < 2:
        return []
    lo_x, hi_x = points[0][0], points[-1][0]
    lo_y = min(y for _, y in points)
    hi_y = max(y for _, y in points)
    first = points[0][1]
    if first > lo_y:
        hi_y = min(hi_y, lo_y + 2 * (first - lo_y))
    span_x, span_y = (hi_x - lo_x) or 1.0, (hi_y - lo_y) or 1.0
    columns: list[list[float]] = [[] for _ in range(width)]
    for x, y in points:
        columns[min(int((x - lo_x) / span_x * (width - 1) + 0.5), width - 1)].append(y)
    grid = [[" "] * width for _ in range(height)]
    for c, values in enumerate(columns):
        if values:
            v = sum(values) / len(values)
            row = min(int((v - lo_y) / span_y * (height - 1) + 0.5), height - 1) if v <= hi_y else height - 1
            grid[height - 1 - row][c] = "^" if v > hi_y else "•"
    label = max(len(f"{hi_y:.4g}"), len(f"{lo_y:.4g}"))
    lines = []
    for r, row in enumerate(grid):
        text = f"{hi_y:.4g}" if r == 0 else f"{lo_y:.4g}" if r == height - 1 else ""
        lines.append(f"{text:>{label}} │{''.join(row)}")
    lines.append(" " * label + " └" + "─" * width)
    left, right = f"{10 ** lo_x:.1e}", f"{10 ** hi_x:.1e}"
    lines.append(" " * (label + 2) + left + " " * max(width - len(left) - len(right), 1) + right)
    if mark is not None and mark > 0:
        c = min(max(int((math.log10(mark) - lo_x) / span_x * (width - 1) + 0.5), 0), width - 1)
        lines.insert(height + 1, " " * (label + 2 + c) + "▲")
    return lines
