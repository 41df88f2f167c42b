"""``purenn compare A B``: is recipe B better than recipe A, by how much, and how sure are we?

A and B are experiment records (``purenn mnist --seeds 0-4 --record EXP.json``), or one group of a
sweep: ``EXP.json:lr=0.001`` (the settings as ``--set`` and the tables write them, several joined
by ``,``: ``EXP.json:lr=0.001,batch_size=64``; a number matches by value, so ``lr=1e-3`` is
``lr=0.001``). Each side's finished runs, keyed by seed, go to
:func:`purenn.experiments.comparison.compare`; failed and unfinished runs are skipped, saying so.
The report is :meth:`~purenn.experiments.comparison.Comparison.to_text` (labels as typed);
``--json`` writes its data, ``-o`` draws each side's per-seed results with their 95% intervals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from purenn.errors import ArgumentError, PurennError, RecordError
from purenn.experiments.comparison import METRICS, Comparison
from purenn.experiments.comparison import compare as compare_sides
from purenn.experiments.compare_stats import scipy_stats
from purenn.experiments.compare_text import seed_text
from purenn.experiments.record import read_experiment
from purenn.io.atomic import atomic_write_text, check_distinct, check_writable
from purenn_cli.errors import EXIT_USAGE, explain, fail
from purenn_cli.pictures import save_figure

#: ``PATH:NAME=VALUE...``: the first ``:`` followed by a setting's name and ``=`` ends the path.
GROUP_SPEC = re.compile(r"(?P<path>.+?):(?P<spec>[A-Za-z_]\w*=.*)", re.DOTALL)
STDOUT = "-"  #: ``--json -`` writes the data to standard output (the report then goes to stderr)


def compare(
    a: Annotated[str, typer.Argument(help="Side A: an experiment record EXP.json, or one group of a sweep, EXP.json:lr=0.001 (several settings joined by ',').", metavar="A", show_default=False)],
    b: Annotated[str, typer.Argument(help="Side B, written as A; differences are B - A.", metavar="B", show_default=False)],
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the comparison as JSON data to this file ('-': standard output).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Draw each side's per-seed results, mean and 95% interval per metric to this PNG (needs the plot extra).")] = None,
) -> None:
    """Compare recipe B with recipe A over seeds: per metric (test accuracy, final loss, training
    time) each side's mean with its 95% interval, the difference B - A with t and bootstrap
    intervals, the paired t test when both ran the same seeds (else Welch's), the chance a run
    of B beats a run of A, the seeds needed to detect such a difference, and one sentence."""
    to_stdout = json_file is not None and str(json_file) == STDOUT
    console = Console(stderr=to_stdout)
    (path_a, spec_a), (path_b, spec_b) = split_side(a), split_side(b)
    _check_outputs(console, None if to_stdout else json_file, output, path_a, path_b)
    try:
        scipy_stats()
    except ArgumentError as e:
        raise fail(console, e.message, EXIT_USAGE) from None
    side_a = load_side(console, path_a, spec_a, a)
    side_b = load_side(console, path_b, spec_b, b)
    result = compare_sides(side_a, side_b, labels=(a, b))
    lines = result.to_text().splitlines()
    console.print(lines[0], style="bold", markup=False, highlight=False, soft_wrap=True)
    console.print("\n".join(lines[1:]), markup=False, highlight=False, soft_wrap=True)
    if json_file is not None:
        _write_json(console, json_file, result, to_stdout)
    if output is not None:
        _write_picture(console, output, result, side_a, side_b)


def split_side(text: str) -> tuple[Path, str | None]:
    """``(path, group spec or None)`` of a side as typed: a file that exists is taken whole (its
    name may hold a ``:``), else ``PATH:NAME=VALUE...`` is split at :data:`GROUP_SPEC`."""
    try:
        whole = Path(text).is_file()
    except OSError:  # a name too long, a folder that cannot be searched: not a file to take whole
        whole = False
    if whole:
        return Path(text), None
    match = GROUP_SPEC.fullmatch(text)
    if match is None:
        return Path(text), None
    return Path(match["path"]), match["spec"]


def _check_outputs(console: Console, json_file: Path | None, output: Path | None, a: Path, b: Path) -> None:
    """Both outputs writable, neither one of the records read nor the other output."""
    for option, path in (("--json", json_file), ("--output", output)):
        if path is not None:
            try:
                check_writable(path)
            except ArgumentError as e:
                raise fail(console, f"{option}: {e.message}") from None
    try:
        check_distinct({"--json": json_file, "--output": output}, {f"the record {a}": a, f"the record {b}": b})
    except ArgumentError as e:
        raise fail(console, e.message) from None


# --- a side -------------------------------------------------------------------------------------


def load_side(console: Console, path: Path, spec: str | None, label: str) -> dict[int, dict[str, Any]]:
    """The finished runs of the group of ``path``'s experiment that ``spec`` names (the only
    group without one), ``{seed: metrics}``; says which runs were skipped, and why."""
    try:
        record = read_experiment(path)
    except RecordError as e:
        advice = ("; compare takes experiment records (purenn mnist --seeds 0-4 --record EXP.json)"
                  if "is not a purenn experiment record" in e.message else "")
        raise fail(console, f"{label}: {e.message}{advice}") from None
    group = select_group(console, path, record, spec)
    runs = [r for r in record["runs"] if r["group"] == group]
    _say_skipped(console, label, runs)
    return {r["seed"]: dict(r["metrics"]) for r in runs if r["status"] == "ok"}


def parse_spec(console: Console, spec: str) -> dict[str, str]:
    """``"lr=0.001,batch_size=64"`` -> ``{"lr": "0.001", "batch_size": "64"}`` (values as typed)."""
    settings: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name.isidentifier() or not value:
            raise fail(console, f"group {spec!r}: write NAME=VALUE, several joined by ',' "
                                "(e.g. EXP.json:lr=0.001,batch_size=64)")
        if name in settings:
            raise fail(console, f"group {spec!r}: {name} is given twice; give it once")
        settings[name] = value
    return settings


def same_setting(text: str, value: Any) -> bool:
    """Whether ``text`` as typed names the setting ``value`` a record holds: numbers by value
    (``1e-3`` is 0.001), booleans and none/null by word, strings exactly."""
    if value is None:
        return text.lower() in ("none", "null")
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, int):  # an integer as typed, exactly: 10**20 + 1 is not 1e20
        try:
            return int(text) == value
        except ValueError:  # "1e3", "64.0": by value, below
            pass
    if isinstance(value, (int, float)):
        try:
            return float(text) == value
        except ValueError:
            return False
    return bool(text == value)


def group_text(path: Path, settings: dict[str, Any]) -> str:
    """How a group is named on the command line: ``EXP.json:lr=0.001,batch_size=64``."""
    return f"{path}:" + ",".join(f"{k}={v}" for k, v in settings.items()) if settings else str(path)


def select_group(console: Console, path: Path, record: dict[str, Any], spec: str | None) -> int:
    """The index of the one group of ``record`` whose settings (its own and the shared ones)
    ``spec`` matches; without a spec, the only group. Refused, listing the groups, otherwise."""
    groups = [g["settings"] for g in record["groups"]]
    listing = ", ".join(group_text(path, g) for g in groups)
    if spec is None:
        if len(groups) == 1:
            return 0
        raise fail(console, f"{path} holds {len(groups)} groups of settings; name one: {listing}")
    wanted = parse_spec(console, spec)
    known = {**record["settings"], **record["grid"]}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise fail(console, f"{path}:{spec}: {', '.join(unknown)} is not a setting of this experiment; "
                            f"its groups: {listing}")
    matches = [i for i, g in enumerate(groups)
               if all(same_setting(text, {**record["settings"], **g}[name]) for name, text in wanted.items())]
    if not matches:
        raise fail(console, f"{path}:{spec} matches no group; its groups: {listing}")
    if len(matches) > 1:
        raise fail(console, f"{path}:{spec} matches {len(matches)} groups "
                            f"({', '.join(group_text(path, groups[i]) for i in matches)}); name one")
    return matches[0]


def _say_skipped(console: Console, label: str, runs: list[dict[str, Any]]) -> None:
    for status, words in (("failed", "failed"), ("not_started", "not finished")):
        seeds = [r["seed"] for r in runs if r["status"] == status]
        if seeds:
            console.print(escape(f"note: {label}: {len(seeds)} run(s) {words} (seeds {seed_text(sorted(seeds))}); "
                                 "skipped"), highlight=False, soft_wrap=True)


# --- outputs ------------------------------------------------------------------------------------


def _write_json(console: Console, path: Path, result: Comparison, to_stdout: bool) -> None:
    text = json.dumps(result.to_data(), indent=2, allow_nan=False) + "\n"
    if to_stdout:
        typer.echo(text, nl=False)
        return
    try:
        atomic_write_text(path, text)
    except (PurennError, OSError) as e:
        raise fail(console, f"--json: {explain(e) if isinstance(e, PurennError) else e}") from None
    console.print(escape(f"wrote {path}"), highlight=False)


def _write_picture(console: Console, path: Path, result: Comparison, a: dict[int, dict[str, Any]],
                   b: dict[int, dict[str, Any]]) -> None:
    save_figure(console, lambda: make_figure(result, a, b), path, "--output")
    console.print(escape(f"wrote {path}"), highlight=False)


def per_seed(side: dict[int, dict[str, Any]], metric: str) -> dict[int, float]:
    """A side's values of ``metric`` by seed, in the seeds' order (runs without it left out)."""
    return {seed: float(side[seed][metric]) for seed in sorted(side) if side[seed].get(metric) is not None}


def make_figure(result: Comparison, a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> Any:
    """One panel per metric compared: each side's per-seed values as points, its mean with its
    95% interval as an error bar, the runs of one seed joined by a thin line when paired.
    Raises ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(result.metrics)
    figure = Figure(figsize=(4 * n, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n, squeeze=False)[0]
    for ax, m in zip(axes, result.metrics):
        words, better, unit = METRICS[m.metric]
        values = (per_seed(a, m.metric), per_seed(b, m.metric))
        xs = [[x + 0.06 * ((i % 5) - 2) for i in range(len(v))] for x, v in enumerate(values)]
        if m.test == "paired t":  # the same seeds, in the same order: one thin line per seed
            for xa, xb, ya, yb in zip(xs[0], xs[1], values[0].values(), values[1].values()):
                ax.plot([xa, xb], [ya, yb], color="0.6", linewidth=0.6, zorder=1)
        for x, side, mean, (low, high) in ((0, values[0], m.mean_a, m.interval_a),
                                           (1, values[1], m.mean_b, m.interval_b)):
            ax.scatter(xs[x], list(side.values()), s=14, color=f"C{x}", alpha=0.7, zorder=2)
            ax.errorbar([x + 0.25], [mean], yerr=[[mean - low], [high - mean]], fmt="D", color=f"C{x}",
                        capsize=5, markersize=6, zorder=3)
        ax.set_xticks([0, 1], [_tick("A", result.label_a), _tick("B", result.label_b)], fontsize="small")
        ax.set_xlim(-0.5, 1.6)
        test = f"p = {m.p_value:.2g}" if m.p_value is not None else m.state
        ax.set_title(f"{words}{' (' + unit.strip() + ')' if unit else ''}, {better} is better\n"
                     f"B - A = {m.difference:+.4g} ({m.test}, {test})", fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    figure.suptitle("per-seed results (dots), mean and 95% interval (diamond and bar)", fontsize="small")
    return figure


def _tick(letter: str, label: str, width: int = 28) -> str:
    """An axis label: the side's letter and its label, cut to ``width`` characters from the end
    (a group's settings are at the end), ``$`` shown as written."""
    text = label if len(label) <= width else "..." + label[-(width - 3):]
    return f"{letter}\n{text}".replace("$", r"\$")
