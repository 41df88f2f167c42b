"""``purenn mnist --seeds``: a preset run once per seed, locally in parallel or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import typer
from rich.console import Console

from purenn.errors import ArgumentError, PurennError
from purenn.experiments.record import make_experiment, per_epoch, run_entry, write_experiment
from purenn.experiments.runner import default_jobs
from purenn.experiments.seeds import parse_seeds
from purenn.experiments.tasks import MnistTask, mnist_run, threads_per_run
from purenn.io.atomic import check_writable
from purenn.recipes.records import write_run_record
from purenn.recipes.runs import RunConfig
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.experiment import loss, percent, results_table, run_record_path, run_seeds, seconds
from purenn_cli.progress import print_curves
from purenn_cli.report import load_data


def mnist_experiment(console: Console, config: RunConfig, seeds_text: str, *, jobs: int | None,
                     scheduler: str | None, data_dir: Path | None, record: Path | None) -> None:
    """Run ``config`` once per seed of ``seeds_text``, show the results, write the records."""
    try:
        seeds = parse_seeds(seeds_text)
    except ArgumentError as e:
        raise fail(console, f"--seeds: {e.message}") from None
    jobs = jobs or (1 if scheduler else default_jobs(len(seeds)))
    config = attrs.evolve(config, threads=threads_per_run(config.threads, jobs, scheduler))
    paths = record_paths(console, record, seeds)
    load_data(console, data_dir, config.dataset, splits=("test",))  # found (or downloaded) once, here
    folder = None if data_dir is None else str(data_dir.resolve())
    tasks = {seed: MnistTask(attrs.evolve(config, seed=seed), folder) for seed in seeds}
    outcomes = run_seeds(console, mnist_run, tasks, jobs=jobs, scheduler=scheduler,
                         what=f"{config.preset} preset, {config.threads} BLAS thread(s) per run")
    runs = [run_entry(o.key, o, paths[o.key].name if o.key in paths else None) for o in outcomes]
    show_results(console, config, seeds, runs)
    if record is not None:
        finished = {o.key: o.value for o in outcomes if o.status == "ok"}
        write_records(console, record, paths, finished, config=config, seeds=seeds, runs=runs, jobs=jobs,
                      scheduler=scheduler)
    failed = [r["seed"] for r in runs if r["status"] != "ok"]
    if failed:
        where = "; the record lists them with their errors" if record is not None else ""
        console.print(f"[red]{len(failed)} of {len(runs)} runs failed[/red] (seeds "
                      f"{', '.join(map(str, failed))}){where}")
        raise typer.Exit(EXIT_FAILED)


def record_paths(console: Console, record: Path | None, seeds: list[int]) -> dict[int, Path]:
    """Where each seed's run record goes, beside the experiment record (none without one); every
    one of these files must be writable before any run starts."""
    if record is None:
        return {}
    paths = {seed: run_record_path(record, seed) for seed in seeds}
    for path in [record, *paths.values()]:
        try:
            check_writable(path)
        except ArgumentError as e:
            raise fail(console, f"--record: {e.message}") from None
    return paths


def show_results(console: Console, config: RunConfig, seeds: list[int], runs: list[dict[str, Any]]) -> None:
    """The table of every seed's results, then the mean curves of the runs that finished."""
    console.print(results_table(f"{config.preset}: {len(seeds)} seeds", [dict(r) for r in runs], [
        ("test accuracy", "test_accuracy", percent), ("final loss", "loss", loss),
        ("training", "train_seconds", seconds)]))
    ok = [r for r in runs if r["status"] == "ok"]
    if ok:
        histories = [r["history"] for r in ok]
        print_curves(console, per_epoch(histories, "loss")[1], per_epoch(histories, "val_accuracy")[1],
                     f"mean over {len(ok)} seeds")


def write_records(console: Console, record: Path, paths: dict[int, Path], finished: dict[int, Any], *,
                  config: RunConfig, seeds: list[int], runs: list[dict[str, Any]], jobs: int,
                  scheduler: str | None) -> None:
    """The run record of each finished seed (``finished``: by seed), then the experiment record."""
    settings = {k: v for k, v in attrs.asdict(config).items() if k != "seed"}
    try:
        for seed, run in finished.items():
            write_run_record(paths[seed], run)
        write_experiment(record, make_experiment(kind="mnist", settings=settings, seeds=seeds,
                                                 runs=runs, jobs=jobs, scheduler=scheduler))
    except (PurennError, OSError) as e:
        raise fail(console, explain(e) if isinstance(e, PurennError) else str(e), EXIT_FAILED) from None
    console.print(f"wrote the experiment record {record} and {len(finished)} run records beside it")
