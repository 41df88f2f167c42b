"""``purenn diff RUN_A.json RUN_B.json``: two run records side by side, first difference marked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from purenn.errors import RecordError
from purenn.io.records import read_record
from purenn_cli.errors import fail
from purenn_cli.experiment import loss, percent

MARK = "[bold red]≠[/bold red]"


def diff(
    run_a: Annotated[Path, typer.Argument(help="A run record (`purenn mnist --record`).")],
    run_b: Annotated[Path, typer.Argument(help="Another run record.")],
) -> None:
    """Show two runs' settings, machine fingerprints and per-epoch metrics side by side, marking
    what differs and the first epoch where the runs part. Exit 0 when the final params digests
    match, 1 when they differ."""
    console = Console()
    try:
        a, b = read_record(run_a), read_record(run_b)
    except RecordError as e:
        raise fail(console, e.message) from None
    console.print(f"A: {run_a}\nB: {run_b}", highlight=False)
    names = ("A", "B")
    console.print(side_by_side("settings", _settings(a), _settings(b), names))
    console.print(side_by_side("machine (fingerprint)", a.get("versions", {}), b.get("versions", {}), names))
    table, parted = epochs_table(a.get("history", []), b.get("history", []), names)
    console.print(table)
    if a["digest"] == b["digest"]:
        console.print(f"[green]same final params[/green] (digest {a['digest'][:16]}...)", highlight=False)
        return
    console.print(f"[red]the final params differ[/red]{parted}", highlight=False)
    raise typer.Exit(1)


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    config = record.get("config", {})
    settings = dict(config.get("resolved", {}))
    settings["threads"] = config.get("run", {}).get("threads")
    settings["train_samples"] = config.get("train_samples")
    return settings


def side_by_side(title: str, a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> Table:
    """A key | A | B table of two dicts, the rows that differ marked."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("")
    table.add_column(names[0])
    table.add_column(names[1])
    table.add_column("")
    for key in dict.fromkeys([*a, *b]):
        va, vb = a.get(key, "-"), b.get(key, "-")
        table.add_row(escape(str(key)), escape(str(va)), escape(str(vb)), MARK if va != vb else "")
    return table


def epochs_table(a: list[dict[str, Any]], b: list[dict[str, Any]],
                 names: tuple[str, str]) -> tuple[Table, str]:
    """Per epoch: each run's loss, test accuracy ("acc") and params digest (its first 8 hex
    characters); the first epoch whose
    digests (or, without digests, metrics) differ is marked. Also a phrase saying where."""
    table = Table(title="per epoch", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("epoch", justify="right", no_wrap=True, min_width=5)
    for what in ("loss", "acc"):
        for name in names:
            table.add_column(f"{what} {name}", justify="right", no_wrap=True)
    for name in names:
        table.add_column(f"digest {name}", no_wrap=True)
    table.add_column("", no_wrap=True, min_width=8)
    first = None
    for i in range(max(len(a), len(b))):
        ea = a[i] if i < len(a) else {}
        eb = b[i] if i < len(b) else {}
        differs = _epoch_differs(ea, eb)
        mark = ""
        if differs and first is None:
            first, mark = i + 1, f"{MARK} first"
        elif differs:
            mark = MARK
        table.add_row(str(i + 1), loss(ea.get("loss")), loss(eb.get("loss")),
                      percent(ea.get("val_accuracy")), percent(eb.get("val_accuracy")),
                      _short(ea.get("digest")), _short(eb.get("digest")), mark)
    parted = f"; the runs part at epoch {first}" if first is not None else (
        "; every epoch agrees, only the final params differ")
    return table, parted


def _epoch_differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("digest") is not None and b.get("digest") is not None:
        return bool(a["digest"] != b["digest"])
    keys = ("loss", "val_loss", "val_accuracy")
    return any(a.get(k) != b.get(k) for k in keys)


def _short(v: Any) -> str:
    return "-" if v is None else f"{v[:8]}"
