"""The experiment record: one JSON file listing every run of an experiment (a grid of settings x
seeds), each run's status and results, and a summary per setting. Written atomically (after
every finished run, while an experiment goes on); read back with every field checked. Records of
the first format (``purenn.experiment/1``) still read, as this format (:mod:`.record_v1`).

The schema, the groups and the summaries are :mod:`.record_schema`'s (``purenn.experiment/2``).

A file larger than :data:`MAX_EXPERIMENT_BYTES` is refused unread and never written. A finished
mnist run's run record is read only through :func:`run_record_of`, which also checks that it is
that run's (same seed, settings, digest, metrics, epochs and data).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import attrs

from purenn.errors import RecordError
from purenn.experiments import record_v1
from purenn.experiments.record_schema import (
    EXPERIMENT_FORMAT,
    KIND_EPOCHS,
    KIND_METRICS,
    KINDS,
    MAX_EPOCHS,
    MAX_METRICS,
    MAX_NAME_LENGTH,
    MAX_RUNS,
    METRICS,  # noqa: F401 - importable from here, as before the split
    STATUSES,
    check_experiment,
    check_summary,
    groups_of,
    json_scalar,
    setting_name,
    summarize,
    summarize_group,
)
from purenn.io.records import dump_json, environment, load_json, show
from purenn.recipes.records import read_run_record
from purenn.recipes.runs import RunConfig

__all__ = [
    "EXPERIMENT_FORMAT", "KINDS", "KIND_EPOCHS", "KIND_METRICS", "MAX_EPOCHS",
    "MAX_EXPERIMENT_BYTES", "MAX_METRICS", "MAX_NAME_LENGTH", "MAX_RUNS", "STATUSES",
    "check_experiment", "groups_of", "is_experiment", "json_scalar", "make_experiment",
    "pending_entry", "plan_differences", "read_experiment", "read_run_or_experiment",
    "run_record_name", "run_record_of", "run_settings", "same_plan", "setting_name",
    "summarize", "summarize_group", "write_experiment",
]

#: The largest experiment record read or written, in bytes (64 MiB). An MNIST run's entry takes
#: about 3.5 kB with its provenance (20 epochs), an XOR run's about 60 kB (1000 epochs): some
#: 18 000 MNIST runs, or 1 000 XOR runs of the tutorial's length.
MAX_EXPERIMENT_BYTES = 64 * 2**20


def run_settings(experiment: dict[str, Any], index: int) -> dict[str, Any]:
    """The keyword arguments ``experiment["runs"][index]`` was run with: the shared settings and
    its group's."""
    entry = experiment["runs"][index]
    return {**experiment["settings"], **experiment["groups"][entry["group"]]["settings"]}


def pending_entry(group: int, seed: int) -> dict[str, Any]:
    """The entry of a run not done yet."""
    return {"group": group, "seed": seed, "status": "not_started", "attempts": 0, "error": None,
            "record": None, "digest": None, "metrics": {}, "seconds": None, "history": [],
            "provenance": None}


def run_record_name(experiment: str | os.PathLike[str], group: int, seed: int, n_groups: int) -> str:
    """The file name of a finished mnist run's run record, beside the experiment record
    ``experiment`` (named from its path, never from a file's contents): ``EXP.seed3.json``, or
    with several groups ``EXP.g1.seed3.json``."""
    base = os.path.basename(os.fspath(experiment))
    stem, suffix = os.path.splitext(base)
    middle = f".seed{seed}" if n_groups == 1 else f".g{group}.seed{seed}"
    return f"{stem}{middle}{suffix or '.json'}"


# --- making and writing -----------------------------------------------------------------------


def make_experiment(*, kind: str, function: str, settings: dict[str, Any], grid: dict[str, list[Any]],
                    seeds: Sequence[int], runs: Sequence[dict[str, Any]], jobs: int, scheduler: str | None,
                    executor: str | None = None) -> dict[str, Any]:
    """An experiment record (see the module's docstring) with its groups and summaries computed;
    a :class:`RecordError` if it breaks the schema."""
    groups = groups_of(grid)
    runs = list(runs)
    record = {
        "format": EXPERIMENT_FORMAT, "kind": kind, "function": function, "settings": dict(settings),
        "grid": {k: list(v) for k, v in grid.items()}, "seeds": list(seeds),
        "groups": [{"settings": g, "summary": summarize_group([r for r in runs if r["group"] == i])}
                   for i, g in enumerate(groups)],
        "jobs": jobs, "scheduler": scheduler, "executor": executor, "runs": runs,
        "summary": summarize(runs), "versions": environment(),
    }
    check_experiment(record)
    return record


