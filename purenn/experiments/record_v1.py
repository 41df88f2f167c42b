"""Experiment records of the first format (``"purenn.experiment/1"``, purenn 0.2.0 before grids):
checked in full as they were written, then read as a record of the current format
(:func:`upgrade`), so every command reads both and deals with one.

Schema of /1 (every key required; extra keys refused in ``settings``, kept elsewhere)::

    kind       "mnist" (a preset's runs, each with its own run record) or "xor"
    settings   object: the fields of the run's task without the seed (RunConfig's, XorTask's)
    seeds      list of the seeds asked for: non-negative ints, each once, at least one
    jobs       positive int, scheduler (str or null): where the runs ran
    runs       list, one per seed, in the seeds' order: seed, status ("ok" or "failed"),
               attempts (positive int), error (str for a failed run, else null), record (a
               finished MNIST run's run record: a plain file name, beside this file; else null),
               digest, test_accuracy (MNIST), loss (the last epoch's), train_seconds, history
               (epoch, loss, val_accuracy), and for "xor" solved (bool). A failed run has null
               results and an empty history.
    summary    per metric (test_accuracy, loss, train_seconds): n, mean, std, min, max over the
               finished runs; ok and failed counts. It must be the summary its runs give.
    versions   the machine that ran the experiment
"""

from __future__ import annotations

from typing import Any

from purenn.errors import RecordError
from purenn.experiments.record_schema import FUNCTIONS, TASK_SETTINGS
from purenn.experiments.summary import statistics
from purenn.io.records import (
    DIGEST, FRACTION, JSON_OBJECT, LOSS, SECONDS, STRING, VERSIONS, ListOf, Object,
    check_schema, show,
)
from purenn.validation import Rule, boolean, non_negative_int, one_of, optional, positive_int

__all__ = ["FORMAT_V1", "METRICS_V1", "check_v1", "upgrade"]

FORMAT_V1 = "purenn.experiment/1"
METRICS_V1 = ("test_accuracy", "loss", "train_seconds")

_FILE_NAME = Rule("a plain file name (no folder: run records are kept beside the experiment record)",
                  lambda v: isinstance(v, str),
                  lambda v: v not in ("", ".", "..") and len(v) <= 255 and not any(c in v for c in "/\\\0"))
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
    "kind": one_of(("mnist", "xor")), "settings": JSON_OBJECT,
    "seeds": ListOf(non_negative_int), "jobs": positive_int,
    "scheduler": optional(STRING),
    "runs": ListOf(_ENTRY), "summary": JSON_OBJECT,
    "versions": VERSIONS,
}, required=("format", "kind", "settings", "seeds", "jobs", "scheduler", "runs", "summary", "versions"))


def summarize_v1(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` of /1 ``runs`` entries."""
    ok = [r for r in runs if r["status"] == "ok"]
    summary: dict[str, Any] = {m: statistics([r[m] for r in ok]) for m in METRICS_V1}
    summary.update(ok=len(ok), failed=len(runs) - len(ok))
    return summary


def check_v1(record: dict[str, Any], what: str, check_summary: Any) -> None:
    """:class:`~purenn.errors.RecordError` unless ``record`` (format /1) follows its schema, as
    purenn 0.2.0 checked it: one run per seed, each run's fields those of its status and kind, the
    summary the one its runs give (``check_summary(recorded, computed, what)``)."""
    check_schema(record, _SCHEMA, what)
    check_schema(record["settings"], TASK_SETTINGS[record["kind"]], what, "settings")
    seeds, runs = record["seeds"], record["runs"]
    if [r["seed"] for r in runs] != seeds or len(set(seeds)) != len(seeds):
        raise RecordError(f"{what}: `runs` must hold one run per seed of `seeds`, each once, in their "
                          f"order: seeds {show(seeds)}, runs of seeds {show([r['seed'] for r in runs])}")
    for i, run in enumerate(runs):
        _check_entry(record["kind"], run, f"runs[{i}]", what)
    check_summary(record["summary"], summarize_v1(runs), what)


def _check_entry(kind: str, run: dict[str, Any], path: str, what: str) -> None:
    finished = run["status"] == "ok"
    has = {"error": not finished, "digest": finished, "loss": finished, "train_seconds": finished,
           "test_accuracy": finished and kind == "mnist", "record": finished and kind == "mnist",
           "solved": finished and kind == "xor"}
    for key, needed in has.items():
        if (run.get(key) is not None) != needed:
            should = "must have a value" if needed else "must be null"
            raise RecordError(f"{what}: `{path}.{key}` {should} for a {'finished' if finished else 'failed'} "
                              f"{kind} run, got {show(run.get(key))}")
    if not finished and run["history"]:
        raise RecordError(f"{what}: `{path}.history` must be empty for a failed run")
    for i, point in enumerate(run["history"]):
        if point["epoch"] != i + 1:
            raise RecordError(f"{what}: `{path}.history[{i}].epoch` must be {i + 1}, got {show(point['epoch'])}")
    if run["history"] and run["loss"] != run["history"][-1]["loss"]:
        raise RecordError(f"{what}: `{path}.loss` is {show(run['loss'])} but its last epoch's is "
                          f"{show(run['history'][-1]['loss'])}; they must agree (was the record edited?)")


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A /1 record (checked) as the current format has it: one group (no grid), each run's
    metrics gathered under ``metrics``, no provenance (it was not recorded then). The caller
    fills in the groups' summaries."""
    kind = record["kind"]
    metrics = {"mnist": METRICS_V1, "xor": ("solved", "loss", "train_seconds")}[kind]
    runs = []
    for run in record["runs"]:
        ok = run["status"] == "ok"
        runs.append({
            "group": 0, "seed": run["seed"], "status": run["status"], "attempts": run["attempts"],
            "error": run["error"], "record": run["record"], "digest": run["digest"],
            "metrics": {m: run[m] for m in metrics} if ok else {},
            "seconds": run["train_seconds"], "history": [dict(h) for h in run["history"]],
            "provenance": None,
        })
    return {"format": "", "kind": kind, "function": FUNCTIONS[kind], "settings": dict(record["settings"]),
            "grid": {}, "seeds": list(record["seeds"]), "groups": [{"settings": {}, "summary": {}}],
            "jobs": record["jobs"], "scheduler": record["scheduler"], "executor": None, "runs": runs,
            "summary": {}, "versions": record["versions"], "upgraded_from": FORMAT_V1}
