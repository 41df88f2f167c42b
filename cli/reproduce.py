"""``purenn reproduce``: run a recorded experiment again and compare the params digest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from purenn.errors import RecordError
from purenn.io.records import environment_differences, read_record
from purenn.recipes.runs import config_from_record, record_differences
from purenn_cli.errors import fail
from purenn_cli.mnist import run


def reproduce(
    record: Annotated[Path, typer.Argument(help="A run record written by `purenn mnist --record`.")],
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the dataset's four .gz files.")] = None,
) -> None:
    """Train the recorded run again; exit 0 if the final params' SHA-256 digest matches, 1 if not."""
    console = Console()
    try:
        rec = read_record(record)
        config = config_from_record(rec)
    except RecordError as e:
        raise fail(console, e.message) from None
    changed = record_differences(rec, config)
    if changed:
        console.print(
            f"[red]not reproducible here[/red]: the record's {' and '.join(changed)} differ from this "
            f"purenn's {config.preset!r} preset (recorded with purenn "
            f"{rec.get('versions', {}).get('purenn', '?')}); run it with that version."
        )
        raise typer.Exit(1)
    versions = rec.get("versions", {})
    console.print(f"reproducing {record} (recorded with {', '.join(f'{k} {v}' for k, v in versions.items())})")
    digest = run(config, data_dir, console)["trained"].digest
    if digest == rec["digest"]:
        console.print(f"[green]reproduced[/green]: params digest matches ({digest})")
        return
    differences = environment_differences(rec)
    where = ("; this machine differs from the recorded one in " + ", ".join(
        f"{k} ({old} then, {new} now)" for k, (old, new) in differences.items())) if differences else (
        "; the recorded environment (Python, NumPy, BLAS and its threads, CPU) is the same here")
    console.print(
        f"[red]not reproduced[/red]: params digest {digest} differs from the recorded {rec['digest']}"
        f"{where}."
    )
    raise typer.Exit(1)
