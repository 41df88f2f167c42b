"""The training loop: :func:`fit`.

``fit`` checks its arguments (:func:`purenn.training.checks.plan_run`), then runs epochs of
steps, calling back, saving and stopping between them; :class:`purenn.training.run.Run` keeps the
run's variables and does each step and each epoch's close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from purenn.losses import Loss, mse
from purenn.monitors import EarlyStopping, ReduceLROnPlateau
from purenn.optim.averaging import Average
from purenn.optim.schedules import Schedule
from purenn.training.checks import Plan, plan_run
from purenn.training.history import EpochLog
from purenn.training.run import Run
from purenn.training_state import TrainingState


def fit(
    model: Any, params: Any, x: Any, y: Any, *,
    loss: Loss | str = mse, epochs: int = 1, batch_size: int = 32,
    lr: float | Schedule | None = None, optimizer: Any = None,
    shuffle: bool = True, seed: int | np.random.Generator | None = 0,
    validation: tuple[Any, Any] | None = None,
    callback: Callable[[EpochLog], None] | None = None, on_batch: Callable[[int, int], None] | None = None,
    stop_on_divergence: bool = True, state: Any = None,
    early_stopping: EarlyStopping | None = None, plateau: ReduceLROnPlateau | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None, checkpoint_every: int | None = None,
    stop: Callable[[], bool] | None = None, resume: TrainingState | None = None,
    digest: Callable[[Any, Any], str] | None = None,
    sample_weight: Any = None, class_weight: Any = None,
    metrics: dict[str, Callable[[Any, Any], float]] | None = None, average: Average | None = None,
) -> Any:
    """Train ``model`` from ``params``; return the new params and the :class:`History`.

    Each step: forward a minibatch, take the loss and its gradient, backward to the parameter
    gradients, update. Give either ``lr`` (plain gradient descent: ``SGD(lr)``) or ``optimizer``
    (``Adam(1e-3)``, any :mod:`purenn.optim` optimizer or transformation, or a record with pure
    ``init(params)``/``update(grads, state, params)``, called by keyword). ``seed`` drives the
    shuffling and, for stochastic layers such as dropout, their random masks: the same int gives
    the same run; ``None`` draws fresh entropy (not reproducible); a Generator is advanced by the
    run. ``validation=(x_val, y_val)`` adds the validation loss and accuracy to each epoch's log
    (in evaluation mode, as :func:`evaluate` with ``loss``; a single output's class is decided at
    the loss's :func:`~purenn.losses.decision_threshold`: 0 for ``binary_cross_entropy``'s
    logits, 0.5 otherwise). ``callback(EpochLog)`` runs after every epoch,
    ``on_batch(batches_done, batches_per_epoch)`` after every step. ``loss`` is a loss function
    or the name of a built-in one (``"mse"``).

    Non-finite values (NaN, infinity) in ``x``, ``y`` or the validation set are refused before
    training with an :class:`~purenn.errors.ArgumentError` naming the array, how many there are
    and where the first is. A non-finite loss (or, at the end of an epoch, non-finite params)
    stops training with a :class:`~purenn.errors.DivergenceError` saying at which epoch and step,
    and the last finite loss. ``stop_on_divergence=False`` skips both checks and trains on
    regardless.

    ``state``: the model's state (``model.init_state()``, or a trained one), required for a model
    with stateful layers such as ``BatchNorm``. Given, ``fit`` returns ``(params, state, history)``
    (the state after training); without it, ``(params, history)``.

    ``early_stopping`` (:class:`~purenn.monitors.EarlyStopping`): stop when a metric has not
    improved for ``patience`` epochs and return the best epoch's params (and state); the history
    says so. ``plateau`` (:class:`~purenn.monitors.ReduceLROnPlateau`): multiply the learning rate
    by its factor when the metric stalls (the optimizer must accept ``lr_scale``, as purenn's do).

    Stopping and continuing: ``checkpoint(TrainingState)`` is called after every epoch (after its
    validation and ``callback``) and, with ``checkpoint_every=N``, every N steps within epochs.
    ``stop()`` is asked after every step: when it returns True, ``fit`` hands the state to
    ``checkpoint`` and raises :class:`~purenn.errors.TrainingInterrupted` carrying it.
    ``resume=TrainingState`` continues such a run (``params`` and ``state`` come from it: pass
    None) and gives exactly the result of the run never interrupted; the model, data and settings
    must be the run's (a difference is an error naming it). ``digest(params, state)`` fills each
    epoch's ``EpochLog.digest`` (e.g. ``lambda p, s: purenn.params_digest(p, state=s)``).

    **Seeing training.** Each epoch's log has the training ``accuracy`` for class targets (the
    share of the epoch's rows whose training-mode output, before the step's update, gave the right
    class; counted from the outputs the steps compute anyway). ``metrics={"name": fn}`` adds
    ``fn(y_pred, y_true) -> float`` per step, averaged over the epoch's rows (exact for a mean
    over samples; an approximation for others, such as F1), and ``val_name`` on the validation
    set (on all its outputs at once), in ``EpochLog.metrics``. ``callback`` may be an object with,
    besides ``callback(log)``, an ``on_step(StepLog)`` method (called after every step) and a
    ``close()`` method (called once when ``fit`` ends, normally or not): ``callback=ProgressBar()``
    shows a progress bar (:class:`purenn.progress.ProgressBar`); nothing is printed otherwise.

    **Weights.** ``sample_weight``: one weight >= 0 per row of ``x``, shuffled with it; the loss
    is the weighted mean (a row of weight 2 counts twice). ``class_weight``: one weight per
    class (a list, an array, or a dict ``{class: weight}`` whose missing classes weigh 1), given
    to a loss that takes it (``softmax_cross_entropy``: PyTorch's ``weight=``), else turned into
    sample weights (Keras's way; :mod:`purenn.training.weights`). The epoch's loss is then the
    weighted mean; validation is not weighted. A loss that takes no weights is refused.

    **Weight averaging.** ``average=EMA(decay)`` (:mod:`purenn.optim.averaging`) keeps a moving
    average of the params, updated after every update (with gradient accumulation, ``MultiSteps``,
    only after the steps that update); ``History.averaged`` holds the averaged params. Validation
    (and so early stopping and plateaus watching a ``val_`` metric) uses the averaged params, as
    Keras's EMA swaps them in for evaluation; the training loss and accuracy are the raw params'.
    Layer state (BatchNorm's statistics) is not averaged: use the run's. The average is part of
    the training state, resumes bit for bit, and ``digest`` fills ``EpochLog.average_digest``.

    The optimizer's masks given as functions (``AdamW(mask=decay_mask)``) are resolved for the
    params before ``init`` (:func:`~purenn.optim.masking.resolve_masks`): the run's settings
    record the trees, never a function.
    """
    plan = plan_run(model, params, x, y, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                    optimizer=optimizer, shuffle=shuffle, seed=seed, validation=validation,
                    callback=callback, on_batch=on_batch, stop_on_divergence=stop_on_divergence,
                    state=state, early_stopping=early_stopping, plateau=plateau, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, stop=stop, resume=resume, digest=digest,
                    sample_weight=sample_weight, class_weight=class_weight, metrics=metrics,
                    average=average)
    try:
        return _train(plan, params, callback, on_batch, checkpoint, checkpoint_every, stop)
    finally:
        if plan.on_end is not None:
            plan.on_end()


def _train(plan: Plan, params: Any, callback: Any, on_batch: Any, checkpoint: Any,
           checkpoint_every: int | None, stop: Any) -> Any:
    """``fit``'s loop, its arguments checked."""
    run = Run(plan, params)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked
        while not run.finished:
            for done in run.epoch_steps():
                if on_batch is not None:
                    on_batch(done, run.n_batches)
                if done < run.n_batches:
                    saved = checkpoint_every is not None and run.total_steps % checkpoint_every == 0
                    if saved:
                        checkpoint(run.snapshot())
                    if stop is not None and stop():
                        raise run.interrupted(None if saved else checkpoint)
            log = run.end_epoch()
            if callback is not None:
                callback(log)
            if checkpoint is not None:
                checkpoint(run.snapshot())
            if stop is not None and not run.finished and stop():
                raise run.interrupted(None)  # the state was just handed to checkpoint
    return run.outcome()
