"""``purenn resume DIR``: continue a ``purenn mnist --checkpoint-dir DIR`` run to its end, and
write the checkpoint and record named on resume's own command line.

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
from purenn_cli.mnist import save_results, train, warner
from purenn_cli.signals import sigterm_exits

FOLDER = "the checkpoint folder"


def resume(
    checkpoint_dir: Annotated[Path, typer.Argument(help="The folder given to `purenn mnist --checkpoint-dir`.")],
    save: Annotated[Path | None, typer.Option(help="Write the trained model and params to this .npz checkpoint (the original run's --save is only shown: give it here to write it).")] = None,
    record: Annotated[Path | None, typer.Option(help="Write a JSON run record here (the original run's --record is only shown: give it here to write it).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files [default: $PURENN_DATA, else the cache; never the original run's --data-dir unless given here].")] = None,
) -> None:
    """Continue an interrupted `purenn mnist --checkpoint-dir DIR` run from its last saved state;
    the result is the one the run would have given without the interruption.

    Only the files named here are written (`--save`, `--record`), and the data is read from
    `--data-dir` (else $PURENN_DATA or the cache): paths stored in the folder are shown, as the
    flags that would use them, and never used unasked, since a shared or crafted folder could
    name any file. Like `purenn mnist`, it holds the folder's lock while it runs."""
    console = Console()
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
