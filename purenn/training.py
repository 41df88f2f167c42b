"""Training built from the pure pieces: ``fit``, ``predict`` and ``evaluate``.

``fit`` is a loop over epochs and minibatches of: forward, loss, backward, update. Nothing in it
prints; progress goes to the optional callbacks. With ``batch_size=1, shuffle=False`` it is exactly
the tutorial's per-sample SGD. The same ``seed`` gives bit-identical params and history.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import attrs
import numpy as np

from purenn.losses import mse
from purenn.metrics import accuracy
from purenn.optim.base import learning_rate, sgd_step


@attrs.frozen
class EpochLog:
    """What ``fit`` reports after each epoch (``val_*`` are None without a validation set)."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@attrs.frozen
class History:
    """Per-epoch records of one ``fit`` run; ``loss`` is each epoch's mean training loss."""

    epochs: tuple[EpochLog, ...] = ()

    @property
    def loss(self) -> list[float]:
        return [e.loss for e in self.epochs]

    @property
    def val_loss(self) -> list[float | None]:
        return [e.val_loss for e in self.epochs]

    @property
    def val_accuracy(self) -> list[float | None]:
        return [e.val_accuracy for e in self.epochs]


def _check_data(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, y = np.asarray(x), np.asarray(y)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{what}: inputs and targets must be rectangular arrays ({e})") from None
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{what}: inputs and targets need one row per sample; got {len(x) if x.ndim else 'a scalar'} "
            f"inputs and {len(y) if y.ndim else 'a scalar'} targets"
        )
    return x, y


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def fit(
    model: Any,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Callable[[Any, Any], tuple[float, np.ndarray]] = mse,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float | None = None,
    optimizer: Any = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = 0,
    validation: tuple[Any, Any] | None = None,
    callback: Callable[[EpochLog], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Any, History]:
    """Train ``model`` from ``params``; return the new params and the :class:`History`.

    Give either ``lr`` (plain SGD via :func:`sgd_step`) or ``optimizer`` (any record with pure
    ``init(params)``/``update(params, grads, state)``). ``seed`` drives the shuffling and, for
    stochastic layers such as dropout, their random masks: the same int gives the same run;
    ``None`` draws fresh entropy (not reproducible); a Generator is advanced by the run.
    ``validation=(x_val, y_val)`` adds the validation loss and accuracy to each epoch's log.
    ``callback(EpochLog)`` runs after every epoch, ``on_batch(batches_done, batches_per_epoch)``
    after every step.
    """
    x, y = _check_data(x, y, "fit")
    if len(x) == 0:
        raise ValueError("fit: the training set is empty")
    if (lr is None) == (optimizer is None):
        raise ValueError("fit needs exactly one of `lr` (e.g. lr=0.1) or `optimizer` (e.g. Adam(1e-3))")
    if lr is not None:
        lr = learning_rate(lr)
    elif not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(
            "`optimizer` must have init(params) and update(params, grads, state), "
            f"e.g. purenn.Adam(1e-3); got {optimizer!r}"
        )
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)):
        raise TypeError(f"`seed` must be an int, a numpy Generator or None, got {seed!r}")
    epochs = int(epochs) if epochs == 0 else _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if validation is not None:
        validation = _check_data(*validation, "fit validation")

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shuffle_rng, layer_rng = rng.spawn(2)
    stochastic = getattr(model, "stochastic", False)
    # grads without the input's gradient when the model offers it (Sequential, Dense)
    param_grads = getattr(model, "param_grads", None) or (lambda p, c, d: model.backward(p, c, d)[1])
    state = optimizer.init(params) if optimizer is not None else None
    n = len(x)
    n_batches = math.ceil(n / batch_size)
    logs: list[EpochLog] = []

    for epoch in range(1, epochs + 1):
        # shuffled batches are gathered one at a time: no second copy of the whole data set
        order = shuffle_rng.permutation(n) if shuffle else None
        total = 0.0
        for b, start in enumerate(range(0, n, batch_size)):
            if order is None:
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            else:
                rows = order[start : start + batch_size]
                xb, yb = x[rows], y[rows]
            if stochastic:
                out, cache = model.forward(params, xb, rng=layer_rng)
            else:
                out, cache = model.forward(params, xb)
            value, dy = loss(out, yb)
            grads = param_grads(params, cache, dy)
            if state is None:
                params = sgd_step(params, grads, lr)
            else:
                params, state = optimizer.update(params, grads, state)
            total += value * xb.shape[0]
            if on_batch is not None:
                on_batch(b + 1, n_batches)
        log = EpochLog(epoch=epoch, epochs=epochs, loss=total / n)
        if validation is not None:
            metrics = evaluate(model, params, *validation, loss=loss)
            log = attrs.evolve(log, val_loss=metrics["loss"], val_accuracy=metrics.get("accuracy"))
        logs.append(log)
        if callback is not None:
            callback(log)
    return params, History(tuple(logs))


def predict(model: Any, params: Any, x: Any, *, batch_size: int = 1024) -> np.ndarray:
    """Model outputs for ``x`` in evaluation mode (no dropout), computed ``batch_size`` rows at a time."""
    x = np.asarray(x)
    batch_size = _positive_int(batch_size, "batch_size")
    outs = [model.forward(params, x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)]
    if not outs:
        raise ValueError("predict: x has no samples")
    return np.concatenate(outs)


def evaluate(
    model: Any,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Callable[[Any, Any], tuple[float, np.ndarray]] | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)``: the loss only when given; the accuracy
    only for class targets (integer labels, one-hot rows or 0/1 values), with one output per
    class or a single output thresholded at 0.5."""
    x, y = _check_data(x, y, "evaluate")
    out = predict(model, params, x, batch_size=batch_size)
    metrics: dict[str, float] = {}
    if loss is not None:
        total = sum(
            loss(out[i : i + batch_size], y[i : i + batch_size])[0] * len(out[i : i + batch_size])
            for i in range(0, len(out), batch_size)
        )
        metrics["loss"] = total / len(out)
    if y.dtype.kind in "iub" or np.all((y == 0) | (y == 1)):  # class labels, one-hot or 0/1 rows
        metrics["accuracy"] = accuracy(out, y)
    return metrics
