"""``purenn mnist --seeds 0-4 [--set lr=1e-3,4e-3 ...]``: a preset run over a grid of settings x
seeds, through :func:`purenn.experiments.run` (locally in parallel, or on a Dask cluster)."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console

from purenn.errors import ArgumentError
from purenn.experiments.runner import default_jobs
from purenn.experiments.seeds import parse_seeds
from purenn.experiments.tasks import mnist_trial, threads_per_run
from purenn.recipes.runs import RunConfig
from purenn_cli.errors import fail
from purenn_cli.experiment import columns_for, finished_or_exit, run_study, show_study
from purenn_cli.report import load_data

#: The settings ``--set`` sweeps: RunConfig's fields (the run settings the command line has as
#: options) but the seed, which ``--seeds`` gives.
SETTABLE = tuple(f.name for f in attrs.fields(RunConfig) if f.name != "seed")


def mnist_experiment(console: Console, config: RunConfig, seeds_text: str, *, sets: list[str],
                     given: set[str], jobs: int | None, scheduler: str | None, data_dir: Path | None,
                     record: Path | None, checkpoint_dir: Path | None) -> None:
    """Run ``config`` once per seed of ``seeds_text`` and combination of the ``--set`` values
    (``given``: the settings given as options, which ``--set`` may not give again), show the
    results, write the records."""
    try:
        seeds = parse_seeds(seeds_text)
    except ArgumentError as e:
        raise fail(console, f"--seeds: {e.message}") from None
    grid = parse_sets(console, sets, given)
    runs = len(seeds) * _size(grid)
    jobs = jobs or (1 if scheduler else default_jobs(runs))
    if "threads" not in grid:
        config = attrs.evolve(config, threads=threads_per_run(config.threads, jobs, scheduler))
    settings = {k: v for k, v in attrs.asdict(config).items() if k != "seed" and k not in grid}
    for dataset in dict.fromkeys(grid.get("dataset", [config.dataset])):
        load_data(console, data_dir, dataset, splits=("test",))  # found (or downloaded) once, here
    options = {"data_dir": None if data_dir is None else str(data_dir.resolve())}
    threads = "as --set says" if "threads" in grid else str(config.threads)
    study = run_study(console, mnist_trial, what=f"{config.preset} preset, {threads} BLAS thread(s) per run",
                      record=record, seeds=seeds, grid=grid, settings=settings, jobs=jobs,
                      scheduler=scheduler, checkpoint_dir=checkpoint_dir, options=options)
    title = f"{config.preset}: {len(study.record['groups'])} setting(s) x {len(seeds)} seeds"
    show_study(console, study, title, columns_for(study.record))
    if record is not None:
        finished = sum(r.status == "ok" for r in study.runs)
        console.print(f"wrote the experiment record {record} and {finished} run records beside it",
                      highlight=False)
    finished_or_exit(console, study, record)


def _size(grid: dict[str, list[Any]]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def parse_sets(console: Console, sets: list[str], given: set[str]) -> dict[str, list[Any]]:
    """The grid ``--set NAME=V1,V2`` options give, in their order; each name one of
    :data:`SETTABLE` (``batch-size`` or ``batch_size``), given once and not also as its own option,
    each value read as that setting's type (``none`` for "the preset's" where it may be None)."""
    grid: dict[str, list[Any]] = {}
    for text in sets:
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise fail(console, f"--set {text!r}: write NAME=VALUE1,VALUE2,..., e.g. --set lr=1e-3,4e-3")
        if name not in SETTABLE:
            raise fail(console, f"--set: {name!r} is not a run setting; --set takes one of: "
                                f"{', '.join(SETTABLE)} (the seed: --seeds)")
        if name in grid or name in given:
            how = "twice in --set" if name in grid else f"both as --{name.replace('_', '-')} and in --set"
            raise fail(console, f"--set: {name} is given {how}; give it once")
        grid[name] = [_value(console, name, v.strip()) for v in values.split(",")]
    return grid


_TYPES = typing.get_type_hints(RunConfig)


def _value(console: Console, name: str, text: str) -> Any:
    """``text`` as a value of RunConfig's ``name`` (its type from the field's annotation)."""
    kinds = typing.get_args(_TYPES[name]) if isinstance(_TYPES[name], types.UnionType) else (_TYPES[name],)
    if type(None) in kinds and text.lower() in ("none", "null"):
        return None
    if bool in kinds and text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float, str):
        if kind in kinds:
            try:
                return kind(text)
            except ValueError:
                break
    wanted = " or ".join(k.__name__ for k in kinds if k is not type(None))
    raise fail(console, f"--set {name}: {text!r} is not a value of {name} (it takes {wanted}"
                        f"{', or none' if type(None) in kinds else ''})")
