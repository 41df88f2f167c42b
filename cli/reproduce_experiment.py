"""``purenn reproduce EXP.json``: every run of an experiment again (in parallel), or one seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from purenn.errors import PurennError, RecordError
from purenn.experiments.record import run_record_of
from purenn.experiments.runner import default_jobs
from purenn.experiments.tasks import MnistTask, XorTask, mnist_run, xor_run
from purenn.recipes.runs import repeatable_config
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.experiment import run_seeds


def reproduce_experiment(console: Console, path: Path, experiment: dict[str, Any], *,
                         seed: int | None, jobs: int | None, data_dir: Path | None) -> None:
    """Run the experiment's finished runs (or ``seed``'s alone) again and compare each with what
    its entry records (final digest; for MNIST every epoch's digest in its run record, which
    must be the entry's). Exit 1 unless every one matches, and when there is none to repeat."""
    chosen = [i for i, r in enumerate(experiment["runs"]) if seed is None or r["seed"] == seed]
    if not chosen:
        raise fail(console, f"{path} has no run of seed {seed}; its seeds: "
                            f"{', '.join(str(s) for s in experiment['seeds'])}")
    skipped = [experiment["runs"][i]["seed"] for i in chosen if experiment["runs"][i]["status"] != "ok"]
    finished = [i for i in chosen if experiment["runs"][i]["status"] == "ok"]
    if not finished:
        raise fail(console, f"nothing to reproduce: {_seeds(skipped)} failed when the experiment "
                            "ran, so there is no result to compare with", EXIT_FAILED)
    expected: dict[int, list[Any]] = {}
    tasks: dict[int, Any] = {}
    unusable: dict[int, str] = {}
    folder = None if data_dir is None else str(data_dir.resolve())
    for i in finished:
        key = experiment["runs"][i]["seed"]
        try:
            expected[key], tasks[key] = _task(path, experiment, i, folder)
        except PurennError as e:  # this run cannot be repeated; the others still are
            unusable[key] = explain(e)
    fn = mnist_run if experiment["kind"] == "mnist" else xor_run
    outcomes = run_seeds(console, fn, tasks, jobs=jobs or default_jobs(len(tasks)), scheduler=None,
                         what=f"reproducing {path}") if tasks else []
    entries = {r["seed"]: r for r in experiment["runs"]}
    table = Table(title=escape(f"{path}: reproduced?"))
    for column in ("seed", "recorded digest", "digest now", ""):
        table.add_column(column)
    for key in unusable:
        table.add_row(str(key), entries[key]["digest"][:16], "-", "[red]cannot repeat[/red] (below)")
    matched = 0
    for outcome in outcomes:
        want = entries[outcome.key]["digest"]
        if outcome.status != "ok":
            table.add_row(str(outcome.key), want[:16], "-", f"[red]failed[/red]: {escape(str(outcome.error))}")
            continue
        got = outcome.value
        parted = _parted(expected[outcome.key], _per_epoch(experiment["kind"], got))
        same = got["digest"] == want and parted is None
        matched += same
        table.add_row(str(outcome.key), want[:16], got["digest"][:16],
                      "[green]reproduced[/green]" if same else f"[red]differs[/red]{_where(parted)}")
    for s in skipped:
        table.add_row(str(s), "-", "-", "skipped: the run failed when the experiment ran")
    console.print(table)
    for key, why in unusable.items():
        console.print(f"[red]seed {key} cannot repeat[/red]: {escape(why)}", highlight=False, soft_wrap=True)
    _verdict(console, matched, len(finished), len(outcomes) - sum(o.status == "ok" for o in outcomes)
             + len(unusable), skipped)


def _verdict(console: Console, matched: int, total: int, failed: int, skipped: list[int]) -> None:
    """The summary line; exit 1 unless all ``total`` (at least one) runs matched."""
    note = f" ({_seeds(skipped)} failed when the experiment ran and had nothing to compare)" if skipped else ""
    if matched == total:
        every = "the run gives its" if total == 1 else f"all {total} runs give their"
        console.print(f"[green]reproduced[/green]: {every} recorded digests{note}", highlight=False)
        return
    differ = total - matched - failed
    parts = [f"{differ} of {total} runs differ"] if differ else []
    parts += [f"{failed} of {total} could not run"] if failed else []
    console.print(f"[red]not reproduced[/red]: {'; '.join(parts)}{note}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _seeds(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"the run of seed {seeds[0]}"
    return f"the {len(seeds)} runs (seeds {', '.join(map(str, seeds))})"


def _task(path: Path, experiment: dict[str, Any], index: int, folder: str | None) -> tuple[list[Any], Any]:
    """What the run recorded per epoch (MNIST: its run record's digests, the record checked to
    be the entry's; XOR: the entry's losses) and the task that repeats it; a RecordError when
    it cannot be repeated."""
    entry = experiment["runs"][index]
    if experiment["kind"] == "xor":  # the settings are XorTask's fields, checked as it checks them
        return _per_epoch("xor", entry), XorTask(entry["seed"], **experiment["settings"])
    record = run_record_of(path, experiment, index)
    try:
        config = repeatable_config(record)
    except RecordError as e:
        raise RecordError(f"{entry['record']}: {e.message}") from None
    return _per_epoch("mnist", record), MnistTask(config, folder)


def _per_epoch(kind: str, run: dict[str, Any]) -> list[Any]:
    """What a run gives per epoch that must come out again: MNIST's params digests, XOR's losses
    (its runs keep no digest per epoch)."""
    return [h["loss"] if kind == "xor" else h.get("digest") for h in run["history"]]


def _parted(recorded: list[Any], now: list[Any]) -> int | None:
    """The first epoch (from 1) whose recorded value is not the new one, or where one run has an
    epoch the other has not; None when they agree (a record without per-epoch digests agrees)."""
    for i, (a, b) in enumerate(zip(recorded, now)):
        if a is not None and a != b:
            return i + 1
    if len(recorded) != len(now):
        return min(len(recorded), len(now)) + 1
    return None


def _where(parted: int | None) -> str:
    return "" if parted is None else f" from epoch {parted}"
