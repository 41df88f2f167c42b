"""One run of an experiment, in whichever process runs it (see :mod:`purenn.experiments.study`):
the :class:`Call` to make, and :func:`call_run`, which makes it and checks what the run function
returns, as plain data for the record."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError
from purenn.experiments.context import RunContext, running
from purenn.experiments.record_schema import MAX_EPOCHS, MAX_METRICS, MAX_NAME_LENGTH
from purenn.io.provenance import file_digests, reading, samples
from purenn.io.records import DIGEST
from purenn.training import History

__all__ = ["RESERVED", "Call", "call_run", "result_data"]

#: The keys of a run function's result that are not metrics.
RESERVED = ("history", "digest", "samples", "run_record")


@attrs.frozen
class Call:
    """One run to make: ``fn(seed, **settings)`` as run ``(group, seed)``, with its checkpoint
    folder (or None) and the session's ``options`` (see :class:`~.context.RunContext`)."""

    fn: Callable[..., Any]
    group: int
    seed: int
    settings: dict[str, Any]
    checkpoint_dir: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


def call_run(call: Call, report: Callable[..., None]) -> dict[str, Any]:
    """Make the run (a runner task: see :mod:`purenn.experiments.runner`): its result as plain
    data, ``{"metrics", "history", "digest", "samples", "data_files", "run_record"}``; an
    :class:`~purenn.errors.ArgumentError` when the function's result is not one a run gives."""
    context = RunContext(call.group, call.seed, call.settings, call.checkpoint_dir, call.options, report)
    with running(context), reading() as files:
        value = call.fn(call.seed, **call.settings)
    return result_data(value, files)


def result_data(value: Any, files: Iterable[str] = ()) -> dict[str, Any]:
    """A run function's result checked and made plain data (see the module's docstring), with
    the SHA-256 of the data ``files`` it read."""
    if not isinstance(value, Mapping):
        raise ArgumentError(f"a run function must return a mapping of metric name -> number (and "
                            f"optionally {', '.join(RESERVED[:3])}), got {type(value).__name__}")
    metrics = {k: _metric(k, v) for k, v in value.items() if k not in RESERVED}
    if len(metrics) > MAX_METRICS:
        raise ArgumentError(f"a run may report at most {MAX_METRICS} metrics, got {len(metrics)}")
    digest = value.get("digest")
    if digest is not None and not (DIGEST.kind(digest) and DIGEST.test(digest)):
        raise ArgumentError(f"`digest` must be {DIGEST.what}, got {digest!r:.80}")
    indices = value.get("samples") or {}
    if not isinstance(indices, Mapping):
        raise ArgumentError(f"`samples` must map a split name to its sample indices, got {type(indices).__name__}")
    return {"metrics": metrics, "history": _history(value.get("history")), "digest": digest,
            "samples": samples(**{str(k): v for k, v in indices.items()}),
            "data_files": file_digests(sorted(files)), "run_record": value.get("run_record")}


def _metric(name: Any, value: Any) -> float | bool:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise ArgumentError(f"a metric's name must be a string of 1 to {MAX_NAME_LENGTH} characters, got {name!r:.80}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ArgumentError(f"metric `{name}` must be a finite number or a bool, got {value!r:.80}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _history(history: Any) -> list[dict[str, Any]]:
    """A History, or a list of per-epoch mappings, as the record's list of epochs."""
    if history is None:
        return []
    if isinstance(history, History):
        history = [{k: v for k, v in attrs.asdict(e).items() if k != "epochs"} for e in history.epochs]
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise ArgumentError(f"`history` must be a purenn History or a list of per-epoch mappings, "
                            f"got {type(history).__name__}")
    if len(history) > MAX_EPOCHS:
        raise ArgumentError(f"`history` holds {len(history)} epochs, more than the {MAX_EPOCHS} a record keeps")
    out = []
    for i, point in enumerate(history):
        if not isinstance(point, Mapping) or point.get("epoch", i + 1) != i + 1:
            raise ArgumentError(f"`history[{i}]` must be a mapping of numbers for epoch {i + 1}, got {point!r:.80}")
        out.append({"epoch": i + 1, **{k: _point(i, k, v) for k, v in point.items() if k != "epoch"}})
    return out


def _point(i: int, key: Any, value: Any) -> Any:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME_LENGTH:
        raise ArgumentError(f"`history[{i}]`: a name must be a string of 1 to {MAX_NAME_LENGTH} "
                            f"characters, got {key!r:.80}")
    if value is None or (key == "digest" and DIGEST.kind(value) and DIGEST.test(value)):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, str):
        return bool(value) if isinstance(value, bool) else float(value)
    raise ArgumentError(f"`history[{i}].{key}` must be a number, a bool or None, got {value!r:.80}")
