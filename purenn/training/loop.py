"""The training loop: :func:`fit`, and :class:`_Run`, the variables one call keeps between steps.

``fit`` checks its arguments (:func:`purenn.training.checks.plan_run`), then runs epochs of
steps; the run does each step (forward, loss, backward, update) and each epoch's close
(divergence checks, validation, the rules, the log), and says where it is as a
:class:`~purenn.training_state.TrainingState`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, DivergenceError, TrainingInterrupted
from purenn.losses import Loss, mse
from purenn.monitors import EarlyStopping, EarlyStoppingState, PlateauState, ReduceLROnPlateau
from purenn.optim.base import Optimizer
from purenn.optim.schedules import Schedule
from purenn.rng import generator_from_state, generator_state
from purenn.training.checks import Plan, plan_run
from purenn.training.evaluation import evaluate
from purenn.training.history import EpochLog, History
from purenn.training_state import TrainingState
from purenn.tree import tree_leaves


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
    """
    plan = plan_run(model, params, x, y, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                    optimizer=optimizer, shuffle=shuffle, seed=seed, validation=validation,
                    callback=callback, on_batch=on_batch, stop_on_divergence=stop_on_divergence,
                    state=state, early_stopping=early_stopping, plateau=plateau, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, stop=stop, resume=resume, digest=digest)
    run = _Run(plan, params)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked
        while not run.finished:
            for done in run.epoch_steps():
                if on_batch is not None:
                    on_batch(done, run.n_batches)
                if done < run.n_batches:
                    saved = checkpoint_every is not None and run.total_steps % checkpoint_every == 0
                    if saved:
                        checkpoint(run.snapshot())  # type: ignore[misc]  # checked with checkpoint_every
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


