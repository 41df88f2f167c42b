"""Statistics over an experiment's runs: a metric's n, mean, standard deviation, min and max
(:func:`statistics`), and per-epoch means of their histories (:func:`per_epoch`)."""

from __future__ import annotations

import statistics as stats
from collections.abc import Sequence
from typing import Any

__all__ = ["per_epoch", "statistics"]


def statistics(given: Sequence[float | bool | None]) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (sample standard deviation, dividing by n - 1; 0 for one
    value), ``min``, ``max`` over the values that are not None (None for no values; a bool counts
    as 0 or 1, so the mean of ``solved`` is the fraction solved). Computed exactly and rounded
    once (the standard library's ``statistics``), so no finite input overflows on the way."""
    values = [float(v) for v in given if v is not None]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    std = stats.stdev(values) if n > 1 else 0.0
    return {"n": n, "mean": stats.mean(values), "std": std, "min": min(values), "max": max(values)}


def per_epoch(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[list[int], list[float], list[float]]:
    """``(epochs, means, stds)`` of ``key`` over runs' histories, epoch by epoch, as far as every
    run goes and has the value (:func:`statistics` of each epoch's values)."""
    length = min((len(h) for h in histories), default=0)
    epochs, means, stds = [], [], []
    for i in range(length):
        values = [h[i].get(key) for h in histories]
        if any(v is None or isinstance(v, str) for v in values):
            continue
        summary = statistics(values)
        epochs.append(histories[0][i]["epoch"])
        means.append(summary["mean"])
        stds.append(summary["std"])
    return epochs, means, stds