def write_experiment(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` as JSON (sorted keys, indent 2), atomically; a :class:`RecordError` if it
    breaks the schema or would be larger than :data:`MAX_EXPERIMENT_BYTES`."""
    what = f"experiment record for {os.fspath(path)!r}"
    check_experiment(record, what)
    dump_json(path, record, what, MAX_EXPERIMENT_BYTES)


def same_plan(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two experiment records run the same runs: kind, function, settings, grid, seeds."""
    return not plan_differences(a, b)


def plan_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"its seeds are [0, 1], now [0, 1, 2]"`` for each part of the plan that differs."""
    return [f"its {key} {'is' if key != 'seeds' else 'are'} {show(saved[key])}, now {show(current[key])}"
            for key in ("kind", "function", "settings", "grid", "seeds") if saved[key] != current[key]]


# --- reading ----------------------------------------------------------------------------------


def is_experiment(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") in (EXPERIMENT_FORMAT, record_v1.FORMAT_V1)


def read_experiment(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an experiment record (a /1 one read as /2, with ``upgraded_from``);
    :class:`~purenn.errors.RecordError` otherwise."""
    where = os.fspath(path)
    record = load_json(where, "experiment record", MAX_EXPERIMENT_BYTES)
    return _checked(record, f"experiment record {where!r}")


def _checked(record: Any, what: str) -> dict[str, Any]:
    if isinstance(record, dict) and record.get("format") == record_v1.FORMAT_V1:
        record_v1.check_v1(record, what, check_summary)
        record = _filled(record_v1.upgrade(record))
    check_experiment(record, what)
    return record


def _filled(record: dict[str, Any]) -> dict[str, Any]:
    """An upgraded record with its format and summaries."""
    runs = record["runs"]
    for i, group in enumerate(record["groups"]):
        group["summary"] = summarize_group([r for r in runs if r["group"] == i])
    record.update(format=EXPERIMENT_FORMAT, summary=summarize(runs))
    return record


def read_run_or_experiment(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``("experiment", record)`` for an experiment record, ``("run", record)`` for a run record
    (read by :func:`purenn.recipes.records.read_run_record`), each fully checked; a
    :class:`~purenn.errors.RecordError` otherwise."""
    where = os.fspath(path)
    data = load_json(where, "record", MAX_EXPERIMENT_BYTES)  # the larger limit; a run's is checked below
    if is_experiment(data):
        return "experiment", _checked(data, f"experiment record {where!r}")
    return "run", read_run_record(where)


def run_record_of(path: str | os.PathLike[str], experiment: dict[str, Any], index: int) -> dict[str, Any]:
    """The run record of ``experiment["runs"][index]`` (the experiment record read from ``path``):
    the file its entry names, beside ``path``, read by :func:`~purenn.recipes.records.read_run_record`
    and checked to be that run's (its seed, settings, digest, metrics, epochs and data those of
    the entry). A :class:`~purenn.errors.RecordError` says what differs."""
    entry = experiment["runs"][index]
    where = f"`runs[{index}]` (seed {entry['seed']}) of {os.fspath(path)!r}"
    if entry["record"] is None:
        raise RecordError(f"{where} has no run record")
    record_path = os.path.join(os.path.dirname(os.fspath(path)), entry["record"])
    record = read_run_record(record_path)
    differences = _differences(entry, record, run_settings(experiment, index))
    if differences:
        raise RecordError(f"{record_path!r} is not the run record of {where}: "
                          f"{'; '.join(differences)} (was one of them edited or replaced?)")
    return record


def _differences(entry: dict[str, Any], record: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """What a run record says otherwise than the experiment's entry and settings."""
    run = record.get("config", {}).get("run", {})
    metrics, mine = record.get("metrics", {}), entry["metrics"]
    theirs = {
        "seed": record["seed"], "digest": record["digest"],
        "settings": _with_defaults(RunConfig, {k: v for k, v in run.items() if k != "seed"}),
        "test_accuracy": metrics.get("test_accuracy"), "train_seconds": metrics.get("train_seconds"),
        "history": [(h["epoch"], h["loss"], h.get("val_accuracy")) for h in record.get("history", [])],
    }
    ours = {
        "seed": entry["seed"], "digest": entry["digest"], "settings": _with_defaults(RunConfig, settings),
        "test_accuracy": mine.get("test_accuracy"), "train_seconds": mine.get("train_seconds"),
        "history": [(h["epoch"], h["loss"], h.get("val_accuracy")) for h in entry["history"]],
    }
    if entry["provenance"] is not None:  # what the run read (records before provenance: none)
        for key in ("data_files", "samples"):
            theirs[key] = record.get("provenance", {}).get(key)
            ours[key] = entry["provenance"].get(key)
    return [f"its {key} is {show(theirs[key])}, the experiment's {show(ours[key])}"
            for key in ours if theirs[key] != ours[key]]


def _with_defaults(cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the fields of ``cls`` it leaves out at their defaults."""
    defaults = {f.name: f.default for f in attrs.fields(cls)
                if f.name != "seed" and f.default is not attrs.NOTHING}
    return {**defaults, **settings}
