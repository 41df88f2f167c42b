"""Experiments on the command line, every one through :func:`purenn.experiments.run`: a progress
bar per running run, a table of every run, a table per setting (mean ± std, min, max and the 95%
confidence interval of the mean), the records, and on Ctrl-C or SIGTERM how to continue."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from purenn.errors import ArgumentError, PurennError
from purenn.experiments.comparison import mean_interval
from purenn.experiments.record import groups_of, read_experiment, run_settings
from purenn.experiments.runner import Outcome, default_jobs, run_all
from purenn.experiments.study import Study, call_run, load_function, own_function
from purenn.experiments.study import run as run_experiment
from purenn.experiments.summary import per_epoch
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.progress import format_loss, print_curves, training_progress
from purenn_cli.report import load_data
from purenn_cli.signals import EXIT_CODES

Key = tuple[int, int]  # (group, seed)


def run_study(console: Console, fn: Callable[..., Any], *, what: str, record: Path | None,
              **arguments: Any) -> Study:
    """:func:`purenn.experiments.run` with progress bars: one for the whole experiment, one per
    running run (gone when it ends). Ctrl-C or SIGTERM stops the runs; the command then says what
    the record keeps and how to continue, and exits 130 or 143."""
    runs = len(arguments.get("seeds", ())) * _groups(arguments.get("grid") or {})
    console.print(f"{what}: {runs} run{'s' if runs != 1 else ''}, {_where(arguments)}", highlight=False)
    _say_continued(console, record)
    with progress_bars(console, runs, labeler(arguments.get("grid") or {})) as (progress, on_event), \
            _sigterm_as_interrupt() as received:  # the runner then stops its workers, as for Ctrl-C
        try:
            return run_experiment(fn, record=record, on_event=on_event, **arguments)
        except KeyboardInterrupt:
            progress.stop()
            _interrupted(console, received, record)


def run_calls(console: Console, calls: dict[Key, Any], *, jobs: int, what: str,
              label: Callable[[Key], str]) -> list[Outcome]:
    """Make the runs ``calls`` (:class:`purenn.experiments.study.Call` s, by ``(group, seed)``)
    with progress bars, as :func:`run_study` does, without a record: Ctrl-C or SIGTERM stops
    them and the command (130, 143)."""
    where = f"in {jobs} worker processes" if jobs > 1 else "in this process"
    console.print(f"{what}: {len(calls)} run{'s' if len(calls) != 1 else ''}, {where}", highlight=False)
    with progress_bars(console, len(calls), label) as (progress, on_event), \
            _sigterm_as_interrupt() as received:
        try:
            return run_all(call_run, calls, jobs=jobs, on_event=on_event)
        except KeyboardInterrupt:
            progress.stop()
            _interrupted(console, received, None)


@contextlib.contextmanager
def progress_bars(console: Console, total: int, label: Callable[[Key], str]) -> Iterator[tuple[Progress, Any]]:
    """A bar for all ``total`` runs and one per running run (gone when it ends), and the
    ``on_event(key, event, data)`` that drives them."""
    lock = threading.Lock()
    with training_progress(console) as progress:
        overall = progress.add_task("runs", total=total, status="")
        bars: dict[Key, TaskID] = {}
        starts: dict[Key, int] = {}
        ended: set[Key] = set()

        def on_event(key: Key, event: str, data: dict[str, Any]) -> None:
            with lock:
                if key in ended:  # a worker's last report, arriving after the result
                    return
                if event == "end":
                    ended.add(key)
                _show(progress, overall, bars, starts, key, event, data, label)

        yield progress, on_event


def _groups(grid: dict[str, Any]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def _where(arguments: dict[str, Any]) -> str:
    if arguments.get("scheduler"):
        return f"on the Dask cluster at {arguments['scheduler']}"
    jobs = arguments.get("jobs", 1)
    return f"in {jobs} worker processes" if jobs > 1 else "in this process"


def _say_continued(console: Console, record: Path | None) -> None:
    """When ``record`` holds an experiment already, say what it keeps (the library checks that it
    is this one, and refuses it otherwise)."""
    if record is None or not record.exists():
        return
    with contextlib.suppress(PurennError):
        summary = read_experiment(record)["summary"]
        total = sum(summary.values())
        console.print(f"continuing {record}: {summary['ok']} of {total} runs finished before; the "
                      "others run now", highlight=False)


def _interrupted(console: Console, received: list[int], record: Path | None) -> NoReturn:
    """What an interrupted experiment says, and its exit (130 for Ctrl-C, 143 for SIGTERM)."""
    signum = signal.SIGTERM if received else signal.SIGINT
    name = "SIGTERM" if received else "Ctrl-C"
    if record is None:
        console.print(f"[yellow]interrupted[/yellow] ({name}): the runs were stopped and nothing was "
                      "written", highlight=False)
        raise typer.Exit(EXIT_CODES[signum])
    try:
        summary = read_experiment(record)["summary"]
        kept = f"{summary['ok']} finished run(s) of {sum(summary.values())} are kept in {record}"
    except PurennError:
        kept = f"nothing was finished: {record} was not written"
    console.print(escape(f"interrupted ({name}): the runs in progress were stopped; {kept}. Continue "
                         f"with: purenn resume {record} (or run the same command again)"),
                  highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_CODES[signum])


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """While inside, the first SIGTERM raises KeyboardInterrupt (later ones are only noted, so
    the workers are stopped in peace) and is added to the list the block gets."""
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def labeler(grid: dict[str, Any]) -> Callable[[Key], str]:
    """How a run is called: ``seed 3``, or in a grid ``lr=0.001 batch_size=64 seed 3``."""
    groups = [" ".join(f"{k}={v}" for k, v in g.items()) for g in groups_of(grid)]

    def label(key: Key) -> str:
        return f"{groups[key[0]]} seed {key[1]}".strip()

    return label


def _show(progress: Progress, overall: TaskID, bars: dict[Key, TaskID], starts: dict[Key, int],
          key: Key, event: str, data: dict[str, Any], label: Callable[[Key], str]) -> None:
    if event == "start":
        starts[key] = starts.get(key, 0) + 1
        again = f" (attempt {starts[key]})" if starts[key] > 1 else ""
        if key in bars:
            progress.remove_task(bars.pop(key))
        bars[key] = progress.add_task(f"  {escape(label(key))}{again}", total=None, status="starting")
    elif event == "step" and key in bars:
        progress.update(bars[key], completed=data["done"], total=data["total"])
    elif event == "epoch" and key in bars:
        accuracy = data.get("accuracy")
        status = f"epoch {data['epoch']}/{data['epochs']}  loss {format_loss(data['loss'])}"
        if accuracy is not None:
            status += f"  test accuracy {accuracy:.2%}"
        progress.update(bars[key], status=status)
    elif event == "end":
        if key in bars:
            progress.remove_task(bars.pop(key))
        progress.update(overall, advance=1,
                        status="" if data.get("status") == "ok" else f"{escape(label(key))} failed")


# --- tables -------------------------------------------------------------------------------------


Format = Callable[[Any], str]


def show_study(console: Console, study: Study, title: str, columns: list[tuple[str, str, Format]]) -> None:
    """Every run's results (``columns``: header, metric, format), then per setting the statistics
    of each metric, then the mean curves of each setting's finished runs."""
    console.print(runs_table(study, title, columns))
    console.print(groups_table(study, columns))
    for group in study.groups:
        histories = [r.history for r in group.runs if r.status == "ok" and r.history]
        if histories:
            label = _settings_text(group.settings)
            print_curves(console, per_epoch(histories, "loss")[1], per_epoch(histories, "val_accuracy")[1],
                         f"mean over {len(histories)} seeds{', ' + label if label else ''}")


