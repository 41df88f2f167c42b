"""``purenn resume DIR``: continue a ``purenn mnist --checkpoint-dir DIR`` run to its end, then
write the checkpoint, record and report that the original command asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from purenn.errors import ArgumentError, PurennError
from purenn.io.atomic import check_writable
from purenn_cli.checkpoint_dir import describe_position, load, saved_config, state_path
from purenn_cli.errors import explain, fail
from purenn_cli.mnist import run, save_results


def resume(
    checkpoint_dir: Annotated[Path, typer.Argument(help="The folder given to `purenn mnist --checkpoint-dir`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files [default: the run's --data-dir, else $PURENN_DATA, else the cache].")] = None,
) -> None:
    """Continue an interrupted `purenn mnist` run from its last saved state; the result is the
    one the run would have given without the interruption."""
    console = Console()
    if not state_path(checkpoint_dir).exists():
        raise fail(console, f"{checkpoint_dir} holds no training state ({state_path(checkpoint_dir).name}); "
                            "start a run with `purenn mnist --checkpoint-dir DIR`")
    try:
        saved = load(checkpoint_dir)
        config = saved_config(saved)
        outputs = saved.metadata.get("outputs", {})
    except PurennError as e:
        raise fail(console, f"{state_path(checkpoint_dir)} cannot be continued: {explain(e)}") from None
    paths = {name: Path(p) if isinstance(p, str) else None for name, p in
             ((n, outputs.get(n)) for n in ("save", "record"))}
    for option, path in paths.items():
        try:
            if path is not None:
                check_writable(path)
        except ArgumentError as e:
            raise fail(console, f"the run's --{option} {path}: {e.message}") from None
    what = "finished; writing its results" if saved.state.finished else "continuing"
    console.print(f"{checkpoint_dir}: the run stopped at {describe_position(saved.state)}; {what}",
                  highlight=False)
    if data_dir is None and isinstance(outputs.get("data_dir"), str):
        data_dir = Path(outputs["data_dir"])  # where the run found its data
    result = run(config, data_dir, console, checkpoint_dir=checkpoint_dir, resume=saved.state,
                 outputs=outputs)
    save_results(console, config, result, paths["save"], paths["record"])
