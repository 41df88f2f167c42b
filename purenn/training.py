"""Training built from the pure pieces: ``fit``, ``predict`` and ``evaluate``.

``fit`` is a loop over epochs and minibatches of: forward, loss, backward, update. Nothing in it
prints; progress goes to the optional callbacks. With ``batch_size=1, shuffle=False`` it is exactly
the tutorial's per-sample SGD. The same ``seed`` gives bit-identical params and history.

Models with state (``BatchNorm``'s running statistics; ``model.stateful``) take it explicitly:
``fit(..., state=model.init_state())`` trains in training mode and returns
``(params, state, history)``; ``predict`` and ``evaluate`` take ``state=`` and run in evaluation
mode, as ``fit``'s validation pass does. Forgetting the state is an error, never a silent
evaluation-mode run.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, DivergenceError
from purenn.losses import Loss, as_loss, mse
from purenn.metrics import accuracy, is_class_target
from purenn.optim.base import LEARNING_RATE, as_optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import Schedule
from purenn.tree import tree_leaves
from purenn.validation import as_samples, check, non_negative_int, positive_int, to_float, to_int


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


def fit(
    model: Any,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Loss | str = mse,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float | Schedule | None = None,
    optimizer: Any = None,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = 0,
    validation: tuple[Any, Any] | None = None,
    callback: Callable[[EpochLog], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    stop_on_divergence: bool = True,
    state: Any = None,
) -> Any:
    """Train ``model`` from ``params``; return the new params and the :class:`History`.

    Each step: forward a minibatch, take the loss and its gradient, backward to the parameter
    gradients, update. Give either ``lr`` (plain gradient descent: ``SGD(lr)``) or ``optimizer``
    (``Adam(1e-3)``, any :mod:`purenn.optim` optimizer or transformation, or a record with pure
    ``init(params)``/``update(params, grads, state)``). ``seed`` drives the shuffling and, for
    stochastic layers such as dropout, their random masks: the same int gives the same run;
    ``None`` draws fresh entropy (not reproducible); a Generator is advanced by the run.
    ``validation=(x_val, y_val)`` adds the validation loss and accuracy to each epoch's log.
    ``callback(EpochLog)`` runs after every epoch, ``on_batch(batches_done, batches_per_epoch)``
    after every step. ``loss`` is a loss function or the name of a built-in one (``"mse"``).

    A non-finite loss (or, at the end of an epoch, non-finite params) stops training with a
    :class:`~purenn.errors.DivergenceError` saying at which epoch and step, and the last finite
    loss; ``stop_on_divergence=False`` trains on regardless.

    ``state``: the model's state (``model.init_state()``, or a trained one), required for a model
    with stateful layers such as ``BatchNorm``. Given, ``fit`` returns ``(params, state, history)``
    (the state after training); without it, ``(params, history)``.
    """
    x, y, loss_fn, optimizer, epochs, batch_size, rng, validation = _fit_arguments(
        x, y, loss, lr, optimizer, epochs, batch_size, seed, validation, callback, on_batch)
    with_state = _needs_state(model, state, "fit")
    shuffle_rng, layer_rng = rng.spawn(2)
    forward, param_grads = _training_forward(model, layer_rng), _param_grads(model)
    opt_state = optimizer.init(params)
    n_batches, last_loss = math.ceil(len(x) / batch_size), None
    logs: list[EpochLog] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked
        for epoch in range(1, epochs + 1):
            total = 0.0
            for b, (xb, yb) in enumerate(_minibatches(x, y, batch_size, shuffle_rng if shuffle else None)):
                if with_state:
                    out, cache, state = forward(params, xb, state=state, training=True)
                else:
                    out, cache = forward(params, xb)
                value, dy = loss_fn(out, yb)
                if not math.isfinite(value) and stop_on_divergence:
                    raise _diverged(epoch, b + 1, n_batches, value, last_loss)
                params, opt_state = optimizer.update(params, param_grads(params, cache, dy), opt_state)
                total, last_loss = total + value * xb.shape[0], value
                if on_batch is not None:
                    on_batch(b + 1, n_batches)
            if stop_on_divergence and not _all_finite(params):
                raise _diverged(epoch, n_batches, n_batches, math.nan, last_loss,
                                what="the parameters became non-finite in the epoch's last step")
            if stop_on_divergence and with_state and not _all_finite(state):
                raise _diverged(epoch, n_batches, n_batches, math.nan, last_loss,
                                what="the layers' state (running statistics) became non-finite")
            log = EpochLog(epoch=epoch, epochs=epochs, loss=total / len(x))
            if validation is not None:
                metrics = evaluate(model, params, *validation, loss=loss_fn,
                                   state=state if with_state else None)
                log = attrs.evolve(log, val_loss=metrics["loss"], val_accuracy=metrics.get("accuracy"))
            logs.append(log)
            if callback is not None:
                callback(log)
    if state is not None:  # a stateless model's state ({} entries) passes through
        return params, state, History(tuple(logs))
    return params, History(tuple(logs))


def _needs_state(model: Any, state: Any, who: str) -> bool:
    """Whether to run ``model`` with ``state``: a stateful model must be given one."""
    if getattr(model, "stateful", False) and state is None:
        raise ArgumentError(
            f"{who}: the model has layers with state (such as BatchNorm's running statistics); "
            f"pass state=model.init_state() (or the state a previous fit returned)"
            + ("; fit then returns (params, state, history)" if who == "fit" else "")
        )
    return state is not None and getattr(model, "stateful", False)


def _all_finite(params: Any) -> bool:
    return all(np.isfinite(a).all() for a in tree_leaves(params))


def _diverged(epoch: int, step: int, steps: int, value: float, last: float | None,
              what: str = "") -> DivergenceError:
    """The error for a run that diverged at ``step`` (of ``steps``) of ``epoch``."""
    what = what or f"the loss became {value}"
    before = "" if last is None else f" (the step before, it was {last:.6g})"
    return DivergenceError(
        f"training diverged at epoch {epoch}, step {step} of {steps}: {what}{before}",
        hint="try a smaller learning rate (lr), or pass stop_on_divergence=False to train on",
        epoch=epoch, step=step, steps_per_epoch=steps, loss=value, last_finite_loss=last,
    )


def _fit_arguments(x: Any, y: Any, loss: Any, lr: Any, optimizer: Any, epochs: Any,
                   batch_size: Any, seed: Any, validation: Any, callback: Any = None,
                   on_batch: Any = None) -> tuple[Any, ...]:
    """``fit``'s arguments checked and in canonical form, or an error naming the bad one."""
    x, y = as_samples(x, y, "fit")
    loss = as_loss(loss)
    if len(x) == 0:
        raise ArgumentError("fit: the training set is empty")
    if (lr is None) == (optimizer is None):
        raise ArgumentError("fit needs exactly one of `lr` (e.g. lr=0.1) or `optimizer` (e.g. Adam(1e-3))")
    optimizer = SGD(check("lr", lr, LEARNING_RATE, to_float)) if lr is not None else as_optimizer(optimizer)
    epochs = check("epochs", epochs, non_negative_int, to_int)
    batch_size = check("batch_size", batch_size, positive_int, to_int)
    if not (seed is None or isinstance(seed, np.random.Generator)):
        seed = check("seed", seed, _SEED, to_int)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise ArgumentTypeError(
                f"`validation` must be a pair (x_val, y_val), got {type(validation).__name__}")
        validation = as_samples(validation[0], validation[1], "fit validation")
    for name, fn in (("callback", callback), ("on_batch", on_batch)):
        if fn is not None and not callable(fn):
            raise ArgumentTypeError(f"`{name}` must be a function or None, got {fn!r:.80}")
    return x, y, loss, optimizer, epochs, batch_size, rng, validation


