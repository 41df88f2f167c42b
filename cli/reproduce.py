"""``purenn reproduce``: run a recorded experiment again and compare the params digest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from purenn.errors import PurennError, RecordError
from purenn.experiments.record import read_run_or_experiment
from purenn.io.checkpoints import Checkpoint, read_checkpoint
from purenn.io.environment import blas_thread_limit
from purenn.io.provenance import data_differences, dataset_files, file_digests
from purenn.io.records import environment_differences, params_digest
from purenn.recipes.runs import RunConfig, check_start, repeatable_config
from purenn.validation import MAX_THREADS
from purenn_cli.errors import explain, fail
from purenn_cli.mnist import run
from purenn_cli.report import load_data
from purenn_cli.reproduce_experiment import reproduce_experiment


def reproduce(
    record: Annotated[Path, typer.Argument(help="A run record written by `purenn mnist --record`, or an experiment record (`--seeds ... --record`).")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="With an experiment record: reproduce only this seed's run.", show_default=False)] = None,
    jobs: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="With an experiment record: runs at a time [default: one per core].", show_default=False)] = None,
    init_from: Annotated[Path | None, typer.Option(help="The checkpoint a run of `purenn mnist --init-from` started from: checked against the params digest its record keeps before training (a path is never read from the record).", show_default=False)] = None,
    function: Annotated[str | None, typer.Option(help="With an experiment of your own code: the run function, as module:qualname, which must be the one the record names (purenn runs code only when you name it).", show_default=False)] = None,
) -> None:
    """Train a recorded run (or every run of an experiment record) again; exit 0 if the final
    params' SHA-256 digest and every epoch's match, 1 if not, naming the first epoch where the
    runs part and what differs in the machine. The data files the record names are checked
    first: one that differs is named, and nothing is trained. A run that started from a
    checkpoint needs that file, given with --init-from."""
    console = Console()
    try:
        kind, rec = read_run_or_experiment(record)
    except RecordError as e:
        raise fail(console, e.message) from None
    if kind == "experiment":
        if init_from is not None:
            raise fail(console, "--init-from is for a single run's record; the runs of an experiment "
                                "start from their presets' initialisation")
        return reproduce_experiment(console, record, rec, seed=seed, jobs=jobs, data_dir=data_dir,
                                    function=function)
    if seed is not None or jobs is not None or function is not None:
        raise fail(console, "--seed, --jobs and --function are for an experiment record; this is a single run's")
    try:
        config = repeatable_config(rec)
    except RecordError as e:
        console.print(f"[red]not reproducible here[/red]: {escape(e.message)}.", highlight=False)
        raise typer.Exit(1) from None
    start = starting_checkpoint(console, config, init_from)
    check_data(console, rec, config.dataset, data_dir)
    versions = rec.get("versions", {})
    console.print(escape(f"reproducing {record} (recorded with {', '.join(f'{k} {v}' for k, v in versions.items())})"),
                  highlight=False)
    trained = run(config, data_dir, console, init=start).trained
    parted, note = first_difference(rec.get("history", []), [e.digest for e in trained.history.epochs])
    if trained.digest == rec["digest"] and parted is None:
        every = "every epoch's params digest and the final one match" if note is None else \
            f"the params digest matches{note}"
        console.print(f"[green]reproduced[/green]: {every} ({trained.digest})", highlight=False)
        return
    with blas_thread_limit(config.threads):  # the machine as the run saw it
        differences = environment_differences(rec)
    where = ("; this machine differs from the recorded one in " + escape(", ".join(
        f"{k} ({old} then, {new} now)" for k, (old, new) in differences.items()))) if differences else (
        "; the recorded environment (Python, NumPy, BLAS and its threads, CPU) is the same here")
    final = ("the final params digest matches, but not every epoch's" if trained.digest == rec["digest"]
             else f"params digest {trained.digest} differs from the recorded {rec['digest']}")
    console.print(f"[red]not reproduced[/red]: {final}{note or ''}{where}.", highlight=False)
    raise typer.Exit(1)


def starting_checkpoint(console: Console, config: RunConfig, path: Path | None) -> Checkpoint | None:
    """The checkpoint the recorded run started from: the file ``--init-from`` names, read (every
    check of :func:`read_checkpoint`), holding the preset's model, and with the params digest the
    record keeps, all before training. The file must come from the command line: the record
    names it only to be shown, and a record may come from anywhere."""
    if config.init_digest is None:
        if path is not None:
            raise fail(console, "--init-from: the recorded run started from its preset's initialisation, "
                                "not from a checkpoint; leave --init-from out")
        return None
    wanted = f"{config.init_from} (params digest {config.init_digest})"
    if path is None:
        raise fail(console, f"the recorded run started from the checkpoint {wanted}: give that file "
                            "with --init-from PATH")
    try:
        checkpoint = read_checkpoint(path)
        check_start(config.preset, checkpoint, path.name)
    except PurennError as e:
        raise fail(console, f"--init-from: {explain(e)}") from None
    digest = params_digest(checkpoint.params, state=checkpoint.state)
    if digest != config.init_digest:
        raise fail(console, f"--init-from: {path} has params digest {digest}, but the recorded run "
                            f"started from {wanted}: give that file")
    return checkpoint


def check_data(console: Console, record: dict[str, Any], dataset: str, data_dir: Path | None) -> None:
    """Exit 1, naming each data file that differs from the one the run read (by SHA-256, as its
    provenance records), before anything is trained; records without provenance pass."""
    recorded = record.get("provenance", {}).get("data_files", {})
    if not recorded:
        return
    found = file_digests(dataset_files(load_data(console, data_dir, dataset)))
    differences = data_differences(recorded, found, by_name=True)
    if differences:
        console.print(escape(f"not reproduced: the data is not what the run read: {'; '.join(differences)}. "
                             "Nothing was trained."), highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def first_difference(recorded: list[dict[str, Any]], digests: list[str | None]) -> tuple[int | None, str | None]:
    """Where two runs part, from the record's per-epoch digests and this run's: ``(epoch,
    phrase)`` for the first epoch whose params differ (or a different number of epochs: the
    first one only one run has), ``(None, None)`` when every epoch agrees, ``(None, phrase)``
    when the record keeps no per-epoch digests to compare."""
    pairs = [(i + 1, entry.get("digest") if isinstance(entry, dict) else None, mine)
             for i, (entry, mine) in enumerate(zip(recorded, digests))]
    pairs = [(epoch, theirs, mine) for epoch, theirs, mine in pairs if theirs is not None]
    if not pairs:
        return None, " (the record keeps no per-epoch digests, so where the runs parted is unknown)"
    for epoch, theirs, mine in pairs:
        if theirs != mine:
            same = f"; epochs 1-{epoch - 1} agree" if epoch > 1 else ""
            return epoch, (f"; the runs part at epoch {epoch}: its params digest was {theirs[:16]}..., "
                           f"now {str(mine)[:16]}...{same}")
    if len(recorded) != len(digests):
        epoch = min(len(recorded), len(digests)) + 1
        return epoch, (f"; the runs part at epoch {epoch}: every common epoch agrees, but the record "
                       f"has {len(recorded)} epochs and this run {len(digests)}")
    return None, None
