"""Experiments on the command line: many seeds of one recipe, with a progress bar per running
seed, a table of results with mean, standard deviation, min and max, and the records."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from purenn.experiments.record import statistics
from purenn.experiments.runner import Outcome, run_all
from purenn_cli.progress import format_loss, training_progress
from purenn_cli.signals import EXIT_CODES, NAMES


def run_seeds(console: Console, fn: Callable[..., Any], tasks: dict[int, Any], *, jobs: int,
              scheduler: str | None, what: str) -> list[Outcome]:
    """Run one task per seed with progress bars: one for the whole experiment, one per running
    seed (gone when it ends). Ctrl-C raises KeyboardInterrupt as ever; SIGTERM stops the runs the
    same way, then exits 143 saying so."""
    where = f"on the Dask cluster at {scheduler}" if scheduler else (
        f"in {jobs} worker processes" if jobs > 1 else "in this process")
    console.print(f"{what}: {len(tasks)} seed{'s' if len(tasks) != 1 else ''}, {where}", highlight=False)
    lock = threading.Lock()
    with training_progress(console) as progress:
        overall = progress.add_task("seeds", total=len(tasks), status="")
        bars: dict[int, TaskID] = {}
        starts: dict[int, int] = {}
        ended: set[int] = set()

        def on_event(seed: int, event: str, data: dict[str, Any]) -> None:
            with lock:
                if seed in ended:  # a worker's last report, arriving after the result
                    return
                if event == "end":
                    ended.add(seed)
                _show(progress, overall, bars, starts, seed, event, data)

        with _sigterm_as_interrupt() as received:  # the runner then stops its workers, as for Ctrl-C
            try:
                outcomes = run_all(fn, tasks, jobs=jobs, scheduler=scheduler, on_event=on_event)
            except KeyboardInterrupt:
                if not received:
                    raise  # Ctrl-C: the command's guard says so
                progress.stop()
                console.print(f"[yellow]interrupted[/yellow] ({NAMES[signal.SIGTERM]}): the runs were "
                              "stopped and nothing was written", highlight=False)
                raise typer.Exit(EXIT_CODES[signal.SIGTERM]) from None
    return outcomes


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


def _show(progress: Progress, overall: TaskID, bars: dict[int, TaskID], starts: dict[int, int],
          seed: int, event: str, data: dict[str, Any]) -> None:
    if event == "start":
        starts[seed] = starts.get(seed, 0) + 1
        again = f" (attempt {starts[seed]})" if starts[seed] > 1 else ""
        if seed in bars:
            progress.remove_task(bars.pop(seed))
        bars[seed] = progress.add_task(f"  seed {seed}{again}", total=None, status="starting")
    elif event == "step" and seed in bars:
        progress.update(bars[seed], completed=data["done"], total=data["total"])
    elif event == "epoch" and seed in bars:
        accuracy = data.get("accuracy")
        status = f"epoch {data['epoch']}/{data['epochs']}  loss {format_loss(data['loss'])}"
        if accuracy is not None:
            status += f"  test accuracy {accuracy:.2%}"
        progress.update(bars[seed], status=status)
    elif event == "end":
        if seed in bars:
            progress.remove_task(bars.pop(seed))
        progress.update(overall, advance=1,
                        status="" if data.get("status") == "ok" else f"seed {seed} failed")


def results_table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str, Callable[[Any], str]]]) -> Table:
    """Per seed the ``columns`` (header, key, format), then mean ± std, min and max over the
    runs that finished; failed runs show their error."""
    table = Table(title=title)
    table.add_column("seed", justify="right")
    for header, _, _ in columns:
        table.add_column(header, justify="right")
    table.add_column("", justify="left")
    for row in rows:
        if row["status"] != "ok":
            table.add_row(str(row["seed"]), *["-"] * len(columns), f"[red]failed[/red]: {escape(str(row['error']))}")
            continue
        note = f"ran {row['attempts']} times (a worker died)" if row.get("attempts", 1) > 1 else ""
        table.add_row(str(row["seed"]), *[fmt(row[key]) for _, key, fmt in columns], note)
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        stats = {key: statistics([r[key] for r in ok]) for _, key, _ in columns}
        table.add_section()
        table.add_row("mean ± std", *[f"{fmt(stats[k]['mean'])} ± {fmt(stats[k]['std'])}"
                                      for _, k, fmt in columns], f"over {len(ok)} runs")
        table.add_row("min", *[fmt(stats[k]["min"]) for _, k, fmt in columns], "")
        table.add_row("max", *[fmt(stats[k]["max"]) for _, k, fmt in columns], "")
    return table


def percent(value: Any) -> str:
    return "-" if value is None else f"{value:.2%}"


def seconds(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} s"


def loss(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def run_record_path(experiment: Path, seed: int) -> Path:
    """Where the run record of ``seed`` goes: beside the experiment's, ``EXP.seed3.json``."""
    return experiment.with_name(f"{experiment.stem}.seed{seed}{experiment.suffix or '.json'}")
