"""``purenn plot``: training loss and test accuracy per epoch of runs and experiments, as a PNG.

Needs matplotlib (``pip install "purenn[plot]"``); drawn with its Agg canvas on a ``Figure`` of
its own (no pyplot, no global state). A run record draws one line per panel; an experiment record
draws, for each of its settings (one for an experiment without a grid), the mean over seeds with
a band (``--band``: ±1 standard deviation, the 95% confidence interval of the mean, or min to
max over seeds; :func:`band`), so recipes compare at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from purenn.errors import ArgumentError, RecordError
from purenn.experiments.compare_stats import CONFIDENCE, scipy_stats
from purenn.experiments.record import read_run_or_experiment
from purenn.experiments.summary import statistics
from purenn.io.atomic import check_distinct, check_writable
from purenn_cli.errors import fail
from purenn_cli.pictures import save_figure

#: The panels: a history's key and its title (the accuracy's names the set it was measured on,
#: :func:`accuracy_title`).
PANELS = (("loss", "training loss"), ("val_accuracy", "accuracy"))
#: The largest value drawn: matplotlib's axes overflow near the largest float. A record holding a
#: larger loss (a run that all but diverged) is refused here, and read by every other command.
MAX_DRAWN = 1e300
#: The loss axis is logarithmic when every loss drawn is in this range (matplotlib's log ticks
#: overflow over much more than 300 decades); linear otherwise.
LOG_RANGE = (1e-150, 1e150)
#: The bands ``--band`` draws around an experiment's mean, and how the figure names them.
BANDS = {"std": "band: ±1 standard deviation over seeds",
         "ci": "band: 95% confidence interval of the mean over seeds (Student's t)",
         "minmax": "band: min to max over seeds"}


def plot(
    records: Annotated[list[Path], typer.Argument(help="Run records and experiment records (`purenn mnist --record`, `--seeds ... --record`, `purenn xor --sweep N --record`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG file to write.")] = Path("curves.png"),
    width: Annotated[int, typer.Option(min=200, max=8000, help="Width of the image in pixels.")] = 1200,
    height: Annotated[int, typer.Option(min=150, max=8000, help="Height of the image in pixels.")] = 500,
    band_kind: Annotated[str, typer.Option("--band", help="An experiment's band around its mean over seeds: std (±1 standard deviation), ci (95% confidence interval of the mean; needs the stats extra) or minmax (min to max).")] = "std",
) -> None:
    """Draw training loss and test accuracy per epoch; several files overlay with a legend, and
    an experiment shows, per setting of its grid, its mean over its seeds with a band (--band:
    ±1 standard deviation, the 95% confidence interval of the mean, or min to max)."""
    console = Console()
    if band_kind not in BANDS:
        raise fail(console, f"--band must be one of {', '.join(BANDS)}, got {band_kind!r}")
    if band_kind == "ci":
        try:
            scipy_stats()
        except ArgumentError:
            raise fail(console, "--band ci needs SciPy (Student's t), which is not installed: "
                                "pip install \"purenn[stats]\" (or choose --band std or minmax)") from None
    try:
        check_writable(output)
    except ArgumentError as e:
        raise fail(console, f"--output: {e.message}") from None
    try:  # `plot E.json -o E.json` would replace the record with a picture
        check_distinct({"--output": output}, {f"the record {path}": path for path in records})
    except ArgumentError as e:
        raise fail(console, e.message) from None
    curves = [curve for path in records for curve in load_curves(console, path)]
    figure = save_figure(console, lambda: make_figure(curves, width, height, band_kind), output)
    for ax, (key, title) in zip(figure.axes, PANELS):
        title = accuracy_title(curves) if key == "val_accuracy" else title
        if not ax.get_lines():
            console.print(f"note: no file has a {title} per epoch (an XOR run has none); that panel is empty")
    drawn = any(c["experiment"] for c in curves)
    console.print(f"wrote {output} ({width} x {height}) from {len(records)} file(s)"
                  f"{'; ' + BANDS[band_kind] if drawn else ''}")


def load_curves(console: Console, path: Path) -> list[dict[str, Any]]:
    """A file's per-epoch curves, each ``{"label", "runs": [histories], "experiment": bool}``: a
    run record's one; an experiment's one per group of settings with a finished run."""
    try:
        kind, record = read_run_or_experiment(path)
    except RecordError as e:
        raise fail(console, e.message) from None
    if kind == "run":
        groups = [("", [record.get("history", [])], record.get("config", {}).get("evaluated_on", "test"))]
    else:
        groups = [(" ".join(f"{k}={v}" for k, v in g["settings"].items()),
                   [r["history"] for r in record["runs"] if r["group"] == i and r["status"] == "ok" and r["history"]],
                   _evaluated_on(record, g["settings"]))
                  for i, g in enumerate(record["groups"])]
        groups = [group for group in groups if group[1]]
        if not groups:
            raise fail(console, f"{path}: the experiment has no finished run with a per-epoch history to draw")
    if not any(h for _, histories, _ in groups for h in histories):
        raise fail(console, f"{path}: it holds no per-epoch history to draw")
    for key, title in PANELS:
        too_large = [(h["epoch"], h[key]) for _, histories, _ in groups for run in histories for h in run
                     if isinstance(h.get(key), (int, float)) and not abs(h[key]) <= MAX_DRAWN]
        if too_large:
            epoch, value = too_large[0]
            why = f"more than the {MAX_DRAWN:g}" if math.isfinite(value) else "not a finite number"
            raise fail(console, f"{path}: its {title} at epoch {epoch} is {value:g}, {why} that can be drawn")
    if kind == "run":
        return [{"label": _label(path.stem), "runs": groups[0][1], "experiment": False,
                 "evaluated_on": groups[0][2]}]
    return [{"label": _label(f"{path.stem}{' ' + name if name else ''} ({len(histories)} seeds)"),
             "runs": histories, "experiment": True, "evaluated_on": held_out}
            for name, histories, held_out in groups]


def _evaluated_on(record: dict[str, Any], settings: dict[str, Any]) -> str:
    """The set the per-epoch accuracy of an experiment's group of ``settings`` came from: the
    command line's runs say it by their ``validation`` setting (shared or in the grid); a study of
    your own function reports what ``fit(validation=...)`` measured, its validation set."""
    if record["kind"] != "mnist":
        return "validation"
    return "validation" if {**record["settings"], **settings}.get("validation") else "test"


def accuracy_title(curves: Sequence[dict[str, Any]]) -> str:
    """The accuracy panel's title: the set its curves were measured on (``test`` or
    ``validation``), or, when the files differ, "held-out" (each legend label then says which)."""
    sets = {c.get("evaluated_on", "test") for c in curves}
    return f"{sets.pop()} accuracy" if len(sets) == 1 else "held-out accuracy"


def _label(text: str) -> str:
    """A legend label shown as written (a ``$`` would start matplotlib's math mode)."""
    return text.replace("$", r"\$")


def epoch_values(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list[int], list[list[float]]]:
    """``(epochs, values)``: each epoch's values of ``key`` over runs' histories, as far as every
    run goes, the epochs where every run has a number."""
    length = min((len(h) for h in histories), default=0)
    epochs, values = [], []
    for i in range(length):
        found = [h[i].get(key) for h in histories]
        numbers = [float(v) for v in found if isinstance(v, (int, float))]
        if len(numbers) < len(found):
            continue
        epochs.append(histories[0][i]["epoch"])
        values.append(numbers)
    return epochs, values


def band(values: Sequence[float], kind: str) -> tuple[float, float]:
    """``(low, high)`` of one epoch's values over seeds: ``std`` the mean ± the sample standard
    deviation (0 for one value); ``ci`` the 95% confidence interval of the mean
    (Student's t, as :func:`~purenn.experiments.comparison.mean_interval`, from the exact mean and
    standard deviation; the mean for one value; needs SciPy);
    ``minmax`` the smallest and largest value."""
    summary = statistics(values)
    mean, std = summary["mean"], summary["std"]
    if kind == "std":
        return mean - std, mean + std
    if kind == "ci":  # Student's t around the exact mean and std (np.std overflows above ~1e154)
        if len(values) < 2:
            return mean, mean
        half = scipy_stats().t.ppf((1 + CONFIDENCE) / 2, len(values) - 1) * std / math.sqrt(len(values))
        return mean - half, mean + half
    if kind == "minmax":
        return summary["min"], summary["max"]
    raise ArgumentError(f"`kind` must be one of {tuple(BANDS)}, got {kind!r}")


def make_figure(curves: list[dict[str, Any]], width: int, height: int, band_kind: str = "std") -> Any:
    """The matplotlib Figure: one panel per metric, a line per run, an experiment's mean with its
    band (:func:`band` of ``band_kind``), named under the panels. Raises ImportError without
    matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(PANELS))
    mixed = accuracy_title(curves) == "held-out accuracy"
    for ax, (key, title) in zip(axes, PANELS):
        title = accuracy_title(curves) if key == "val_accuracy" else title
        ax.set_title(f"{title} per epoch")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        for i, curve in enumerate(curves):
            epochs, values = epoch_values(curve["runs"], key)
            if not epochs:
                continue
            mean = [statistics(v)["mean"] for v in values]
            color = f"C{i % 10}"
            label = f"{curve['label']} [{curve['evaluated_on']}]" if mixed else curve["label"]
            ax.plot(epochs, mean, color=color, marker="o" if len(epochs) < 30 else None,
                    markersize=3, label=label)
            if curve["experiment"]:
                lows, highs = zip(*(band(v, band_kind) for v in values))
                ax.fill_between(epochs, lows, highs, color=color, alpha=0.2, linewidth=0)
        low, high = LOG_RANGE
        if key == "loss" and all(low <= v <= high for line in ax.get_lines() for v in line.get_ydata()):
            ax.set_yscale("log")
        if key == "val_accuracy" and ax.get_lines():
            ax.yaxis.set_major_formatter(lambda v, _: f"{v:.1%}")
    if any(ax.get_lines() for ax in axes):
        axes[0].legend(loc="upper right", fontsize="small")
    if any(c["experiment"] for c in curves):
        figure.supxlabel(BANDS[band_kind], fontsize="small")
    return figure
