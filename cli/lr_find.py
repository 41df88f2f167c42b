"""``purenn lr-find``: a learning-rate range test of a preset on MNIST
(:func:`purenn.lr_range_test`): the loss as the learning rate grows, a suggested rate, a chart in
the terminal, and a PNG with ``-o`` (matplotlib: ``pip install "purenn[plot]"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from purenn.errors import ArgumentError
from purenn.io.atomic import check_writable
from purenn.io.datasets import DATASETS
from purenn.losses import one_hot
from purenn.lr_range import LRRangeResult, lr_range_test
from purenn.recipes.presets import LOSSES, PRESETS
from purenn_cli.errors import fail
from purenn_cli.pictures import save_figure
from purenn_cli.options import positive_float
from purenn_cli.progress import line_chart
from purenn_cli.report import load_data

STOPPED = {"end": "reached --end", "diverged": "the smoothed loss diverged (4x its lowest)",
           "non-finite loss": "the loss stopped being finite"}


def lr_find(
    preset: Annotated[str, typer.Option(help=f"Training recipe: {', '.join(PRESETS)}; its model, loss, optimizer (its learning rate replaced) and batch size.")] = "mlp",
    start: Annotated[float, typer.Option(callback=positive_float, help="First learning rate.")] = 1e-6,
    end: Annotated[float, typer.Option(callback=positive_float, help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=2, max=100_000, help="Steps at most (one learning rate each, growing exponentially).")] = 100,
    limit: Annotated[int | None, typer.Option(min=1, help="Use the first N training samples only.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of initialisation and shuffling.")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files [default: $PURENN_DATA, else the cache].")] = None,
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASETS)}.")] = "mnist",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also draw the curve to this PNG (needs matplotlib: pip install \"purenn[plot]\").")] = None,
) -> None:
    """Find a learning rate: train a preset briefly with an exponentially growing rate, stop when
    the loss blows up, and suggest the rate where the smoothed loss fell fastest."""
    console = Console()
    if preset not in PRESETS:
        raise fail(console, f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if dataset not in DATASETS:
        raise fail(console, f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    if not end > start:
        raise fail(console, f"--end ({end:g}) must be above --start ({start:g})")
    if output is not None:
        try:
            check_writable(output)
        except ArgumentError as e:
            raise fail(console, f"--output: {e.message}") from None
    data = load_data(console, data_dir, dataset, splits=("train",))
    assert data.train is not None
    with console.status(f"range test of the {preset} preset: {start:g} to {end:g} in {steps} steps..."):
        result = run(preset, data.train.images, data.train.labels, start=start, end=end, steps=steps,
                     limit=limit, seed=seed)
    report(console, preset, result)
    if output is not None:
        write_png(console, result, output)


def run(preset: str, images: np.ndarray, labels: np.ndarray, *, start: float, end: float, steps: int,
        limit: int | None, seed: int) -> LRRangeResult:
    """The range test of ``preset`` on the first ``limit`` of ``images`` and ``labels``, from the
    params the preset's run of ``seed`` starts from."""
    p = PRESETS[preset]
    x, y = images[:limit], labels[:limit]
    init_rng, train_rng = np.random.default_rng(seed).spawn(2)  # as a preset's run spawns them
    return lr_range_test(p.model, p.model.init(init_rng), x, one_hot(y, 10) if p.one_hot_targets else y,
                         loss=LOSSES[p.loss], optimizer=p.make_optimizer(steps), start=start, end=end,
                         steps=steps, batch_size=p.batch_size, shuffle=p.shuffle, seed=train_rng,
                         state=p.model.init_state())


def report(console: Console, preset: str, result: LRRangeResult) -> None:
    """The chart of the smoothed loss, where the test stopped and the suggestion."""
    console.print(f"smoothed training loss against the learning rate ({preset} preset, "
                  f"{result.steps} steps):", highlight=False)
    for line in line_chart(list(result.lrs), list(result.smoothed), mark=result.suggested_lr):
        console.print(line, highlight=False, markup=False)
    console.print(f"stopped after {result.steps} steps: {STOPPED[result.stopped]} at lr "
                  f"{result.lrs[-1]:.2e}", highlight=False)
    if result.suggested_lr is None:
        console.print("no suggestion: the loss did not fall over enough steps; try a lower --start "
                      "or more --steps", highlight=False)
        return
    console.print(f"suggested lr [bold]{result.suggested_lr:.2e}[/bold] (steepest descent of the smoothed "
                  f"loss, ▲); lowest loss at lr {result.min_loss_lr:.2e}, a tenth of which is "
                  f"{result.min_loss_lr / 10:.2e}", highlight=False)  # type: ignore[operator]
    console.print(f"train with it: purenn mnist --preset {preset} --lr {result.suggested_lr:.2e}",
                  highlight=False, markup=False)


def write_png(console: Console, result: LRRangeResult, output: Path) -> None:
    """Draw the raw and smoothed losses against the learning rate (log scale) to ``output``."""
    save_figure(console, lambda: make_figure(result), output)
    console.print(f"wrote {output}", highlight=False, markup=False)


def make_figure(result: LRRangeResult) -> Any:
    """The matplotlib Figure (Agg canvas, no pyplot). Raises ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    finite = np.isfinite(result.losses)
    ax.plot(result.lrs[finite], result.losses[finite], color="C0", alpha=0.3, label="loss per step")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed")
    if result.suggested_lr is not None:
        ax.axvline(result.suggested_lr, color="C3", linestyle="--",
                   label=f"suggested {result.suggested_lr:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ok = result.smoothed[np.isfinite(result.smoothed)]
    if ok.size > 1 and ok[0] > ok.min():  # from the lowest loss to twice the fall, not the blow-up
        low = min(ok.min(), result.losses[finite].min())
        ax.set_ylim(low - 0.05 * (ok[0] - low), ok.min() + 2 * (ok[0] - ok.min()))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return figure
