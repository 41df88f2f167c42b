"""The experiment record: one JSON file listing the runs of an experiment, their results and a
summary over seeds. Written atomically; read back with every field checked.

Schema (``format`` ``"purenn.experiment/1"``; every key below is required, extra keys are refused
in ``settings`` and kept elsewhere)::

    kind       "mnist" (a preset's runs, each with its own run record) or "xor"
    settings   object: what every run shares, the fields of the run's task without the seed
               (for "mnist" purenn.recipes.runs.RunConfig's, for "xor"
               purenn.experiments.tasks.XorTask's), each as that class accepts it
    seeds      list of the seeds asked for: non-negative ints, each once, at least one
    jobs       positive int, scheduler (str or null): where the runs ran
    runs       list, one per seed (failed ones included), in the seeds' order:
               seed, status ("ok" or "failed"), attempts (positive int: starts; more than 1:
               its worker died and it ran again), error (str for a failed run, else null),
               record (a finished MNIST run's run record: a plain file name, beside this
               file; else null), digest (params_digest, 64 lowercase hex characters),
               test_accuracy (in [0, 1]; MNIST), loss (the last epoch's training loss, finite,
               >= 0), train_seconds (finite, >= 0), history (per epoch, numbered 1, 2, ...:
               epoch, loss, val_accuracy in [0, 1] or null), and for "xor" solved (bool).
               A failed run has null results and an empty history; a finished one all of its
               results (test_accuracy: only MNIST's).
    summary    per metric (test_accuracy, loss, train_seconds): n, mean, std (sample standard
               deviation), min, max over the runs that finished (null for none); ok and failed
               counts. It must be the summary its runs give.
    versions   the machine that ran the experiment (purenn.io.records.environment())

A file larger than :data:`MAX_EXPERIMENT_BYTES` is refused unread and never written. A finished
MNIST run's run record is read only through :func:`run_record_of`, which also checks that it is
that run's (same seed, digest, settings, metrics and epochs).
"""

from __future__ import annotations

import math
import numbers
import os
import statistics as stats
from typing import Any, Sequence

import attrs

from purenn.errors import RecordError
from purenn.experiments.seeds import MAX_SEEDS
from purenn.experiments.tasks import XorTask
from purenn.io.records import (
    DIGEST,
    FRACTION,
    JSON_OBJECT,
    LOSS,
    SECONDS,
    STRING,
    VERSIONS,
    ListOf,
    Object,
    check_schema,
    dump_json,
    environment,
    fields_object,
    load_json,
    show,
)
from purenn.recipes.records import read_run_record
from purenn.recipes.runs import RunConfig
from purenn.validation import Rule, boolean, non_negative_int, one_of, optional, positive_int

__all__ = ["EXPERIMENT_FORMAT", "KINDS", "METRICS", "MAX_EXPERIMENT_BYTES", "statistics", "summarize",
           "per_epoch", "make_experiment", "run_entry", "write_experiment", "read_experiment",
           "check_experiment", "is_experiment", "read_run_or_experiment", "run_record_of"]

EXPERIMENT_FORMAT = "purenn.experiment/1"
KINDS = ("mnist", "xor")
METRICS = ("test_accuracy", "loss", "train_seconds")
#: The largest experiment record read or written, in bytes (64 MiB). An MNIST run's entry takes
#: about 2.5 kB (20 epochs), an XOR run's about 115 kB (1000 epochs): some 25 000 MNIST runs, or
#: 550 XOR runs of the tutorial's length (`purenn xor --sweep 100` writes 11.6 MB).
MAX_EXPERIMENT_BYTES = 64 * 2**20
_TASKS = {"mnist": RunConfig, "xor": XorTask}


# --- the summary ------------------------------------------------------------------------------


