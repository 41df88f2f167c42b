"""``purenn reproduce EXP.json``: every finished run of an experiment again (in parallel), or one
seed's, each compared with its recorded digests after its data files are checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from purenn.errors import PurennError, RecordError
from purenn.experiments.record import run_record_of, run_settings
from purenn.experiments.runner import default_jobs
from purenn.experiments.study import Call
from purenn.io.provenance import data_differences, dataset_files, file_digests
from purenn.recipes.runs import repeatable_config
from purenn_cli.errors import EXIT_FAILED, explain, fail
from purenn_cli.experiment import labeler, run_calls, run_function
from purenn_cli.report import load_data

Key = tuple[int, int]


def reproduce_experiment(console: Console, path: Path, experiment: dict[str, Any], *, seed: int | None,
                         jobs: int | None, data_dir: Path | None, function: str | None) -> None:
    """Run the experiment's finished runs (or ``seed``'s alone) again and compare each with what
    its entry records (final digest and every epoch's: for mnist those of its run record, which
    must be the entry's), after checking the data files each read. Exit 1 unless every one
    matches, and when there is none to repeat."""
    runs = experiment["runs"]
    chosen = [i for i, r in enumerate(runs) if seed is None or r["seed"] == seed]
    if not chosen:
        raise fail(console, f"{path} has no run of seed {seed}; its seeds: "
                            f"{', '.join(str(s) for s in experiment['seeds'])}")
    skipped = [_key(runs[i]) for i in chosen if runs[i]["status"] != "ok"]
    finished = [i for i in chosen if runs[i]["status"] == "ok"]
    label = labeler(experiment["grid"])
    if not finished:
        raise fail(console, f"nothing to reproduce: {_runs(skipped, label)} did not finish when the "
                            "experiment ran, so there is no result to compare with", EXIT_FAILED)
    fn = run_function(console, path, experiment, function, "reproduce")
    options = {"data_dir": None if data_dir is None else str(data_dir.resolve())}
    found = _data_found(console, experiment, finished, data_dir)
    expected: dict[Key, list[Any]] = {}
    calls: dict[Key, Call] = {}
    unusable: dict[Key, str] = {}
    for i in finished:
        key = _key(runs[i])
        try:
            expected[key] = _recorded(path, experiment, i, found)
            calls[key] = Call(fn, key[0], key[1], run_settings(experiment, i), None, options)
        except PurennError as e:  # this run cannot be repeated; the others still are
            unusable[key] = explain(e)
    outcomes = run_calls(console, calls, jobs=jobs or default_jobs(len(calls)), what=f"reproducing {path}",
                         label=label) if calls else []
    entries = {_key(r): r for r in runs}
    table = Table(title=escape(f"{path}: reproduced?"))
    for column in ("run", "recorded digest", "digest now", ""):
        table.add_column(column)
    for key in unusable:
        table.add_row(escape(label(key)), _short(entries[key]["digest"]), "-",
                      "[red]cannot repeat[/red] (below)")
    matched = 0
    for outcome in outcomes:
        want = entries[outcome.key]["digest"]
        if outcome.status != "ok":
            table.add_row(escape(label(outcome.key)), _short(want), "-",
                          f"[red]failed[/red]: {escape(str(outcome.error))}")
            continue
        got = outcome.value
        parted = _parted(expected[outcome.key], _per_epoch(experiment["kind"], got["history"], expected[outcome.key]))
        same = got["digest"] == want and parted is None
        matched += same
        table.add_row(escape(label(outcome.key)), _short(want), _short(got["digest"]),
                      "[green]reproduced[/green]" if same else f"[red]differs[/red]{_where(parted)}")
    for key in skipped:
        table.add_row(escape(label(key)), "-", "-", "skipped: it did not finish when the experiment ran")
    console.print(table)
    for key, why in unusable.items():
        console.print(f"[red]{escape(label(key))} cannot repeat[/red]: {escape(why)}",
                      highlight=False, soft_wrap=True)
    _verdict(console, matched, len(finished), len(outcomes) - sum(o.status == "ok" for o in outcomes)
             + len(unusable), skipped, label)


def _key(entry: dict[str, Any]) -> Key:
    return entry["group"], entry["seed"]


def _short(digest: str | None) -> str:
    return "-" if digest is None else digest[:16]


def _data_found(console: Console, experiment: dict[str, Any], finished: list[int],
                data_dir: Path | None) -> dict[str, dict[str, str]]:
    """The data files found now, as ``{dataset or "": {path: SHA-256}}``: an mnist experiment's
    data sets, found as its runs will find them; the files a function experiment's runs read,
    by their recorded paths (only read, those still there)."""
    if experiment["kind"] == "xor":
        return {}
    if experiment["kind"] == "mnist":
        datasets = dict.fromkeys(run_settings(experiment, i).get("dataset", "mnist") for i in finished)
        return {d: file_digests(dataset_files(load_data(console, data_dir, d))) for d in datasets}
    recorded = {p for i in finished for p in (experiment["runs"][i]["provenance"] or {}).get("data_files", {})}
    digests: dict[str, str] = {}
    for p in sorted(recorded):
        try:
            digests.update(file_digests([p]))
        except PurennError:
            continue  # data_differences names it as not there
    return {"": digests}


def _recorded(path: Path, experiment: dict[str, Any], index: int, found: dict[str, dict[str, str]]) -> list[Any]:
    """What the run recorded per epoch (mnist: its run record's digests, the record checked to
    be the entry's; xor: its losses; a function's: its digests when it kept them, else its
    losses); a RecordError when it cannot be repeated, naming a data file that differs."""
    entry = experiment["runs"][index]
    files = (entry["provenance"] or {}).get("data_files", {})
    if experiment["kind"] == "mnist":
        record = run_record_of(path, experiment, index)
        try:
            repeatable_config(record)
        except RecordError as e:
            raise RecordError(f"{entry['record']}: {e.message}") from None
        files = record.get("provenance", {}).get("data_files", {})
        history = record["history"]
        dataset = run_settings(experiment, index).get("dataset", "mnist")
        _check_data(files, found.get(dataset, {}), by_name=True)
        return [h.get("digest") for h in history]
    _check_data(files, found.get("", {}), by_name=False)
    return _per_epoch(experiment["kind"], entry["history"], None)


def _check_data(recorded: dict[str, str], now: dict[str, str], *, by_name: bool) -> None:
    differences = data_differences(recorded, now, by_name=by_name)
    if differences:
        raise RecordError(f"its data differs from what it read: {'; '.join(differences)}")


def _per_epoch(kind: str, history: list[dict[str, Any]], recorded: list[Any] | None) -> list[Any]:
    """What a run gives per epoch that must come out again: its params digests (mnist, and a
    function's run that keeps them), else its losses."""
    digests = [h.get("digest") for h in history]
    if kind == "mnist" or (kind == "function" and any(d is not None for d in digests)):
        return digests
    return [h.get("loss") for h in history]


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


def _verdict(console: Console, matched: int, total: int, failed: int, skipped: list[Key],
             label: Callable[[Key], str]) -> None:
    """The summary line; exit 1 unless all ``total`` (at least one) runs matched."""
    note = f" ({_runs(skipped, label)} did not finish when the experiment ran and had nothing to compare)" \
        if skipped else ""
    if matched == total:
        every = "the run gives its" if total == 1 else f"all {total} runs give their"
        console.print(f"[green]reproduced[/green]: {every} recorded digests{note}", highlight=False)
        return
    differ = total - matched - failed
    parts = [f"{differ} of {total} runs differ"] if differ else []
    parts += [f"{failed} of {total} could not run"] if failed else []
    console.print(f"[red]not reproduced[/red]: {'; '.join(parts)}{note}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _runs(keys: list[Key], label: Callable[[Key], str]) -> str:
    if len(keys) == 1:
        return f"the run of {label(keys[0])}"
    return f"the {len(keys)} runs ({', '.join(label(k) for k in keys)})"
