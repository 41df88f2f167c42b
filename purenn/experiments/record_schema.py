"""The experiment record's schema (:mod:`purenn.experiments.record` reads and writes the file):
what each field must be, the groups its grid makes and the summaries its runs give, all checked
by :func:`check_experiment`.

Schema (``format`` ``"purenn.experiment/2"``; every key below is required)::

    kind       "mnist" (a preset's runs, each with its own run record beside this file), "xor"
               (the tutorial's XOR network) or "function" (the caller's own run function)
    function   the run function as "module:qualname" (mnist and xor: purenn's own,
               purenn.experiments.tasks:mnist_trial and :xor_trial)
    settings   object: what every run shares, name -> JSON scalar (null, bool, int, finite
               float, str); for mnist RunConfig's fields, for xor XorTask's, without the seed
               and the grid's (each as that class accepts it)
    grid       object: the settings swept, name -> list of distinct JSON scalars ({}: none);
               no name of `settings`; names are Python identifiers of at most MAX_NAME_LENGTH
               characters, never "seed"
    seeds      list of the seeds: non-negative ints, each once, 1 to MAX_SEEDS of them
    groups     list, one per combination of the grid's values, in itertools.product's order of
               the grid's names sorted (each one's values in their order): settings (that combination), summary (ok, failed,
               not_started counts; metrics: per metric n, mean, std (sample standard deviation),
               min, max over the group's finished runs). Each summary must be the one its runs give.
    jobs, scheduler, executor   where the runs ran last: a positive int, a Dask scheduler's
               address or null, the class of the caller's executor or null
    runs       list, group by group, each group's runs in the seeds' order (groups x seeds of
               them, at most MAX_RUNS): group (index into groups), seed, status ("ok",
               "failed" or "not_started": an interrupted experiment's runs not done yet),
               attempts (starts: 0 for a run not started), error (str for a failed run, else
               null), record (a finished mnist run's run record: a plain file name beside this
               file, else null), digest (params digest: 64 lowercase hex characters; required
               for a finished mnist or xor run, optional for a function's), metrics (name ->
               finite number or bool, at most MAX_METRICS; mnist: test_accuracy, loss,
               train_seconds; xor: solved, loss, train_seconds; {} unless finished), seconds
               (the run's wall time, or null), history (per epoch, numbered 1, 2, ..., at most
               MAX_EPOCHS: epoch, then names of at most MAX_NAME_LENGTH characters -> number,
               bool or null, or digest -> 64 hex characters or null), provenance (what the run
               read and ran: purenn.io.records.PROVENANCE; null for a run not finished, and in
               records written before provenance existed)
    summary    ok, failed and not_started counts over all runs
    versions   the machine that ran the experiment (purenn.io.records.environment())
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

from purenn.errors import RecordError
from purenn.experiments.seeds import MAX_SEEDS
from purenn.experiments.summary import statistics
from purenn.experiments.tasks import MNIST_FUNCTION, XOR_FUNCTION, XorTask
from purenn.io.records import (
    DIGEST, FRACTION, JSON_OBJECT, LOSS, PROVENANCE, SECONDS, STRING, VERSIONS, ListOf, Object,
    check_schema, fields_object, show,
)
from purenn.recipes.runs import RunConfig
from purenn.validation import Rule, boolean, non_negative_int, one_of, optional, positive_int

__all__ = [
    "EXPERIMENT_FORMAT", "KINDS", "KIND_EPOCHS", "KIND_METRICS", "MAX_EPOCHS", "MAX_METRICS",
    "MAX_NAME_LENGTH", "MAX_RUNS", "STATUSES", "check_experiment", "groups_of", "json_scalar",
    "setting_name", "summarize", "summarize_group",
]

EXPERIMENT_FORMAT = "purenn.experiment/2"
KINDS = ("mnist", "xor", "function")
STATUSES = ("ok", "failed", "not_started")
#: The most runs (groups x seeds) one experiment holds: as many as seeds may be given.
MAX_RUNS = MAX_SEEDS
#: The longest name of a setting, a metric or a history field, in characters.
MAX_NAME_LENGTH = 64
#: The most metrics one run may report.
MAX_METRICS = 64
#: The most epochs one run's history may hold in the record (the tutorial's XOR run has 1000).
MAX_EPOCHS = 10_000
#: The metrics a finished run of purenn's own kinds has, with what each must be.
KIND_METRICS: dict[str, dict[str, Rule]] = {
    "mnist": {"test_accuracy": FRACTION, "loss": LOSS, "train_seconds": SECONDS},
    "xor": {"solved": boolean, "loss": LOSS, "train_seconds": SECONDS},
}
#: Each epoch of a finished run of purenn's own kinds (every key present but the optional ones).
KIND_EPOCHS: dict[str, Object] = {
    "mnist": Object({"epoch": positive_int, "loss": LOSS, "val_accuracy": optional(FRACTION),
                     "digest": optional(DIGEST)}, required=("epoch", "loss", "val_accuracy"), closed=True),
    "xor": Object({"epoch": positive_int, "loss": LOSS, "val_accuracy": optional(FRACTION)},  # null in /1
                  required=("epoch", "loss"), closed=True),
}
#: The metrics of an MNIST run, in order (what purenn.experiments.comparison compares).
METRICS = tuple(KIND_METRICS["mnist"])
#: purenn's own kinds of run: the run function each names, and the task its settings make
FUNCTIONS = {"mnist": MNIST_FUNCTION, "xor": XOR_FUNCTION}
TASKS = {"mnist": RunConfig, "xor": XorTask}


# --- settings and groups ----------------------------------------------------------------------


def is_scalar(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)):
        return True
    if isinstance(v, numbers.Integral):
        return True
    return isinstance(v, float) and math.isfinite(v)


#: a setting's value as a record holds it
json_scalar = Rule("a JSON scalar (null, a bool, an int, a finite float or a string)", is_scalar)
#: a setting's name: it becomes a keyword argument of the run function
setting_name = Rule(f"a Python identifier of at most {MAX_NAME_LENGTH} characters, not `seed`",
                    lambda v: isinstance(v, str),
                    lambda v: v.isidentifier() and len(v) <= MAX_NAME_LENGTH and v != "seed")


def groups_of(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The settings of each group: every combination of the grid's values, in
    ``itertools.product``'s order of the names sorted (as a JSON file keeps them; ``[{}]`` for an
    empty grid), each setting's values in their order."""
    names = sorted(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


# --- the summary ------------------------------------------------------------------------------


def summarize_group(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A group's summary: its ok, failed and not_started counts, and :func:`statistics` of each
    metric over its finished runs (the metrics any of them has, in the order first seen)."""
    ok = [r for r in runs if r["status"] == "ok"]
    names = list(dict.fromkeys(m for r in ok for m in r["metrics"]))
    return {**summarize(runs), "metrics": {m: statistics([r["metrics"].get(m) for r in ok]) for m in names}}


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, int]:
    """The ok, failed and not_started counts of ``runs``."""
    return {status: sum(r["status"] == status for r in runs) for status in STATUSES}


# --- the schema -------------------------------------------------------------------------------


_FILE_NAME = Rule("a plain file name (no folder: run records are kept beside the experiment record)",
                  lambda v: isinstance(v, str),
                  lambda v: v not in ("", ".", "..") and len(v) <= 255
                  and not any(c in v for c in "/\\\0") and os.path.basename(v) == v)
_FUNCTION = Rule("a function as module:qualname", lambda v: isinstance(v, str),
                 lambda v: v.count(":") == 1 and all(v.split(":")) and len(v) <= 1000)
_SCALARS = Rule(f"an object of setting name ({setting_name.what}) -> JSON scalar",
                lambda v: isinstance(v, dict),
                lambda v: all(setting_name.kind(k) and setting_name.test(k) and is_scalar(x) for k, x in v.items()))
_GRID = Rule(f"an object of setting name ({setting_name.what}) -> a non-empty list of distinct JSON scalars",
             lambda v: isinstance(v, dict),
             lambda v: all(setting_name.kind(k) and setting_name.test(k) and isinstance(x, list) and x
                           and all(is_scalar(y) for y in x) and _distinct(x) for k, x in v.items()))


def _distinct(values: list[Any]) -> bool:
    keys = [(type(v).__name__, v) for v in values]  # 1 and True, 1 and 1.0 are different settings
    return len(set(keys)) == len(keys)


def _metric_value(v: Any) -> bool:
    return isinstance(v, bool) or (isinstance(v, numbers.Real) and math.isfinite(v))


_METRICS = Rule(f"an object of at most {MAX_METRICS} metrics, name (at most {MAX_NAME_LENGTH} "
                "characters) -> finite number or bool", lambda v: isinstance(v, dict),
                lambda v: len(v) <= MAX_METRICS and all(
                    isinstance(k, str) and 0 < len(k) <= MAX_NAME_LENGTH and _metric_value(x) for k, x in v.items()))


def _point_value(key: str, v: Any) -> bool:
    if key == "digest":
        return v is None or (DIGEST.kind(v) and DIGEST.test(v))
    return v is None or isinstance(v, (bool, numbers.Real))


_POINT = Rule(f"an epoch: epoch (positive int), then names of at most {MAX_NAME_LENGTH} characters -> "
              "number, bool or null (digest: 64 lowercase hex characters or null)",
              lambda v: isinstance(v, dict),
              lambda v: positive_int.kind(v.get("epoch")) and positive_int.test(v.get("epoch")) and all(
                  isinstance(k, str) and 0 < len(k) <= MAX_NAME_LENGTH and (k == "epoch" or _point_value(k, x))
                  for k, x in v.items()))
# which results a run of each status has: "required", "optional" or "null" (a finished run's
# record: an mnist run's only; its digest: optional for a function's)
_PRESENCE = {
    "ok": {"error": "null", "record": "required", "digest": "required", "seconds": "required",
           "provenance": "optional"},
    "failed": {"error": "required", "record": "null", "digest": "null", "seconds": "optional",
               "provenance": "null"},
    "not_started": {"error": "null", "record": "null", "digest": "null", "seconds": "null",
                    "provenance": "null"},
}
_ENTRY_KEYS = ("group", "seed", "status", "attempts", "error", "record", "digest", "metrics", "seconds",
               "history", "provenance")
_ENTRY = Object({
    "group": non_negative_int, "seed": non_negative_int, "status": one_of(STATUSES),
    "attempts": non_negative_int, "error": optional(STRING), "record": optional(_FILE_NAME),
    "digest": optional(DIGEST), "metrics": _METRICS, "seconds": optional(SECONDS),
    "history": ListOf(_POINT), "provenance": optional(JSON_OBJECT),
}, required=_ENTRY_KEYS, closed=True)
_GROUP = Object({"settings": _SCALARS, "summary": JSON_OBJECT}, required=("settings", "summary"), closed=True)
_SCHEMA = Object({
    "kind": one_of(KINDS), "function": _FUNCTION, "settings": _SCALARS, "grid": _GRID,
    "seeds": ListOf(non_negative_int), "groups": ListOf(_GROUP), "jobs": positive_int,
    "scheduler": optional(STRING), "executor": optional(STRING),
    "runs": ListOf(_ENTRY), "summary": JSON_OBJECT, "versions": VERSIONS,
}, required=("format", "kind", "function", "settings", "grid", "seeds", "groups", "jobs", "scheduler",
             "executor", "runs", "summary", "versions"))
#: The settings of a run of purenn's own kinds: its task's fields but the seed, each with the rule
#: the task checks it by (so a task built from them is never refused; /1 records' too).
TASK_SETTINGS = {kind: fields_object(cls, exclude=("seed",), closed=True) for kind, cls in TASKS.items()}


def check_experiment(record: Any, what: str = "experiment record") -> None:
    """:class:`~purenn.errors.RecordError` unless ``record`` follows the schema: every field of
    the type and range shown, one run per group and seed in their order, each run's fields those
    of its status and kind, and every summary the one its runs give."""
    if not isinstance(record, dict) or record.get("format") != EXPERIMENT_FORMAT:
        raise RecordError(f"{what} is not a purenn experiment record (format {EXPERIMENT_FORMAT!r})")
    check_schema(record, _SCHEMA, what)
    _check_plan(record, what)
    for i, run in enumerate(record["runs"]):
        _check_entry(record["kind"], run, f"runs[{i}]", what)
    for i, group in enumerate(record["groups"]):
        runs = [r for r in record["runs"] if r["group"] == i]
        check_summary(group["summary"], summarize_group(runs), what, f"groups[{i}].summary")
    check_summary(record["summary"], summarize(record["runs"]), what)


def _check_plan(record: dict[str, Any], what: str) -> None:
    """The function of the kind; grid names apart from the shared ones; the groups the grid's;
    the seeds distinct; one run per group and seed, in order; run records named once."""
    kind, grid, seeds = record["kind"], record["grid"], record["seeds"]
    if kind in FUNCTIONS and record["function"] != FUNCTIONS[kind]:
        raise RecordError(f"{what}: `function` of a {kind} experiment must be {FUNCTIONS[kind]!r}, "
                          f"got {show(record['function'])}")
    shared = sorted(set(grid) & set(record["settings"]))
    if shared:
        raise RecordError(f"{what}: {show(shared)} are in both `settings` and `grid`; a setting is "
                          "either shared by every run or swept")
    if not 1 <= len(seeds) <= MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise RecordError(f"{what}: `seeds` must list from 1 to {MAX_SEEDS} seeds, each once, got {show(seeds)}")
    size = math.prod(len(v) for v in grid.values()) * len(seeds)
    if size > MAX_RUNS:
        raise RecordError(f"{what}: its grid and seeds make {size} runs, more than the {MAX_RUNS} "
                          "an experiment may hold")
    groups = groups_of(grid)
    if [g["settings"] for g in record["groups"]] != groups:
        raise RecordError(f"{what}: `groups` must be the {len(groups)} combinations of the grid's "
                          f"values, in order; got {show([g['settings'] for g in record['groups']])}")
    if kind in TASK_SETTINGS:
        for i, group in enumerate(groups):
            check_schema({**record["settings"], **group}, TASK_SETTINGS[kind], what,
                         "settings" if not group else f"groups[{i}].settings")
    expected = [(g, s) for g in range(len(groups)) for s in seeds]
    found = [(r["group"], r["seed"]) for r in record["runs"]]
    if found != expected:
        raise RecordError(f"{what}: `runs` must hold one run per group and seed, unfinished ones "
                          f"included, group by group in the seeds' order: expected (group, seed) "
                          f"{show(expected)}, got {show(found)}")
    names = [r["record"] for r in record["runs"] if r["record"] is not None]
    if len(set(names)) != len(names):
        raise RecordError(f"{what}: two runs name one run record ({show(names)})")


def _check_entry(kind: str, run: dict[str, Any], path: str, what: str) -> None:
    """The fields a run of this status and kind has, its epochs numbered 1, 2, ... and its
    ``loss`` (mnist, xor) the last epoch's."""
    status = run["status"]
    ok = status == "ok"
    for key, presence in _PRESENCE[status].items():
        if key == "record" and ok:
            presence = "required" if kind == "mnist" else "null"
        if key == "digest" and ok and kind == "function":
            presence = "optional"
        present = run[key] is not None
        if (presence == "required" and not present) or (presence == "null" and present):
            should = "must have a value" if presence == "required" else "must be null"
            raise RecordError(f"{what}: `{path}.{key}` {should} for a {kind} run whose status is "
                              f"{status!r}, got {show(run[key])}")
    if (run["attempts"] == 0) != (status == "not_started"):
        raise RecordError(f"{what}: `{path}.attempts` must be 0 for a run not started and at least 1 "
                          f"otherwise; it is {status!r} with {show(run['attempts'])}")
    if not ok and (run["metrics"] or run["history"]):
        raise RecordError(f"{what}: `{path}` has results but is {status!r}: its metrics and history "
                          "must be empty")
    if ok and run["provenance"] is not None:
        check_schema(run["provenance"], PROVENANCE, what, f"{path}.provenance")
    _check_history(run, path, what)
    if ok and kind in KIND_METRICS:
        _check_kind_metrics(kind, run, path, what)


def _check_history(run: dict[str, Any], path: str, what: str) -> None:
    history = run["history"]
    if len(history) > MAX_EPOCHS:
        raise RecordError(f"{what}: `{path}.history` holds {len(history)} epochs, more than {MAX_EPOCHS}")
    for i, point in enumerate(history):
        if point["epoch"] != i + 1:
            raise RecordError(f"{what}: `{path}.history[{i}].epoch` must be {i + 1} (epochs are "
                              f"numbered from 1, in order), got {show(point['epoch'])}")


def _check_kind_metrics(kind: str, run: dict[str, Any], path: str, what: str) -> None:
    """A finished mnist or xor run's metrics and epochs are exactly its kind's, its loss its last
    epoch's."""
    metrics = run["metrics"]
    check_schema(metrics, Object(KIND_METRICS[kind], required=tuple(KIND_METRICS[kind]), closed=True),
                 what, f"{path}.metrics")
    history = run["history"]
    check_schema(history, ListOf(KIND_EPOCHS[kind]), what, f"{path}.history")
    if history and metrics["loss"] != history[-1].get("loss"):
        raise RecordError(f"{what}: `{path}.metrics.loss` is {show(metrics['loss'])} but its last epoch's "
                          f"is {show(history[-1].get('loss'))}; they must agree (was the record edited?)")


def check_summary(recorded: Any, computed: dict[str, Any], what: str, path: str = "summary") -> None:
    """``recorded`` must be ``computed`` (its counts exactly; means and standard deviations to
    within rounding, as another correct formula would give them)."""
    if not isinstance(recorded, dict) or set(recorded) != set(computed):
        raise RecordError(f"{what}: `{path}` must be an object of {sorted(computed)}, got {show(recorded)}; "
                          "it must be the summary its runs give")
    for key, value in computed.items():
        if isinstance(value, dict):
            check_summary(recorded[key], value, what, f"{path}.{key}")
        elif key in ("mean", "std"):
            scale = max(abs(computed["min"] or 0.0), abs(computed["max"] or 0.0))
            _same(recorded[key], value, f"{path}.{key}", what, exact=False, scale=scale)
        else:
            _same(recorded[key], value, f"{path}.{key}", what, exact=True)


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
