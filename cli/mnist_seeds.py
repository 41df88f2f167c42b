"""``purenn mnist --seeds``: a preset run once per seed, locally in parallel or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import attrs
import typer
from rich.console import Console

from purenn.errors import ArgumentError, PurennError
from purenn.experiments.record import make_experiment, per_epoch, run_entry, write_experiment
from purenn.experiments.runner import default_jobs
from purenn.experiments.seeds import parse_seeds
from purenn.experiments.tasks import MnistTask, mnist_run
from purenn.io.atomic import check_writable
from purenn.recipes.records import write_run_record
from purenn.recipes.runs import RunConfig
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.experiment import loss, percent, results_table, run_record_path, run_seeds, seconds
from purenn_cli.progress import print_curves
from purenn_cli.report import load_data


def worker_threads(config: RunConfig, jobs: int, scheduler: str | None) -> int:
    """BLAS threads per run: as asked, else the cores shared out between the jobs (1 on a
    cluster, whose workers' cores purenn does not know)."""
    if config.threads is not None:
        return config.threads
    if scheduler is not None:
        return 1
    return max(1, default_jobs(1 << 30) // jobs)


def mnist_experiment(console: Console, config: RunConfig, seeds_text: str, *, jobs: int | None,
                     scheduler: str | None, data_dir: Path | None, record: Path | None) -> None:
    """Run ``config`` once per seed of ``seeds_text``, show the results, write the records."""
    try:
        seeds = parse_seeds(seeds_text)
    except ArgumentError as e:
        raise fail(console, f"--seeds: {e.message}") from None
    jobs = jobs or (1 if scheduler else default_jobs(len(seeds)))
    config = attrs.evolve(config, threads=worker_threads(config, jobs, scheduler))
    paths = {seed: run_record_path(record, seed) for seed in seeds} if record is not None else {}
    for path in ([record] if record is not None else []) + list(paths.values()):
        try:
            check_writable(path)
        except ArgumentError as e:
            raise fail(console, f"--record: {e.message}") from None
    load_data(console, data_dir, config.dataset, splits=("test",))  # found (or downloaded) once, here
    folder = None if data_dir is None else str(data_dir.resolve())
    tasks = {seed: MnistTask(attrs.evolve(config, seed=seed), folder) for seed in seeds}
    outcomes = run_seeds(console, mnist_run, tasks, jobs=jobs, scheduler=scheduler,
                         what=f"{config.preset} preset, {config.threads} BLAS thread(s) per run")
    runs = [run_entry(o.key, o, paths[o.key].name if o.key in paths else None) for o in outcomes]
    rows = [dict(r) for r in runs]
    console.print(results_table(f"{config.preset}: {len(seeds)} seeds", rows, [
        ("test accuracy", "test_accuracy", percent), ("final loss", "loss", loss),
        ("training", "train_seconds", seconds)]))
    ok = [r for r in runs if r["status"] == "ok"]
    if ok:
        histories = [r["history"] for r in ok]
        print_curves(console, per_epoch(histories, "loss")[1], per_epoch(histories, "val_accuracy")[1],
                     f"mean over {len(ok)} seeds")
    if record is not None:
        settings = {k: v for k, v in attrs.asdict(config).items() if k != "seed"}
        try:
            for outcome in outcomes:
                if outcome.status == "ok":
                    write_run_record(paths[outcome.key], outcome.value)
            write_experiment(record, make_experiment(kind="mnist", settings=settings, seeds=seeds,
                                                     runs=runs, jobs=jobs, scheduler=scheduler))
        except (PurennError, OSError) as e:
            raise fail(console, explain(e) if isinstance(e, PurennError) else str(e), EXIT_FAILED) from None
        console.print(f"wrote the experiment record {record} and {len(ok)} run records beside it")
    failed = [r["seed"] for r in runs if r["status"] != "ok"]
    if failed:
        where = "; the record lists them with their errors" if record is not None else ""
        console.print(f"[red]{len(failed)} of {len(runs)} runs failed[/red] (seeds "
                      f"{', '.join(map(str, failed))}){where}")
        raise typer.Exit(EXIT_FAILED)
