"""``purenn reproduce EXP.json``: every run of an experiment again (in parallel), or one seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from purenn.errors import PurennError, RecordError
from purenn.experiments.runner import default_jobs
from purenn.experiments.tasks import MnistTask, XorTask, mnist_run, xor_run
from purenn.io.records import read_record
from purenn.recipes.runs import config_from_record, record_differences
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.experiment import run_seeds


def reproduce_experiment(console: Console, path: Path, experiment: dict[str, Any], *,
                         seed: int | None, jobs: int | None, data_dir: Path | None) -> None:
    """Run the experiment's runs (or ``seed``'s alone) again and compare every digest; exit 1
    unless all match."""
    runs = [r for r in experiment["runs"] if seed is None or r["seed"] == seed]
    if not runs:
        raise fail(console, f"{path} has no run of seed {seed}; its seeds: "
                            f"{', '.join(str(r['seed']) for r in experiment['runs'])}")
    skipped = [r["seed"] for r in runs if r["status"] != "ok"]
    runs = [r for r in runs if r["status"] == "ok"]
    expected: dict[int, dict[str, Any]] = {}
    tasks: dict[int, Any] = {}
    unusable: dict[int, str] = {}
    folder = None if data_dir is None else str(data_dir.resolve())
    for run in runs:
        try:
            expected[run["seed"]], tasks[run["seed"]] = _task(path, experiment, run, folder)
        except PurennError as e:  # this run cannot be repeated; the others still are
            unusable[run["seed"]] = explain(e)
    fn = mnist_run if experiment["kind"] == "mnist" else xor_run
    jobs = jobs or default_jobs(len(tasks))
    outcomes = run_seeds(console, fn, tasks, jobs=jobs, scheduler=None,
                         what=f"reproducing {path}") if tasks else []
    table = Table(title=f"{path}: reproduced?")
    for column in ("seed", "recorded digest", "digest now", ""):
        table.add_column(column)
    matched, failed = 0, len(unusable)
    for seed_, why in unusable.items():
        table.add_row(str(seed_), "-", "-", f"[red]cannot repeat[/red]: {why}")
    for outcome in outcomes:
        want = expected[outcome.key]
        if outcome.status != "ok":
            failed += 1
            table.add_row(str(outcome.key), want["digest"][:16], "-", f"[red]failed[/red]: {outcome.error}")
            continue
        got = outcome.value
        same = got["digest"] == want["digest"] and _epoch_digests(got) == _epoch_digests(want)
        matched += same
        table.add_row(str(outcome.key), want["digest"][:16], got["digest"][:16],
                      "[green]reproduced[/green]" if same else f"[red]differs[/red]{_where(want, got)}")
    for s in skipped:
        table.add_row(str(s), "-", "-", "skipped: the run failed when the experiment ran")
    console.print(table)
    total = len(outcomes) + len(unusable)
    if matched == total:
        console.print(f"[green]reproduced[/green]: all {matched} runs give their recorded digests",
                      highlight=False)
        return
    differ = total - matched - failed
    parts = [f"{differ} of {total} runs differ"] if differ else []
    parts += [f"{failed} of {total} could not run"] if failed else []
    console.print(f"[red]not reproduced[/red]: {'; '.join(parts)}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _task(path: Path, experiment: dict[str, Any], run: dict[str, Any],
          folder: str | None) -> tuple[dict[str, Any], Any]:
    """What the run recorded (digest, per-epoch history) and the task that repeats it; a
    RecordError when it cannot be repeated."""
    if experiment["kind"] == "xor":
        try:
            return run, XorTask(run["seed"], **experiment["settings"])
        except (TypeError, ValueError) as e:
            raise RecordError(f"{path}: its settings do not describe an XOR run ({e})") from None
    if not run.get("record"):
        raise RecordError(f"{path}: the run of seed {run['seed']} has no run record to repeat")
    record_path = path.parent / run["record"]
    record = read_record(record_path)
    config = config_from_record(record)
    changed = record_differences(record, config)
    if changed:
        raise RecordError(f"{record_path}: the record's {' and '.join(changed)} differ from this "
                          f"purenn's {config.preset!r} preset; reproduce it with the purenn that wrote it")
    return record, MnistTask(config, folder)


def _epoch_digests(run: dict[str, Any]) -> list[Any]:
    return [h.get("digest") for h in run.get("history", [])]


def _where(want: dict[str, Any], got: dict[str, Any]) -> str:
    for i, (a, b) in enumerate(zip(_epoch_digests(want), _epoch_digests(got))):
        if a is not None and a != b:
            return f" from epoch {i + 1}"
    return ""


