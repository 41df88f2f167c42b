"""``purenn resume DIR``: continue a ``purenn mnist --checkpoint-dir DIR`` run to its end, and
write the checkpoint and record named on resume's own command line. ``purenn resume EXP.json``:
continue an interrupted experiment (:func:`purenn_cli.experiment.resume_experiment`).

A training state may come from a shared or crafted folder, so no path read from it is ever used:
the ``--save``, ``--record`` and ``--data-dir`` the original run was given are only shown, as the
flags that would use them again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from purenn.errors import PurennError
from purenn.recipes.presets import PRESETS
from purenn.validation import MAX_THREADS
from purenn_cli.checkpoint_dir import (
    as_flags,
    check_outputs,
    describe_position,
    load,
    locked,
    prepare,
    resume_command,
    saved_config,
    saved_outputs,
    saver,
    state_path,
)
from purenn_cli.errors import explain, fail
from purenn_cli.experiment import resume_experiment
from purenn_cli.mnist import save_results, train, warner
from purenn_cli.signals import sigterm_exits

FOLDER = "the checkpoint folder"


def resume(
    checkpoint_dir: Annotated[Path, typer.Argument(help="The folder given to `purenn mnist --checkpoint-dir`, or an experiment record (`purenn mnist --seeds ... --record EXP.json`) to run what it is missing.", metavar="DIR_OR_EXP.json")],
    save: Annotated[Path | None, typer.Option(help="Write the trained model and params to this .npz checkpoint (the original run's --save is only shown: give it here to write it).")] = None,
    record: Annotated[Path | None, typer.Option(help="Write a JSON run record here (the original run's --record is only shown: give it here to write it).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files [default: $PURENN_DATA, else the cache; never the original run's --data-dir unless given here].")] = None,
    jobs: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="An experiment: runs at a time, in worker processes [default: one per core].", show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option(help="An experiment: run on the Dask cluster whose scheduler is at this address.", show_default=False)] = None,
    experiment_checkpoints: Annotated[Path | None, typer.Option("--checkpoint-dir", help="An experiment: the folder whose runs' training states to continue from (each run in a folder of its own), as given to `purenn mnist --seeds ... --checkpoint-dir`.", show_default=False)] = None,
    function: Annotated[str | None, typer.Option(help="An experiment of your own code: its run function as module:qualname, which must be the one the record names (purenn runs code only when you name it).", show_default=False)] = None,
) -> None:
    """Continue an interrupted `purenn mnist --checkpoint-dir DIR` run from its last saved state;
    the result is the one the run would have given without the interruption.

    Only the files named here are written (`--save`, `--record`), and the data is read from
    `--data-dir` (else $PURENN_DATA or the cache): paths stored in the folder are shown, as the
    flags that would use them, and never used unasked, since a shared or crafted folder could
    name any file. Like `purenn mnist`, it holds the folder's lock while it runs.

    Given an experiment record, it runs the experiment's runs that are missing (not started, or
    failed) with the settings the record holds, writing only that record and the run records
    named from its path (never paths read from it); the result equals an uninterrupted
    experiment's."""
    console = Console()
    if checkpoint_dir.is_file():
        if save is not None or record is not None:
            raise fail(console, "--save and --record are for a checkpoint folder; an experiment writes its "
                                "own record and the run records beside it")
        return resume_experiment(console, checkpoint_dir, jobs=jobs, scheduler=scheduler, data_dir=data_dir,
                                 checkpoint_dir=experiment_checkpoints, function=function)
    if jobs is not None or scheduler is not None or experiment_checkpoints is not None or function is not None:
        raise fail(console, "--jobs, --scheduler, --checkpoint-dir and --function are for an experiment "
                            "record (EXP.json); this is a checkpoint folder")
    if not state_path(checkpoint_dir).exists():
        raise fail(console, f"{checkpoint_dir} holds no training state ({state_path(checkpoint_dir).name}); "
                            "start a run with `purenn mnist --checkpoint-dir DIR`")
    check_outputs(console, {"--save": save, "--record": record}, checkpoint_dir)
    prepare(console, checkpoint_dir, FOLDER)
    given = {k: str(p.resolve()) for k, p in (("save", save), ("record", record), ("data_dir", data_dir))
             if p is not None}
    with sigterm_exits(), locked(console, checkpoint_dir, FOLDER):
        try:
            saved = load(checkpoint_dir, console)
            config = saved_config(saved)
        except PurennError as e:
            raise fail(console, f"{state_path(checkpoint_dir)} cannot be continued: {explain(e)}") from None
        asked = saved_outputs(saved)
        unused = {k: v for k, v in asked.items() if k not in given}
        if unused:
            console.print(f"the original run was given {as_flags(unused)}; resume uses only the paths on "
                          f"its own command line. To use those, run: "
                          f"{resume_command(checkpoint_dir, {**asked, **given})}",
                          highlight=False, markup=False, soft_wrap=True)
        what = ("finished; writing its results" if save or record else "finished") \
            if saved.state.finished else "continuing"
        console.print(f"{checkpoint_dir}: the run stopped at {describe_position(saved.state)}; {what}",
                      highlight=False, markup=False)
        keep = saver(checkpoint_dir, PRESETS[config.preset].model, config, {**asked, **given},
                     warner(console), saved.state)
        result = train(console, config, data_dir, saver=keep, resume=saved.state)
        save_results(console, result, save, record)