def runs_table(study: Study, title: str, columns: list[tuple[str, str, Format]]) -> Table:
    """A row per run: its grid settings, seed and ``columns``; failed runs show their error."""
    names = list(study.record["grid"])
    table = Table(title=escape(title))
    for name in names:
        table.add_column(escape(name), justify="right")
    table.add_column("seed", justify="right")
    for header, _, _ in columns:
        table.add_column(header, justify="right")
    table.add_column("", justify="left")
    for run in study.runs:
        cells = [escape(str(run.settings[n])) for n in names] + [str(run.seed)]
        if run.status != "ok":
            note = ("not run (interrupted)" if run.status == "not_started"
                    else f"[red]failed[/red]: {escape(str(run.error))}")
            table.add_row(*cells, *["-"] * len(columns), note)
            continue
        note = f"ran {run.attempts} times (a worker died)" if run.attempts > 1 else ""
        table.add_row(*cells, *[fmt(run.metrics.get(key)) for _, key, fmt in columns], note)
    return table


def groups_table(study: Study, columns: list[tuple[str, str, Format]]) -> Table:
    """Per setting and metric: finished runs, mean ± std, min, max and the 95% confidence
    interval of the mean (Student's t; the ``stats`` extra, else a note saying to install it)."""
    names = list(study.record["grid"])
    table = Table(title="per setting: over the finished runs")
    for name in names:
        table.add_column(escape(name), justify="right")
    for header in ("metric", "runs", "mean ± std", "min", "max", "95% CI of the mean"):
        table.add_column(header, justify="right" if header != "metric" else "left")
    for group in study.groups:
        cells = [escape(str(group.settings[n])) for n in names]
        for i, (header, key, fmt) in enumerate(columns):
            s = group.summary["metrics"].get(key)
            if s is None or s["n"] == 0:
                table.add_row(*cells, header, "0", "-", "-", "-", "-")
            else:
                table.add_row(*cells, header, str(s["n"]), f"{fmt(s['mean'])} ± {fmt(s['std'])}",
                              fmt(s["min"]), fmt(s["max"]), _interval(group.values(key), fmt))
            cells = [""] * len(names)
        table.add_section()
    return table