class _Run:
    """The loop's mutable variables, private to one ``fit`` call (``fit`` itself stays pure:
    nothing the caller holds is changed), started from ``params`` or from the plan's resumed
    state."""

    def __init__(self, plan: Plan, params: Any) -> None:
        self.plan, self.epochs = plan, plan.epochs
        self.n_batches = math.ceil(len(plan.x) / plan.batch_size)
        self.param_grads = _param_grads(plan.model)
        # the step's grads are fit's own, dropped after the update: they are donated to a purenn
        # optimizer when the model declares them fresh (purenn.optim.base, "donated memory")
        self.update = _update_function(plan.model, plan.optimizer)
        if plan.resume is None:
            self._start(params, plan.state, plan.rng)
        else:
            self._resume(plan.resume)
        self.forward = _training_forward(plan.model, self.layer_rng)
        self.scale: float | None = None if self.plateau_state is None else self.plateau_state.scale

    # --- starting and resuming

    def _start(self, params: Any, state: Any, rng: np.random.Generator) -> None:
        try:
            self.shuffle_rng, self.layer_rng = rng.spawn(2)
        except TypeError as e:  # a legacy-seeded bit generator has no SeedSequence
            raise ArgumentTypeError(
                f"`seed`: this Generator cannot spawn the run's generators ({e}); pass an int or "
                "numpy.random.default_rng(seed)") from None
        self.params, self.state, self.opt_state = params, state, self.plan.optimizer.init(params)
        self.epoch, self.step, self.epoch_loss = 0, 0, 0.0
        self.last_loss: float | None = None
        self.logs: list[EpochLog] = []
        early, plateau = self.plan.early_stopping, self.plan.plateau
        self.early_state: EarlyStoppingState | None = None if early is None else early.init()
        self.plateau_state: PlateauState | None = None if plateau is None else plateau.init()
        self.best: tuple[Any, Any] | None = None

    def _resume(self, saved: TrainingState) -> None:
        """Continue ``saved`` (checked by :func:`~purenn.training.checks.plan_run`)."""
        self.shuffle_rng = generator_from_state(saved.shuffle_rng)
        self.layer_rng = generator_from_state(saved.layer_rng)
        self.params, self.state, self.opt_state = saved.params, saved.model_state, saved.opt_state
        self.epoch, self.step = saved.epoch, saved.step
        self.epoch_loss, self.last_loss = saved.epoch_loss, saved.last_loss
        self.logs = list(saved.history)
        self.early_state, self.plateau_state = saved.early_stopping, saved.plateau
        self.best = None if saved.best_params is None else (saved.best_params, saved.best_model_state)

    # --- where the run is

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs or self.stopped_early

    @property
    def stopped_early(self) -> bool:
        return self.early_state is not None and self.early_state.stopped

    @property
    def best_epoch(self) -> int | None:
        return None if self.early_state is None else self.early_state.best_epoch

    @property
    def total_steps(self) -> int:
        return self.epoch * self.n_batches + self.step

    # --- steps and epochs

    def epoch_steps(self) -> Iterator[int]:
        """Run the epoch in progress from its current step, yielding the steps done after each."""
        self.epoch_rng = generator_state(self.shuffle_rng)  # what a checkpoint mid-epoch saves
        x, y, bs = self.plan.x, self.plan.y, self.plan.batch_size
        order = self.shuffle_rng.permutation(len(x)) if self.plan.shuffle else None
        for b in range(self.step, self.n_batches):
            if order is None:
                xb, yb = x[b * bs : (b + 1) * bs], y[b * bs : (b + 1) * bs]
            else:
                rows = order[b * bs : (b + 1) * bs]
                xb, yb = x[rows], y[rows]
            self._train_step(xb, yb, b + 1)
            yield b + 1

    def _train_step(self, xb: np.ndarray, yb: np.ndarray, step: int) -> None:
        if self.plan.with_state:
            out, cache, state = self.forward(self.params, xb, state=self.state, training=True)
        else:
            out, cache = self.forward(self.params, xb)
            state = self.state
        value, dy = self.plan.loss_fn(out, yb)
        if not math.isfinite(value) and self.plan.check_divergence:
            raise _diverged(self.epoch + 1, step, self.n_batches, value, self.last_loss)
        grads = self.param_grads(self.params, cache, dy)
        params, opt_state = self.update(grads, self.opt_state, self.params, self.scale)
        # one assignment of the whole step, so the loop's variables are always of one step
        self.params, self.opt_state, self.state, self.step = params, opt_state, state, step
        self.epoch_loss, self.last_loss = self.epoch_loss + value * xb.shape[0], value

    def end_epoch(self) -> EpochLog:
        """Close the epoch: divergence checks, validation, the rules, the log."""
        epoch = self.epoch + 1
        if self.plan.check_divergence:
            self._check_finite(epoch)
        log = self._epoch_log(epoch)
        early, plateau = self.plan.early_stopping, self.plan.plateau  # each with its state or neither
        if early is not None and self.early_state is not None:
            self.early_state = early.update(self.early_state, _metric(log, early.monitor), epoch)
            if self.early_state.best_epoch == epoch:
                self.best = (self.params, self.state)
        if plateau is not None and self.plateau_state is not None:
            self.plateau_state = plateau.update(self.plateau_state, _metric(log, plateau.monitor))
            self.scale = self.plateau_state.scale
        self.logs.append(log)
        self.epoch, self.step, self.epoch_loss = epoch, 0, 0.0
        return log

    def _check_finite(self, epoch: int) -> None:
        """Non-finite params (or layer state) after the epoch's last step stop the run."""
        if not _all_finite(self.params):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the parameters became non-finite in the epoch's last step")
        if self.plan.with_state and not _all_finite(self.state):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the layers' state (running statistics) became non-finite")

    def _epoch_log(self, epoch: int) -> EpochLog:
        """The epoch's log: its mean loss, and the validation metrics and digest when asked for."""
        plan, state = self.plan, self.state if self.plan.with_state else None
        log = EpochLog(epoch=epoch, epochs=self.epochs, loss=self.epoch_loss / len(plan.x),
                       lr_scale=self.scale)
        if plan.validation is not None:
            metrics = evaluate(plan.model, self.params, *plan.validation, loss=plan.loss_fn, state=state)
            log = attrs.evolve(log, val_loss=metrics["loss"], val_accuracy=metrics.get("accuracy"))
        if plan.digest is not None:
            log = attrs.evolve(log, digest=plan.digest(self.params, state))
        return log

    # --- the state and the result

    def snapshot(self) -> TrainingState:
        """The state between two steps (or after an epoch) as a record."""
        shuffle_rng = self.epoch_rng if self.step else generator_state(self.shuffle_rng)
        best = self.best or (None, None)
        return TrainingState(
            params=self.params, model_state=self.state, opt_state=self.opt_state,
            epoch=self.epoch, step=self.step, epoch_loss=self.epoch_loss, last_loss=self.last_loss,
            shuffle_rng=shuffle_rng, layer_rng=generator_state(self.layer_rng),
            history=tuple(self.logs), settings=self.plan.settings, early_stopping=self.early_state,
            plateau=self.plateau_state, best_params=best[0], best_model_state=best[1],
        )

    def interrupted(self, checkpoint: Any) -> TrainingInterrupted:
        """The error of a run stopped as asked, carrying its state (handed to ``checkpoint``
        first, unless None: it has just been)."""
        saved = self.snapshot()
        if checkpoint is not None:
            checkpoint(saved)
        where = f"after step {self.step} of {self.n_batches} of epoch {self.epoch + 1}" if self.step \
            else f"after epoch {self.epoch}"
        return TrainingInterrupted(f"training stopped {where} of {self.epochs}, as asked",
                                   hint="continue with fit(..., resume=error.state)", state=saved)

    def outcome(self) -> tuple[Any, ...]:
        """What ``fit`` returns: ``(params, state, history)`` or ``(params, history)``; the best
        epoch's params and state under early stopping."""
        if self.best is not None and self.plan.early_stopping is not None:
            params, state = self.best
        else:
            params, state = self.params, self.state
        history = History(tuple(self.logs), self.stopped_early, self.best_epoch)
        return (params, state, history) if self.plan.returns_state else (params, history)


