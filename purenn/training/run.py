"""The variables one ``fit`` call keeps between steps (:class:`Run`): each step (forward, loss,
backward, update), each epoch's close (divergence checks, validation, the rules, the log), and
where the run is, as a :class:`~purenn.training_state.TrainingState`. :mod:`purenn.training.loop`
drives it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, DivergenceError, TrainingInterrupted
from purenn.monitors import EarlyStoppingState, PlateauState
from purenn.optim.base import Optimizer
from purenn.rng import generator_from_state, generator_state
from purenn.training.checks import Plan, metric_value
from purenn.training.evaluation import evaluate
from purenn.training.history import EpochLog, History, StepLog
from purenn.training_state import TrainingState
from purenn.tree import tree_leaves


class Run:
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
        self.correct: int | None = None  # the epoch's correct classes so far (None: not counted)
        self.metric_sums: dict[str, float] | None = None  # the epoch's metrics x rows so far
        # each training row's predicted class in the epoch's order, compared with the labels when
        # the count is asked for (a step writes its batch's argmax: no output is kept)
        self.predicted = np.empty(len(plan.x) if plan.labels is not None else 0, np.intp)
        self.pending_from = 0  # the first step whose classes are not counted yet
        self.order: np.ndarray | None = None
        self.avg_state: Any = None  # the weight average's state
        # whether steps have more to do than the loss and the update (checked once a step)
        self.extras = plan.average is not None or plan.metrics is not None or plan.on_step is not None
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
        self.best: tuple[Any, Any, Any] | None = None
        self.avg_state = None if self.plan.average is None else self.plan.average.init(params)
        self._new_tallies()

    def _resume(self, saved: TrainingState) -> None:
        """Continue ``saved`` (checked by :func:`~purenn.training.checks.plan_run`)."""
        self.shuffle_rng = generator_from_state(saved.shuffle_rng)
        self.layer_rng = generator_from_state(saved.layer_rng)
        self.params, self.state, self.opt_state = saved.params, saved.model_state, saved.opt_state
        self.epoch, self.step = saved.epoch, saved.step
        self.epoch_loss, self.last_loss = saved.epoch_loss, saved.last_loss
        self.logs = list(saved.history)
        self.early_state, self.plateau_state = saved.early_stopping, saved.plateau
        self.best = None if saved.best_params is None else (saved.best_params, saved.best_model_state,
                                                            saved.best_average)
        self.avg_state = saved.average
        if saved.step == 0:
            self._new_tallies()
        else:  # None from a state saved before purenn counted them: the epoch's counts are unknown
            self.correct = None if self.plan.labels is None else saved.epoch_correct
            self.metric_sums = (None if self.plan.metrics is None or saved.epoch_metrics is None
                                else dict(saved.epoch_metrics))

    def _new_tallies(self) -> None:
        """The counts of a new epoch: correct classes (for class targets), metrics' sums."""
        self.correct = None if self.plan.labels is None else 0
        self.metric_sums = None if self.plan.metrics is None else dict.fromkeys(self.plan.metrics, 0.0)

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
        self.order = order = self.shuffle_rng.permutation(len(x)) if self.plan.shuffle else None
        self.pending_from = self.step
        for b in range(self.step, self.n_batches):
            rows = slice(b * bs, (b + 1) * bs) if order is None else order[b * bs : (b + 1) * bs]
            self._train_step(x[rows], y[rows], rows, b + 1)
            yield b + 1

    def _train_step(self, xb: np.ndarray, yb: np.ndarray, rows: Any, step: int) -> None:
        plan = self.plan
        if plan.with_state:
            out, cache, state = self.forward(self.params, xb, state=self.state, training=True)
        else:
            out, cache = self.forward(self.params, xb)
            state = self.state
        if plan.weights is None:
            value, dy = plan.loss_fn(out, yb)
            weight: float = xb.shape[0]
        else:
            options, weight = plan.weights.batch(rows)
            value, dy = plan.loss_fn(out, yb, **options)
        if not math.isfinite(value) and plan.check_divergence:
            raise _diverged(self.epoch + 1, step, self.n_batches, value, self.last_loss)
        grads = self.param_grads(self.params, cache, dy)
        params, opt_state = self.update(grads, self.opt_state, self.params, self.scale)
        if self.extras:
            self._end_step_with_extras(out, yb, params, opt_state, state, step, value, weight)
            return
        # one assignment of the whole step, so the loop's variables are always of one step
        self.params, self.opt_state, self.state, self.step = params, opt_state, state, step
        self.epoch_loss, self.last_loss = self.epoch_loss + value * weight, value
        if self.correct is not None:  # the classes, counted when asked (_count_pending)
            self._note_classes(out, step)

    def _end_step_with_extras(self, out: np.ndarray, yb: np.ndarray, params: Any, opt_state: Any,
                              state: Any, step: int, value: float, weight: float) -> None:
        """The end of a step of a run with a weight average, metrics or an ``on_step`` callback
        (apart, so that a run without any checks one flag a step)."""
        plan = self.plan
        average = self.avg_state
        if plan.average is not None and (plan.made_update is None or plan.made_update(opt_state)):
            average = plan.average.update(average, params)
        sums = self.metric_sums if plan.metrics is None else self._metric_sums(out, yb)
        self.params, self.opt_state, self.state, self.step = params, opt_state, state, step
        self.avg_state, self.metric_sums = average, sums
        self.epoch_loss, self.last_loss = self.epoch_loss + value * weight, value
        if self.correct is not None:
            self._note_classes(out, step)
        if plan.on_step is not None:
            plan.on_step(StepLog(self.epoch + 1, self.epochs, step, self.n_batches, value))

    def _metric_sums(self, out: np.ndarray, yb: np.ndarray) -> dict[str, float] | None:
        """The epoch's sums of each metric x batch rows, with this step's."""
        if self.metric_sums is None or self.plan.metrics is None:
            return None
        rows = len(out)
        return {name: self.metric_sums[name] + metric_value(name, fn, out, yb) * rows
                for name, fn in self.plan.metrics.items()}

    def _note_classes(self, out: np.ndarray, step: int) -> None:
        """Write the classes the step's outputs give into the epoch's ``predicted`` (its rows in
        the epoch's order): one argmax a step, written in place, no output kept."""
        start = (step - 1) * self.plan.batch_size
        into = self.predicted[start : start + len(out)]
        if out.ndim == 2 and out.shape[1] > 1:
            out.argmax(axis=1, out=into)
        else:
            into[...] = self._single(out)

    def _single(self, out: np.ndarray) -> np.ndarray:
        """The classes of outputs that are not one row per class: a single output is class 1
        above the loss's threshold; other shapes, the argmax of each flattened row."""
        flat = out.reshape(len(out), -1)
        return flat[:, 0] > self.plan.threshold if flat.shape[1] == 1 else flat.argmax(axis=1)

    def _count_pending(self) -> None:
        """Add the correct classes of the steps since the last count to the epoch's count (at
        the epoch's end and when the state is taken): one vectorized comparison."""
        if self.correct is None or self.plan.labels is None or self.step <= self.pending_from:
            self.pending_from = self.step
            return
        first, last, bs = self.pending_from, self.step, self.plan.batch_size
        rows = slice(first * bs, last * bs) if self.order is None else self.order[first * bs : last * bs]
        predicted = self.predicted[first * bs : last * bs]
        self.correct += int(np.count_nonzero(predicted == self.plan.labels[rows]))
        self.pending_from = last

    def end_epoch(self) -> EpochLog:
        """Close the epoch: divergence checks, validation, the rules, the log."""
        epoch = self.epoch + 1
        if self.plan.check_divergence:
            self._check_finite(epoch)
        self._count_pending()
        log = self._epoch_log(epoch)
        early, plateau = self.plan.early_stopping, self.plan.plateau  # each with its state or neither
        if early is not None and self.early_state is not None:
            self.early_state = early.update(self.early_state, _metric(log, early.monitor), epoch)
            if self.early_state.best_epoch == epoch:
                self.best = (self.params, self.state, self.averaged)
        if plateau is not None and self.plateau_state is not None:
            self.plateau_state = plateau.update(self.plateau_state, _metric(log, plateau.monitor))
            self.scale = self.plateau_state.scale
        self.logs.append(log)
        self.epoch, self.step, self.epoch_loss = epoch, 0, 0.0
        self._new_tallies()
        return log

    @property
    def averaged(self) -> Any:
        """The averaged params now (None without an average)."""
        average = self.plan.average
        return None if average is None else average.averaged(self.avg_state)

    def _check_finite(self, epoch: int) -> None:
        """Non-finite params (or layer state) after the epoch's last step stop the run."""
        if not _all_finite(self.params):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the parameters became non-finite in the epoch's last step")
        if self.plan.with_state and not _all_finite(self.state):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the layers' state (running statistics) became non-finite")

    def _epoch_log(self, epoch: int) -> EpochLog:
        """The epoch's log: its mean loss, accuracy and metrics, and the validation metrics and
        digests when asked for (validation of the averaged params when there are some)."""
        plan, state = self.plan, self.state if self.plan.with_state else None
        n = len(plan.x) if plan.weights is None else plan.weights.total
        log = EpochLog(epoch=epoch, epochs=self.epochs, loss=self.epoch_loss / n, lr_scale=self.scale,
                       accuracy=None if self.correct is None else self.correct / len(plan.x))
        metrics: dict[str, float] = {}
        if self.metric_sums is not None:
            metrics.update((k, v / len(plan.x)) for k, v in self.metric_sums.items())
        averaged = self.averaged
        evaluated = self.params if averaged is None else averaged
        if plan.validation is not None:
            val = evaluate(plan.model, evaluated, *plan.validation, loss=plan.loss_fn, state=state,
                           metrics=plan.metrics)
            log = attrs.evolve(log, val_loss=val["loss"], val_accuracy=val.get("accuracy"))
            metrics.update((f"val_{k}", val[k]) for k in plan.metrics or ())
        if plan.metrics is not None:
            log = attrs.evolve(log, metrics=metrics)
        if plan.digest is not None:
            log = attrs.evolve(log, digest=plan.digest(self.params, state),
                               average_digest=None if averaged is None else plan.digest(averaged, state))
        return log

    # --- the state and the result

    def snapshot(self) -> TrainingState:
        """The state between two steps (or after an epoch) as a record."""
        shuffle_rng = self.epoch_rng if self.step else generator_state(self.shuffle_rng)
        best = self.best or (None, None, None)
        if self.step:
            self._count_pending()
        return TrainingState(
            params=self.params, model_state=self.state, opt_state=self.opt_state,
            epoch=self.epoch, step=self.step, epoch_loss=self.epoch_loss, last_loss=self.last_loss,
            shuffle_rng=shuffle_rng, layer_rng=generator_state(self.layer_rng),
            history=tuple(self.logs), settings=self.plan.settings, early_stopping=self.early_state,
            plateau=self.plateau_state, best_params=best[0], best_model_state=best[1],
            epoch_correct=self.correct, epoch_metrics=self.metric_sums, average=self.avg_state,
            best_average=best[2],
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
        epoch's params, state and averaged params under early stopping."""
        if self.best is not None and self.plan.early_stopping is not None:
            params, state, averaged = self.best
        else:
            params, state, averaged = self.params, self.state, self.averaged
        history = History(tuple(self.logs), self.stopped_early, self.best_epoch, averaged)
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
