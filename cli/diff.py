"""``purenn diff A.json B.json``: two run records side by side, first difference marked; or an
experiment record with a run record (its run of the same seed) or with another experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from purenn.errors import RecordError
from purenn.experiments.record import read_run_or_experiment, run_record_of
from purenn_cli.errors import EXIT_FAILED, fail
from purenn_cli.experiment import loss, percent

MARK = "[bold red]≠[/bold red]"
NAMES = ("A", "B")


def diff(
    run_a: Annotated[Path, typer.Argument(help="A run record (`purenn mnist --record`) or an experiment record (`--seeds ... --record`).")],
    run_b: Annotated[Path, typer.Argument(help="Another run record or experiment record.")],
) -> None:
    """Show two runs' settings, machine fingerprints and per-epoch metrics side by side, marking
    what differs and the first epoch where the runs part; exit 0 when the final params digests
    match, 1 when they differ. A run record against an experiment record compares the run with
    the experiment's run of the same seed (else its first finished run, saying so); two
    experiment records are compared seed by seed."""
    console = Console()
    try:
        (kind_a, a), (kind_b, b) = read_run_or_experiment(run_a), read_run_or_experiment(run_b)
    except RecordError as e:
        raise fail(console, e.message) from None
    console.print(escape(f"A: {run_a} ({_what(kind_a, a)})\nB: {run_b} ({_what(kind_b, b)})"), highlight=False)
    if kind_a == kind_b == "experiment":
        return _experiments(console, a, b)
    if kind_a == "experiment":
        a = _run_of(console, run_a, a, b["seed"], "A")
    if kind_b == "experiment":
        b = _run_of(console, run_b, b, a["seed"], "B")
    _runs(console, a, b)


def _what(kind: str, record: dict[str, Any]) -> str:
    if kind == "run":
        return f"a run record: {record['config'].get('run', {}).get('preset', '?')} preset, seed {record['seed']}"
    grid = f"{len(record['groups'])} settings x " if record["grid"] else ""
    return f"an experiment record: {record['kind']}, {grid}{len(record['seeds'])} seeds"


def _run_of(console: Console, path: Path, experiment: dict[str, Any], seed: int, name: str) -> dict[str, Any]:
    """The run record of ``experiment``'s run of ``seed`` (else its first finished run), saying
    which one is compared."""
    if experiment["kind"] != "mnist":
        raise fail(console, f"{name} is an XOR experiment, whose runs keep no run record to compare "
                            "with a run record; compare it with another experiment record")
    finished = [i for i, r in enumerate(experiment["runs"]) if r["status"] == "ok"]
    if not finished:
        raise fail(console, f"{name} has no finished run to compare with (every run failed)", EXIT_FAILED)
    same = [i for i in finished if experiment["runs"][i]["seed"] == seed]
    index = (same or finished)[0]
    entry = experiment["runs"][index]
    why = "" if same else f"; it has no finished run of seed {seed}, so its first finished run"
    console.print(escape(f"comparing with {name}'s run of seed {entry['seed']} (its run record "
                         f"{entry['record']}){why}"), highlight=False)
    try:
        return run_record_of(path, experiment, index)
    except RecordError as e:
        raise fail(console, e.message) from None


def _runs(console: Console, a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two run records side by side; exit 1 when their final params differ."""
    console.print(side_by_side("settings", _settings(a), _settings(b), NAMES))
    console.print(side_by_side("machine (fingerprint)", a.get("versions", {}), b.get("versions", {}), NAMES))
    table, parted = epochs_table(a.get("history", []), b.get("history", []), NAMES)
    console.print(table)
    if a["digest"] == b["digest"]:
        console.print(f"[green]same final params[/green] (digest {a['digest'][:16]}...)", highlight=False)
        return
    console.print(f"[red]the final params differ[/red]{parted}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _experiments(console: Console, a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two experiment records: settings, machines, summaries, and each seed's run; exit 1
    unless they ran the same seeds to the same params."""
    console.print(side_by_side("settings", {"kind": a["kind"], **a["settings"]},
                               {"kind": b["kind"], **b["settings"]}, NAMES))
    console.print(side_by_side("machine (fingerprint)", a["versions"], b["versions"], NAMES))
    console.print(side_by_side("summary (mean ± std over the finished runs)", _summary(a), _summary(b), NAMES))
    unit = "runs" if a["grid"] or b["grid"] else "seeds"
    table = Table(title=f"per {unit[:-1]}", box=box.SIMPLE_HEAD)
    for column in (unit[:-1], "A", "B", ""):
        table.add_column(column)
    runs_a, runs_b = (_runs_by_key(e) for e in (a, b))
    differ = []
    for key in dict.fromkeys([*runs_a, *runs_b]):
        ra, rb = runs_a.get(key), runs_b.get(key)
        same = ra is not None and rb is not None and (ra["status"], ra["digest"]) == (rb["status"], rb["digest"])
        differ += [] if same else [key]
        table.add_row(escape(key), _run_cell(ra), _run_cell(rb), "" if same else MARK)
    console.print(table)
    if not differ:
        console.print(f"[green]same runs[/green]: all {len(runs_a)} {unit} give the same params", highlight=False)
        return
    console.print(f"[red]the experiments differ[/red] in {len(differ)} of {len(table.rows)} {unit} "
                  f"({', '.join(map(str, differ[:20]))}{', ...' if len(differ) > 20 else ''})", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _runs_by_key(experiment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An experiment's runs by their group's settings and seed (``"lr=0.001 seed 3"``; ``"3"``
    without a grid), so that two experiments of the same grid compare run by run."""
    groups = [" ".join(f"{k}={v}" for k, v in g["settings"].items()) for g in experiment["groups"]]
    return {f"{groups[r['group']]} seed {r['seed']}" if groups[r["group"]] else str(r["seed"]): r
            for r in experiment["runs"]}


def _run_cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    if run["status"] != "ok":
        return "failed" if run["status"] == "failed" else "not run"
    return "finished" if run["digest"] is None else f"{run['digest'][:16]}"


def _summary(experiment: dict[str, Any]) -> dict[str, str]:
    summary = experiment["summary"]
    rows = {"finished runs": f"{summary['ok']} of {sum(summary.values())}"}
    for group in experiment["groups"]:
        where = " ".join(f"{k}={v}" for k, v in group["settings"].items())
        for metric, s in group["summary"]["metrics"].items():
            fmt = percent if metric == "test_accuracy" else loss
            rows[f"{where} {metric}".strip()] = "-" if s["n"] == 0 else f"{fmt(s['mean'])} ± {fmt(s['std'])}"
    return rows


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