def _metric(log: EpochLog, name: str) -> float:
    value = getattr(log, name)
    if value is None:
        raise ArgumentError(
            f"fit: the monitored metric {name!r} is not available (val_accuracy needs class "
            "targets); monitor 'val_loss' or 'loss' instead")
    return float(value)


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


def _training_forward(model: Any, rng: np.random.Generator) -> Callable[..., Any]:
    """``model.forward`` in training mode: stochastic layers draw from ``rng``."""
    if getattr(model, "stochastic", False):
        return lambda params, xb, **mode: model.forward(params, xb, rng=rng, **mode)
    return model.forward


def _update_function(model: Any, optimizer: Any) -> Callable[[Any, Any, Any, float | None], Any]:
    """``update(grads, state, params, lr_scale) -> (params, state)``: the optimizer's update,
    called by keyword (an object written for another argument order fails instead of swapping
    them), with the grads donated when the optimizer is purenn's and the model declares fresh
    grads, and ``lr_scale`` only when a plateau rule sets one."""
    donate = isinstance(optimizer, Optimizer) and bool(getattr(model, "fresh_grads", False))
    update = optimizer.update
    if donate:
        def step(grads: Any, state: Any, params: Any, scale: float | None) -> Any:
            return update(grads=grads, state=state, params=params, lr_scale=1.0 if scale is None else scale,
                          donate=True)
    else:
        def step(grads: Any, state: Any, params: Any, scale: float | None) -> Any:
            if scale is None:
                return update(grads=grads, state=state, params=params)
            return update(grads=grads, state=state, params=params, lr_scale=scale)
    return step


def _param_grads(model: Any) -> Callable[[Any, Any, Any], Any]:
    """Grads without the input's gradient when the model offers it (Sequential, Dense)."""
    return getattr(model, "param_grads", None) or (lambda p, c, d: model.backward(p, c, d)[1])