def statistics(given: Sequence[float | None]) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (sample standard deviation, dividing by n - 1; 0 for one
    value), ``min``, ``max`` over the values that are not None (None for no values). Computed
    exactly and rounded once (the standard library's ``statistics``), so no finite input
    overflows on the way."""
    values = [float(v) for v in given if v is not None]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    std = stats.stdev(values) if n > 1 else 0.0
    return {"n": n, "mean": stats.mean(values), "std": std, "min": min(values), "max": max(values)}


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` of an experiment's ``runs`` entries."""
    ok = [r for r in runs if r["status"] == "ok"]
    summary: dict[str, Any] = {m: statistics([r[m] for r in ok]) for m in METRICS}
    summary.update(ok=len(ok), failed=len(runs) - len(ok))
    return summary


def per_epoch(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list[int], list[float], list[float]]:
    """``(epochs, means, stds)`` of ``key`` over runs' histories, epoch by epoch, as far as every
    run goes and has the value (:func:`statistics` of each epoch's values)."""
    length = min((len(h) for h in histories), default=0)
    epochs, means, stds = [], [], []
    for i in range(length):
        values = [h[i].get(key) for h in histories]
        if any(v is None for v in values):
            continue
        summary = statistics(values)
        epochs.append(histories[0][i]["epoch"])
        means.append(summary["mean"])
        stds.append(summary["std"])
    return epochs, means, stds


# --- making and writing -----------------------------------------------------------------------


def make_experiment(*, kind: str, settings: dict[str, Any], seeds: Sequence[int],
                    runs: Sequence[dict[str, Any]], jobs: int, scheduler: str | None) -> dict[str, Any]:
    """An experiment record (see the module's docstring) with its summary computed; a
    :class:`RecordError` if it breaks the schema."""
    record = {"format": EXPERIMENT_FORMAT, "kind": kind, "settings": settings, "seeds": list(seeds),
              "jobs": jobs, "scheduler": scheduler, "runs": list(runs), "summary": summarize(runs),
              "versions": environment()}
    check_experiment(record)
    return record


def run_entry(seed: int, outcome: Any, record_path: str | None = None) -> dict[str, Any]:
    """The ``runs`` entry of one seed from its runner outcome (an MNIST run record or an XOR
    result as ``outcome.value``); ``record_path``: the file name of a finished MNIST run's run
    record."""
    entry: dict[str, Any] = {"seed": seed, "status": outcome.status, "attempts": outcome.attempts,
                             "error": outcome.error, "record": None, "digest": None,
                             "test_accuracy": None, "loss": None, "train_seconds": None,
                             "history": []}
    value = outcome.value
    if outcome.status != "ok" or not isinstance(value, dict):
        return entry
    history = value.get("history", [])
    entry.update(
        record=record_path,
        digest=value.get("digest"),
        loss=history[-1]["loss"] if history else value.get("loss"),
        test_accuracy=value.get("metrics", {}).get("test_accuracy"),
        train_seconds=value.get("metrics", {}).get("train_seconds", value.get("train_seconds")),
        history=[{"epoch": h["epoch"], "loss": h["loss"], "val_accuracy": h.get("val_accuracy")}
                 for h in history],
    )
    if "solved" in value:
        entry["solved"] = value["solved"]
    return entry


def write_experiment(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` as JSON (sorted keys, indent 2), atomically; a :class:`RecordError` if it
    breaks the schema or would be larger than :data:`MAX_EXPERIMENT_BYTES`."""
    what = f"experiment record for {os.fspath(path)!r}"
    check_experiment(record, what)
    dump_json(path, record, what, MAX_EXPERIMENT_BYTES)


# --- reading ----------------------------------------------------------------------------------


def is_experiment(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == EXPERIMENT_FORMAT


def read_experiment(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an experiment record; :class:`~purenn.errors.RecordError` otherwise."""
    where = os.fspath(path)
    record = load_json(where, "experiment record", MAX_EXPERIMENT_BYTES)
    check_experiment(record, f"experiment record {where!r}")
    return record


def read_run_or_experiment(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``("experiment", record)`` for an experiment record, ``("run", record)`` for a run record
    (read by :func:`purenn.recipes.records.read_run_record`), each fully checked; a
    :class:`~purenn.errors.RecordError` otherwise."""
    where = os.fspath(path)
    data = load_json(where, "record", MAX_EXPERIMENT_BYTES)  # the larger limit; a run's is checked below
    if is_experiment(data):
        check_experiment(data, f"experiment record {where!r}")
        return "experiment", data
    return "run", read_run_record(where)


def run_record_of(path: str | os.PathLike[str], experiment: dict[str, Any], index: int) -> dict[str, Any]:
    """The run record of ``experiment["runs"][index]`` (the experiment record read from ``path``):
    the file its entry names, beside ``path``, read by :func:`~purenn.recipes.records.read_run_record`
    and checked to be that run's (its seed, digest, settings, metrics and epochs those of the
    entry and the experiment). A :class:`~purenn.errors.RecordError` says what differs."""
    entry = experiment["runs"][index]
    where = f"`runs[{index}]` (seed {entry['seed']}) of {os.fspath(path)!r}"
    if entry["record"] is None:
        raise RecordError(f"{where} has no run record")
    record_path = os.path.join(os.path.dirname(os.fspath(path)), entry["record"])
    record = read_run_record(record_path)
    differences = _differences(entry, record, experiment["settings"])
    if differences:
        raise RecordError(f"{record_path!r} is not the run record of {where}: "
                          f"{'; '.join(differences)} (was one of them edited or replaced?)")
    return record


def _differences(entry: dict[str, Any], record: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """What a run record says otherwise than the experiment's entry and settings."""
    run = record.get("config", {}).get("run", {})
    metrics = record.get("metrics", {})
    theirs = {
        "seed": record["seed"], "digest": record["digest"],
        "settings": _with_defaults(RunConfig, {k: v for k, v in run.items() if k != "seed"}),
        "test_accuracy": metrics.get("test_accuracy"), "train_seconds": metrics.get("train_seconds"),
        "history": [(h["epoch"], h["loss"], h.get("val_accuracy")) for h in record.get("history", [])],
    }
    ours = {
        "seed": entry["seed"], "digest": entry["digest"], "settings": _with_defaults(RunConfig, settings),
        "test_accuracy": entry["test_accuracy"], "train_seconds": entry["train_seconds"],
        "history": [(h["epoch"], h["loss"], h["val_accuracy"]) for h in entry["history"]],
    }
    return [f"its {key} is {show(theirs[key])}, the experiment's {show(ours[key])}"
            for key in ours if theirs[key] != ours[key]]


def _with_defaults(cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the fields of ``cls`` it leaves out at their defaults."""
    defaults = {f.name: f.default for f in attrs.fields(cls)
                if f.name != "seed" and f.default is not attrs.NOTHING}
    return {**defaults, **settings}


# --- the schema -------------------------------------------------------------------------------


_FILE_NAME = Rule("a plain file name (no folder: run records are kept beside the experiment record)",
                  lambda v: isinstance(v, str),
                  lambda v: v not in ("", ".", "..") and len(v) <= 255
                  and not any(c in v for c in "/\\\0") and os.path.basename(v) == v)
_POINT = Object({"epoch": positive_int, "loss": LOSS, "val_accuracy": optional(FRACTION)},
                required=("epoch", "loss", "val_accuracy"))
_ENTRY_KEYS = ("seed", "status", "attempts", "error", "record", "digest", "test_accuracy", "loss",
               "train_seconds", "history")
_ENTRY = Object({
    "seed": non_negative_int, "status": one_of(("ok", "failed")), "attempts": positive_int,
    "error": optional(STRING), "record": optional(_FILE_NAME),
    "digest": optional(DIGEST), "test_accuracy": optional(FRACTION), "loss": optional(LOSS),
    "train_seconds": optional(SECONDS), "history": ListOf(_POINT), "solved": optional(boolean),
}, required=_ENTRY_KEYS)
_SCHEMA = Object({
    "kind": one_of(KINDS), "settings": JSON_OBJECT,
    "seeds": ListOf(non_negative_int), "jobs": positive_int,
    "scheduler": optional(STRING),
    "runs": ListOf(_ENTRY), "summary": JSON_OBJECT,
    "versions": VERSIONS,
}, required=("format", "kind", "settings", "seeds", "jobs", "scheduler", "runs", "summary", "versions"))
# the settings of an experiment of a kind: its task's fields but the seed, each with the rule the
# task checks it by (so a task built from them is never refused)
_SETTINGS = {kind: fields_object(cls, exclude=("seed",), closed=True) for kind, cls in _TASKS.items()}


def check_experiment(record: Any, what: str = "experiment record") -> None:
    """:class:`~purenn.errors.RecordError` unless ``record`` follows the schema: every field of
    the type and range shown, one run per seed in the seeds' order, each run's fields those of
    its status and kind, and the summary the one its runs give."""
    if not is_experiment(record):
        raise RecordError(f"{what} is not a purenn experiment record (format {EXPERIMENT_FORMAT!r})")
    check_schema(record, _SCHEMA, what)
    check_schema(record["settings"], _SETTINGS[record["kind"]], what, "settings")
    _check_seeds(record, what)
    for i, run in enumerate(record["runs"]):
        _check_entry(record["kind"], run, f"runs[{i}]", what)
    _check_summary(record["summary"], summarize(record["runs"]), what)


def _check_seeds(record: dict[str, Any], what: str) -> None:
    seeds, runs = record["seeds"], record["runs"]
    if not 1 <= len(seeds) <= MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise RecordError(f"{what}: `seeds` must list from 1 to {MAX_SEEDS} seeds, each once, "
                          f"got {show(seeds)}")
    if [r["seed"] for r in runs] != seeds:
        raise RecordError(f"{what}: `runs` must hold one run per seed of `seeds`, failed ones "
                          f"included, in their order: seeds {show(seeds)}, runs of seeds "
                          f"{show([r['seed'] for r in runs])}")
    names = [r["record"] for r in runs if r["record"] is not None]
    if len(set(names)) != len(names):
        raise RecordError(f"{what}: two runs name one run record ({show(names)})")


def _check_entry(kind: str, run: dict[str, Any], path: str, what: str) -> None:
    """The fields a run of this status and kind has (results only when it finished), its epochs
    numbered 1, 2, ... and its ``loss`` the last epoch's."""
    finished = run["status"] == "ok"
    has = {"error": not finished, "digest": finished, "loss": finished, "train_seconds": finished,
           "test_accuracy": finished and kind == "mnist", "record": finished and kind == "mnist",
           "solved": finished and kind == "xor"}
    for key, needed in has.items():
        if (run.get(key) is not None) != needed:
            state = f"a {'finished' if finished else 'failed'} {kind} run"
            should = "must have a value" if needed else "must be null"
            raise RecordError(f"{what}: `{path}.{key}` {should} for {state}, got {show(run.get(key))}")
    history = run["history"]
    if not finished and history:
        raise RecordError(f"{what}: `{path}.history` must be empty for a failed run")
    for i, point in enumerate(history):
        if point["epoch"] != i + 1:
            raise RecordError(f"{what}: `{path}.history[{i}].epoch` must be {i + 1} (epochs are "
                              f"numbered from 1, in order), got {show(point['epoch'])}")
    if history and run["loss"] != history[-1]["loss"]:
        raise RecordError(f"{what}: `{path}.loss` is {show(run['loss'])} but its last epoch's is "
                          f"{show(history[-1]['loss'])}; they must agree (was the record edited?)")


def _check_summary(recorded: dict[str, Any], computed: dict[str, Any], what: str) -> None:
    """``recorded`` must be ``computed`` (its counts exactly; means and standard deviations to
    within rounding, as another correct formula would give them)."""
    for key, value in computed.items():
        path = f"summary.{key}"
        if key not in recorded:
            raise RecordError(f"{what}: `summary` lacks {key!r}; it must be the summary its runs give")
        if isinstance(value, int):
            _same(recorded[key], value, path, what, exact=True)
            continue
        if not isinstance(recorded[key], dict) or set(recorded[key]) != set(value):
            raise RecordError(f"{what}: `{path}` must be an object of {sorted(value)}, got {show(recorded[key])}")
        for field, number in value.items():
            _same(recorded[key][field], number, f"{path}.{field}", what, exact=field in ("n", "min", "max"),
                  scale=max(abs(value["min"] or 0.0), abs(value["max"] or 0.0)))


def _same(recorded: Any, computed: Any, path: str, what: str, *, exact: bool, scale: float = 0.0) -> None:
    if computed is None:
        ok = recorded is None
    elif not isinstance(recorded, numbers.Real) or isinstance(recorded, bool):
        ok = False
    elif exact:
        ok = recorded == computed and isinstance(recorded, int) == isinstance(computed, int)
    else:
        ok = math.isclose(recorded, computed, rel_tol=1e-9, abs_tol=1e-12 * scale)
    if not ok:
        raise RecordError(f"{what}: `{path}` is {show(recorded)} but the runs give {show(computed)}; "
                          "the summary must be the one its runs give (was the record edited?)")
