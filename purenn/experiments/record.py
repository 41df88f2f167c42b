"""The experiment record: one JSON file listing the runs of an experiment, their results and a
summary over seeds. Written atomically; read back with its shape checked.

Schema (``format`` ``"purenn.experiment/1"``)::

    kind       "mnist" (a preset's runs, each with its own run record) or "xor"
    settings   object: what every run shares (for "mnist": RunConfig's fields without the seed)
    seeds      list of the seeds asked for
    jobs       int, scheduler (str or null): where the runs ran
    runs       list, one per seed, in the seeds' order:
               seed, status ("ok" or "failed"), attempts (starts; more than 1: its worker died and
               it ran again), error (str or null), record (the run record's path, relative to this
               file, or null), digest, test_accuracy, loss (the last epoch's training loss),
               train_seconds, history (per epoch: epoch, loss, val_accuracy), and for "xor": solved
    summary    per metric (test_accuracy, loss, train_seconds): n, mean, std (sample standard
               deviation), min, max over the runs that finished; ok and failed counts
    versions   the machine that ran the experiment (purenn.io.records.environment())
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

from purenn.errors import ArgumentError, RecordError
from purenn.io.atomic import atomic_write_text, read_regular_file
from purenn.io.records import environment

__all__ = ["EXPERIMENT_FORMAT", "statistics", "per_epoch", "make_experiment", "write_experiment",
           "read_experiment", "is_experiment", "METRICS"]

EXPERIMENT_FORMAT = "purenn.experiment/1"
METRICS = ("test_accuracy", "loss", "train_seconds")


def statistics(given: Sequence[float | None]) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (sample standard deviation; 0 for one value), ``min``, ``max``
    over the values that are not None (None for no values)."""
    values = [float(v) for v in given if v is not None]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std, "min": min(values), "max": max(values)}


def per_epoch(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list[int], list[float], list[float]]:
    """``(epochs, means, stds)`` of ``key`` over runs' histories, epoch by epoch, as far as every
    run goes and has the value (:func:`statistics` of each epoch's values)."""
    length = min((len(h) for h in histories), default=0)
    epochs, means, stds = [], [], []
    for i in range(length):
        values = [h[i].get(key) for h in histories]
        if any(v is None for v in values):
            continue
        stats = statistics(values)
        epochs.append(histories[0][i].get("epoch", i + 1))
        means.append(stats["mean"])
        stds.append(stats["std"])
    return epochs, means, stds


def make_experiment(*, kind: str, settings: dict[str, Any], seeds: Sequence[int],
                    runs: Sequence[dict[str, Any]], jobs: int, scheduler: str | None) -> dict[str, Any]:
    """An experiment record (see the module's docstring) with its summary computed."""
    ok = [r for r in runs if r["status"] == "ok"]
    summary: dict[str, Any] = {m: statistics([r.get(m) for r in ok]) for m in METRICS}
    summary.update(ok=len(ok), failed=len(runs) - len(ok))
    record = {"format": EXPERIMENT_FORMAT, "kind": kind, "settings": settings, "seeds": list(seeds),
              "jobs": jobs, "scheduler": scheduler, "runs": list(runs), "summary": summary,
              "versions": environment()}
    check_experiment(record)
    return record


def run_entry(seed: int, outcome: Any, record_path: str | None = None) -> dict[str, Any]:
    """The ``runs`` entry of one seed from its runner outcome (an MNIST run record or an XOR
    result as ``outcome.value``)."""
    entry: dict[str, Any] = {"seed": seed, "status": outcome.status, "attempts": outcome.attempts,
                             "error": outcome.error, "record": record_path, "digest": None,
                             "test_accuracy": None, "loss": None, "train_seconds": None,
                             "history": []}
    value = outcome.value
    if outcome.status != "ok" or not isinstance(value, dict):
        return entry
    history = value.get("history", [])
    entry.update(
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


def is_experiment(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == EXPERIMENT_FORMAT


def check_experiment(record: Any, what: str = "experiment record") -> None:
    """:class:`~purenn.errors.RecordError` unless ``record`` has the schema's shape."""
    if not is_experiment(record):
        raise RecordError(f"{what} is not a purenn experiment record (format {EXPERIMENT_FORMAT!r})")
    for key, kind in (("kind", str), ("settings", dict), ("seeds", list), ("runs", list),
                      ("summary", dict)):
        if not isinstance(record.get(key), kind):
            raise RecordError(f"{what}: `{key}` must be a {kind.__name__}, got {record.get(key)!r:.60}")
    for i, run in enumerate(record["runs"]):
        if not isinstance(run, dict):
            raise RecordError(f"{what}: `runs[{i}]` must be an object")
        seed, status = run.get("seed"), run.get("status")
        if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
            raise RecordError(f"{what}: `runs[{i}].seed` must be a non-negative int, got {seed!r:.40}")
        if status not in ("ok", "failed"):
            raise RecordError(f"{what}: `runs[{i}].status` must be 'ok' or 'failed', got {status!r:.40}")
        if not isinstance(run.get("history", []), list):
            raise RecordError(f"{what}: `runs[{i}].history` must be a list")
        path = run.get("record")
        if path is not None and not isinstance(path, str):
            raise RecordError(f"{what}: `runs[{i}].record` must be a path or null")


def write_experiment(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write ``record`` as JSON (sorted keys, indent 2), atomically."""
    check_experiment(record, f"experiment record for {os.fspath(path)!r}")
    atomic_write_text(path, json.dumps(record, sort_keys=True, indent=2) + "\n")


def read_experiment(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an experiment record; :class:`~purenn.errors.RecordError` otherwise."""
    where = os.fspath(path)
    try:
        record = json.loads(read_regular_file(where).decode("utf-8"))
    except FileNotFoundError:
        raise RecordError(f"experiment record not found: {where!r}") from None
    except ArgumentError as e:  # a directory, a FIFO, a device: never read
        raise RecordError(f"experiment record {e.message}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise RecordError(f"cannot read experiment record {where!r}: {e}") from None
    check_experiment(record, f"experiment record {where!r}")
    return record