def _interval(values: list[Any], fmt: Format) -> str:
    try:
        interval = mean_interval([float(v) for v in values])
    except ArgumentError:
        return escape('needs SciPy: pip install "purenn[stats]"')
    if interval is None:
        return "- (one run)"
    return escape(f"[{fmt(interval[0])}, {fmt(interval[1])}]")


def _settings_text(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def finished_or_exit(console: Console, study: Study, record: Path | None) -> None:
    """Exit 1 (after saying which) when a run failed."""
    failed = [r for r in study.runs if r.status == "failed"]
    if failed:
        where = "; the record lists them with their errors" if record is not None else ""
        label = labeler(study.record["grid"])
        console.print(f"[red]{len(failed)} of {len(study.runs)} runs failed[/red] "
                      f"({escape(', '.join(label((r.group, r.seed)) for r in failed))}){where}",
                      highlight=False)
        raise typer.Exit(EXIT_FAILED)


def resume_experiment(console: Console, path: Path, *, jobs: int | None, scheduler: str | None,
                      data_dir: Path | None, checkpoint_dir: Path | None, function: str | None) -> None:
    """``purenn resume EXP.json``: run what the experiment recorded in ``path`` is missing (not
    started, or failed) with the settings its record holds; its code, when it is the caller's
    own, only when ``function`` names it."""
    try:
        experiment = read_experiment(path)
    except PurennError as e:
        raise fail(console, explain(e)) from None
    missing = [i for i, r in enumerate(experiment["runs"]) if r["status"] != "ok"]
    if not missing:
        console.print(f"{path}: nothing to resume, all {len(experiment['runs'])} runs finished", highlight=False)
        return
    fn = run_function(console, path, experiment, function, "resume")
    if experiment["kind"] == "mnist":
        for dataset in dict.fromkeys(run_settings(experiment, i).get("dataset", "mnist") for i in missing):
            load_data(console, data_dir, dataset, splits=("test",))
    study = run_study(console, fn, what=f"resuming {path} ({len(missing)} runs missing)", record=path,
                      seeds=experiment["seeds"], grid=experiment["grid"], settings=experiment["settings"],
                      jobs=jobs or (1 if scheduler else default_jobs(len(missing))), scheduler=scheduler,
                      checkpoint_dir=checkpoint_dir,
                      options={"data_dir": None if data_dir is None else str(data_dir.resolve())})
    show_study(console, study, f"{path}: {len(study.record['groups'])} setting(s) x "
                               f"{len(study.record['seeds'])} seeds", columns_for(study.record))
    console.print(f"wrote the experiment record {path}", highlight=False)
    finished_or_exit(console, study, path)


def run_function(console: Console, path: Path, experiment: dict[str, Any], given: str | None,
                 command: str) -> Callable[..., Any]:
    """An experiment's run function: purenn's own for mnist and xor; for the caller's code, the
    one ``--function`` names, which must be the one the record names (purenn never imports code
    that a file names: a record may come from anywhere)."""
    recorded = experiment["function"]
    if experiment["kind"] != "function":
        return own_function(experiment)
    if given is None:
        raise fail(console, f"{path} ran {recorded}, code of its own: purenn runs code only when you name "
                            f"it; if you trust it, run: purenn {command} {path} --function {recorded}")
    if given != recorded:
        raise fail(console, f"--function {given}: {path} ran {recorded}; name that one")
    try:
        return load_function(given)
    except PurennError as e:
        raise fail(console, f"--function: {explain(e)}") from None


def columns_for(record: dict[str, Any]) -> list[tuple[str, str, Format]]:
    """The table columns of an experiment record's metrics: purenn's own kinds' with their
    formats, a function's every metric its finished runs have."""
    if record["kind"] == "mnist":
        return [("test accuracy", "test_accuracy", percent), ("final loss", "loss", loss),
                ("training", "train_seconds", seconds)]
    if record["kind"] == "xor":
        return [("solved", "solved", yes_no), ("final loss", "loss", loss), ("training", "train_seconds", seconds)]
    names = dict.fromkeys(m for r in record["runs"] for m in r["metrics"])
    return [(escape(name), name, number) for name in names]


def yes_no(value: object) -> str:
    """A bool per run; over runs (a float), the fraction true."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0%}"
    return "yes" if value else "no"


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}"


def percent(value: Any) -> str:
    return "-" if value is None else f"{value:.2%}"


def seconds(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} s"


def loss(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"
