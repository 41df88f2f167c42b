"""A trained model on data: :func:`predict` (its outputs) and :func:`evaluate` (loss, accuracy),
in evaluation mode, a bounded number of bytes at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from purenn.errors import ArgumentError
from purenn.losses import DEFAULT_THRESHOLD, Loss, as_loss, decision_threshold
from purenn.metrics import accuracy, is_class_target
from purenn.training.checks import check_metrics, metric_value, needs_state
from purenn.tree import tree_leaves
from purenn.validation import as_samples, check, positive_int, real, to_float, to_int

# About how many bytes one forward pass of predict/evaluate may hold (its outputs and caches) when
# no batch_size is given: chunks are sized by bytes, not rows, so that a network with large
# activations (a CNN's patch matrices) does not peak far above its training steps.
PREDICT_BYTES = 32 << 20
_PILOT_ROWS = 16  # the first pass, whose arrays tell the bytes per row
_MAX_ROWS = 1024  # and never more rows per pass than this


def predict(model: Any, params: Any, x: Any, *, batch_size: int | None = None, state: Any = None) -> np.ndarray:
    """Model outputs for ``x`` in evaluation mode (no dropout; BatchNorm uses the running
    statistics in ``state``, required for a stateful model), ``batch_size`` rows at a time. By
    default (``None``) the rows per pass are chosen so that a pass holds about
    :data:`PREDICT_BYTES` (32 MiB) of outputs and caches, measured on a first pass of 16 rows,
    and at most 1024 rows (so a CNN's patch matrices do not make prediction the peak of a run's
    memory)."""
    if batch_size is not None:
        batch_size = check("batch_size", batch_size, positive_int, to_int)
    return _predict(model, params, np.asarray(x), batch_size, state, needs_state(model, state, "predict"))


def _predict(model: Any, params: Any, x: np.ndarray, batch_size: int | None, state: Any,
             with_state: bool) -> np.ndarray:
    """:func:`predict` after its checks (``with_state``: what :func:`needs_state` said)."""
    if with_state:
        def forward(xb: Any) -> Any:
            return model.forward(params, xb, state=state, training=False)
    else:
        def forward(xb: Any) -> Any:
            return model.forward(params, xb)
    if len(x) == 0:
        raise ArgumentError("predict: x has no samples")
    start, outs = 0, []
    if batch_size is None:
        pass_ = forward(x[:_PILOT_ROWS])
        start = min(_PILOT_ROWS, len(x))
        # at most _MAX_ROWS: arrays a cache hides inside other objects are not counted
        batch_size = max(1, min(_MAX_ROWS, int(PREDICT_BYTES * start // max(_nbytes(pass_), 1))))
        outs.append(pass_[0])
        del pass_
    outs += [forward(x[i : i + batch_size])[0] for i in range(start, len(x), batch_size)]
    return np.concatenate(outs)  # a new array even for one pass (an output may view x)


def _nbytes(tree: Any) -> int:
    """Bytes of the distinct arrays among the leaves of a tree of tuples, lists and dicts."""
    arrays = {id(a): a for a in tree_leaves(tree) if isinstance(a, np.ndarray)}
    return sum(a.nbytes for a in arrays.values())


def evaluate(
    model: Any,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Loss | str | None = None,
    batch_size: int | None = None,
    state: Any = None,
    threshold: float | None = None,
    metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)``: the loss only when given; the accuracy
    only for class targets (integer labels, one-hot rows or 0/1 values), with one output per
    class (the argmax) or a single output, class 1 when above ``threshold``. ``threshold``
    defaults to the loss's :func:`~purenn.losses.decision_threshold` (0 for
    ``binary_cross_entropy``, whose outputs are logits; 0.5 for other losses and without one).
    ``batch_size`` and ``state``: as for :func:`predict`; the loss is summed over chunks of
    ``batch_size`` rows (1024 by default). ``metrics``: ``{name: fn}``, each
    ``fn(y_pred, y_true) -> float`` computed once on all the outputs, under its name."""
    x, y = as_samples(x, y, "evaluate")
    metric_fns = check_metrics(metrics, "evaluate")
    loss_fn = None if loss is None else as_loss(loss)
    if batch_size is not None:
        batch_size = check("batch_size", batch_size, positive_int, to_int)
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if loss_fn is None else decision_threshold(loss_fn)
    threshold = check("threshold", threshold, real(), to_float)
    out = _predict(model, params, x, batch_size, state, needs_state(model, state, "evaluate"))
    batch_size = batch_size or 1024
    results: dict[str, float] = {}
    if loss_fn is not None:
        total = sum(
            loss_fn(out[i : i + batch_size], y[i : i + batch_size])[0] * len(out[i : i + batch_size])
            for i in range(0, len(out), batch_size)
        )
        results["loss"] = total / len(out)
    if is_class_target(y):
        results["accuracy"] = accuracy(out, y, threshold=threshold)
    for name, fn in (metric_fns or {}).items():
        results[name] = metric_value(name, fn, out, y)
    return results