_SEED = attrs.evolve(non_negative_int, what="an int >= 0, a numpy Generator or None")


def _minibatches(x: np.ndarray, y: np.ndarray, batch_size: int,
                 shuffle_rng: np.random.Generator | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch's minibatches, in order or in a fresh permutation drawn from ``shuffle_rng``.
    Shuffled batches are gathered one at a time: no second copy of the whole data set."""
    n = len(x)
    if shuffle_rng is None:
        for start in range(0, n, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    order = shuffle_rng.permutation(n)
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        yield x[rows], y[rows]


def _training_forward(model: Any, rng: np.random.Generator) -> Callable[..., Any]:
    """``model.forward`` in training mode: stochastic layers draw from ``rng``."""
    if getattr(model, "stochastic", False):
        return lambda params, xb, **mode: model.forward(params, xb, rng=rng, **mode)
    return model.forward


def _param_grads(model: Any) -> Callable[[Any, Any, Any], Any]:
    """Grads without the input's gradient when the model offers it (Sequential, Dense)."""
    return getattr(model, "param_grads", None) or (lambda p, c, d: model.backward(p, c, d)[1])


def predict(model: Any, params: Any, x: Any, *, batch_size: int = 1024, state: Any = None) -> np.ndarray:
    """Model outputs for ``x`` in evaluation mode (no dropout; BatchNorm uses the running
    statistics in ``state``, required for a stateful model), ``batch_size`` rows at a time."""
    x = np.asarray(x)
    batch_size = check("batch_size", batch_size, positive_int, to_int)
    if _needs_state(model, state, "predict"):
        def forward(xb: Any) -> Any:
            return model.forward(params, xb, state=state, training=False)[0]
    else:
        def forward(xb: Any) -> Any:
            return model.forward(params, xb)[0]
    outs = [forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    if not outs:
        raise ArgumentError("predict: x has no samples")
    return np.concatenate(outs)


def evaluate(
    model: Any,
    params: Any,
    x: Any,
    y: Any,
    *,
    loss: Loss | str | None = None,
    batch_size: int = 1024,
    state: Any = None,
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)``: the loss only when given; the accuracy
    only for class targets (integer labels, one-hot rows or 0/1 values), with one output per
    class or a single output thresholded at 0.5. ``state``: as for :func:`predict`."""
    x, y = as_samples(x, y, "evaluate")
    loss_fn = None if loss is None else as_loss(loss)
    out = predict(model, params, x, batch_size=batch_size, state=state)
    metrics: dict[str, float] = {}
    if loss_fn is not None:
        total = sum(
            loss_fn(out[i : i + batch_size], y[i : i + batch_size])[0] * len(out[i : i + batch_size])
            for i in range(0, len(out), batch_size)
        )
        metrics["loss"] = total / len(out)
    if is_class_target(y):
        metrics["accuracy"] = accuracy(out, y)
    return metrics
