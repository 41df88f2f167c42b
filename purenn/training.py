"""Training built from the pure pieces: ``fit``, ``predict`` and ``evaluate``.

``fit`` is a loop over epochs and minibatches of: forward, loss, backward, update. Nothing in it
prints; progress goes to the optional callbacks. With ``batch_size=1, shuffle=False`` it is exactly
the tutorial's per-sample SGD. The same ``seed`` gives bit-identical params and history.

Models with state (``BatchNorm``'s running statistics; ``model.stateful``) take it explicitly:
``fit(..., state=model.init_state())`` trains in training mode and returns
``(params, state, history)``; ``predict`` and ``evaluate`` take ``state=`` and run in evaluation
mode, as ``fit``'s validation pass does. Forgetting the state is an error, never a silent
evaluation-mode run.

A run can stop and continue: ``fit`` hands a :class:`~purenn.training_state.TrainingState` to its
``checkpoint`` callback after every epoch (and every ``checkpoint_every`` steps), stops when its
``stop`` callback says so (raising :class:`~purenn.errors.TrainingInterrupted` with the state),
and continues from one with ``resume=``: the result is bit for bit that of an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError, DivergenceError, TrainingInterrupted
from purenn.layers.base import state_shapes
from purenn.losses import DEFAULT_THRESHOLD, Loss, as_loss, decision_threshold, mse
from purenn.metrics import accuracy, is_class_target
from purenn.monitors import EarlyStopping, EarlyStoppingState, PlateauState, ReduceLROnPlateau
from purenn.optim.base import Optimizer, State, as_optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import LEARNING_RATE, Schedule
from purenn.rng import generator_from_state, generator_state
from purenn.training_state import TrainingState, check_resumable, data_fingerprint, describe
from purenn.tree import layout, layout_difference, tree_leaves
from purenn.validation import as_samples, check, non_negative_int, positive_int, real, to_float, to_int


@attrs.frozen
class EpochLog:
    """What ``fit`` reports after each epoch (``val_*`` are None without a validation set).

    ``lr_scale``: the plateau rule's multiplier of the learning rate during the epoch (None
    without one); ``digest``: ``fit(digest=...)``'s digest of the params (and layer state) at the
    epoch's end (None without one)."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr_scale: float | None = None
    digest: str | None = None


@attrs.frozen
class History:
    """Per-epoch records of one ``fit`` run; ``loss`` is each epoch's mean training loss.

    With early stopping, ``stopped_early`` says whether it stopped the run and ``best_epoch`` is
    the epoch whose params ``fit`` returned."""

    epochs: tuple[EpochLog, ...] = ()
    stopped_early: bool = False
    best_epoch: int | None = None

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
    early_stopping: EarlyStopping | None = None,
    plateau: ReduceLROnPlateau | None = None,
    checkpoint: Callable[[TrainingState], None] | None = None,
    checkpoint_every: int | None = None,
    stop: Callable[[], bool] | None = None,
    resume: TrainingState | None = None,
    digest: Callable[[Any, Any], str] | None = None,
) -> Any:
    """Train ``model`` from ``params``; return the new params and the :class:`History`.

    Each step: forward a minibatch, take the loss and its gradient, backward to the parameter
    gradients, update. Give either ``lr`` (plain gradient descent: ``SGD(lr)``) or ``optimizer``
    (``Adam(1e-3)``, any :mod:`purenn.optim` optimizer or transformation, or a record with pure
    ``init(params)``/``update(grads, state, params)``, called by keyword). ``seed`` drives the shuffling and, for
    stochastic layers such as dropout, their random masks: the same int gives the same run;
    ``None`` draws fresh entropy (not reproducible); a Generator is advanced by the run.
    ``validation=(x_val, y_val)`` adds the validation loss and accuracy to each epoch's log (in
    evaluation mode, as :func:`evaluate` with ``loss``; a single output's class is decided at
    the loss's :func:`~purenn.losses.decision_threshold`: 0 for ``binary_cross_entropy``'s
    logits, 0.5 otherwise).
    ``callback(EpochLog)`` runs after every epoch, ``on_batch(batches_done, batches_per_epoch)``
    after every step. ``loss`` is a loss function or the name of a built-in one (``"mse"``).

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
    x, y, loss_fn, optimizer, epochs, batch_size, rng, validation = _fit_arguments(
        x, y, loss, lr, optimizer, epochs, batch_size, seed, validation, callback, on_batch)
    _check_options(early_stopping, plateau, checkpoint, checkpoint_every, stop, digest, validation, optimizer)
    if stop_on_divergence:
        _check_finite_data(x, y, validation)
    if resume is not None:
        if not isinstance(resume, TrainingState):
            check_resumable(resume, {})  # the error naming what resume must be
        if params is not None or state is not None:
            raise ArgumentError("fit(resume=...) continues from the params and state the "
                                "TrainingState holds: pass params=None (and no state=)")
        state = resume.model_state
    with_state = _needs_state(model, state, "fit")
    if with_state and len(x) % batch_size == 1 and len(x) > 1:
        raise ArgumentError(
            f"fit: {len(x)} samples in batches of {batch_size} leave a last batch of one sample, "
            "from which BatchNorm cannot estimate a variance; choose a batch size that leaves two "
            "or more (or none), or one sample fewer or more")
    settings = _settings(model, x, y, loss_fn, optimizer, epochs, batch_size, shuffle, seed,
                         validation, early_stopping, plateau, state is not None,
                         fingerprint=checkpoint is not None or stop is not None or resume is not None)
    run = _Run(model, x, y, loss_fn, optimizer, batch_size, shuffle, validation, early_stopping,
               plateau, with_state, stop_on_divergence, digest, settings)
    if resume is None:
        run.start(params, state, rng)
    else:
        run.resume(check_resumable(resume, settings))
    given_state = state is not None
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
    params, state = run.result()
    history = History(tuple(run.logs), run.stopped_early, run.best_epoch)
    return (params, state, history) if given_state else (params, history)


class _Run:
    """The loop's mutable variables, private to one ``fit`` call (``fit`` itself stays pure:
    nothing the caller holds is changed)."""

    def __init__(self, model: Any, x: np.ndarray, y: np.ndarray, loss_fn: Any, optimizer: Any,
                 batch_size: int, shuffle: bool, validation: Any, early_stopping: Any,
                 plateau: Any, with_state: bool, stop_on_divergence: bool, digest: Any,
                 settings: dict[str, Any]) -> None:
        self.model, self.x, self.y, self.loss_fn, self.optimizer = model, x, y, loss_fn, optimizer
        self.batch_size, self.shuffle, self.validation = batch_size, shuffle, validation
        self.early, self.plateau, self.with_state = early_stopping, plateau, with_state
        self.check_divergence, self.digest, self.settings = stop_on_divergence, digest, settings
        self.epochs = settings["epochs"]
        self.n_batches = math.ceil(len(x) / batch_size)
        self.param_grads = _param_grads(model)
        # the step's grads are fit's own, dropped after the update: they are donated to a purenn
        # optimizer when the model declares them fresh (purenn.optim.base, "donated memory")
        self.update = _update_function(model, optimizer)

    # --- starting and resuming

    def start(self, params: Any, state: Any, rng: np.random.Generator) -> None:
        try:
            self.shuffle_rng, self.layer_rng = rng.spawn(2)
        except TypeError as e:  # a legacy-seeded bit generator has no SeedSequence
            raise ArgumentTypeError(
                f"`seed`: this Generator cannot spawn the run's generators ({e}); pass an int or "
                "numpy.random.default_rng(seed)") from None
        self.params, self.state, self.opt_state = params, state, self.optimizer.init(params)
        self.epoch, self.step, self.epoch_loss = 0, 0, 0.0
        self.last_loss: float | None = None
        self.logs: list[EpochLog] = []
        self.early_state: EarlyStoppingState | None = None if self.early is None else self.early.init()
        self.plateau_state: PlateauState | None = None if self.plateau is None else self.plateau.init()
        self.best: tuple[Any, Any] | None = None
        self._begin()

    def resume(self, saved: TrainingState) -> None:
        for name, rule, kept in (("early_stopping", self.early, saved.early_stopping),
                                 ("plateau", self.plateau, saved.plateau)):
            if (rule is None) != (kept is None):
                raise ArgumentError(f"cannot resume: the saved run's {name} state is "
                                    f"{'missing' if kept is None else 'there'} but this call's "
                                    f"{name} is {rule!r:.60} (a damaged state?)")
        problem = layout_difference(layout(self.optimizer.init(saved.params)), saved.opt_state, "opt_state")
        if problem is not None:
            raise ArgumentError(f"cannot resume: the saved optimizer state does not fit this "
                                f"optimizer and params: {problem}")
        self.shuffle_rng = generator_from_state(saved.shuffle_rng)
        self.layer_rng = generator_from_state(saved.layer_rng)
        self.params, self.state, self.opt_state = saved.params, saved.model_state, saved.opt_state
        self.epoch, self.step = saved.epoch, saved.step
        self.epoch_loss, self.last_loss = saved.epoch_loss, saved.last_loss
        self.logs = list(saved.history)
        self.early_state, self.plateau_state = saved.early_stopping, saved.plateau
        self.best = None if saved.best_params is None else (saved.best_params, saved.best_model_state)
        self._begin()

    def _begin(self) -> None:
        self.forward = _training_forward(self.model, self.layer_rng)
        self.scale: float | None = None if self.plateau_state is None else self.plateau_state.scale

    # --- the loop

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

    def epoch_steps(self) -> Any:
        """Run the epoch in progress from its current step, yielding the steps done after each."""
        self.epoch_rng = generator_state(self.shuffle_rng)  # what a checkpoint mid-epoch saves
        x, y, bs = self.x, self.y, self.batch_size
        order = self.shuffle_rng.permutation(len(x)) if self.shuffle else None
        for b in range(self.step, self.n_batches):
            if order is None:
                xb, yb = x[b * bs : (b + 1) * bs], y[b * bs : (b + 1) * bs]
            else:
                rows = order[b * bs : (b + 1) * bs]
                xb, yb = x[rows], y[rows]
            self._train_step(xb, yb, b + 1)
            yield b + 1

    def _train_step(self, xb: np.ndarray, yb: np.ndarray, step: int) -> None:
        if self.with_state:
            out, cache, state = self.forward(self.params, xb, state=self.state, training=True)
        else:
            out, cache = self.forward(self.params, xb)
            state = self.state
        value, dy = self.loss_fn(out, yb)
        if not math.isfinite(value) and self.check_divergence:
            raise _diverged(self.epoch + 1, step, self.n_batches, value, self.last_loss)
        grads = self.param_grads(self.params, cache, dy)
        params, opt_state = self.update(grads, self.opt_state, self.params, self.scale)
        # one assignment of the whole step, so the loop's variables are always of one step
        self.params, self.opt_state, self.state, self.step = params, opt_state, state, step
        self.epoch_loss, self.last_loss = self.epoch_loss + value * xb.shape[0], value

    def end_epoch(self) -> EpochLog:
        """Close the epoch: divergence checks, validation, the rules, the log."""
        epoch = self.epoch + 1
        if self.check_divergence and not _all_finite(self.params):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the parameters became non-finite in the epoch's last step")
        if self.check_divergence and self.with_state and not _all_finite(self.state):
            raise _diverged(epoch, self.n_batches, self.n_batches, math.nan, self.last_loss,
                            what="the layers' state (running statistics) became non-finite")
        log = EpochLog(epoch=epoch, epochs=self.epochs, loss=self.epoch_loss / len(self.x),
                       lr_scale=self.scale)
        if self.validation is not None:
            metrics = evaluate(self.model, self.params, *self.validation, loss=self.loss_fn,
                               state=self.state if self.with_state else None)
            log = attrs.evolve(log, val_loss=metrics["loss"], val_accuracy=metrics.get("accuracy"))
        if self.digest is not None:
            log = attrs.evolve(log, digest=self.digest(self.params, self.state if self.with_state else None))
        if self.early is not None:
            self.early_state = self.early.update(self.early_state, _metric(log, self.early.monitor), epoch)
            if self.early_state.best_epoch == epoch:
                self.best = (self.params, self.state)
        if self.plateau is not None:
            self.plateau_state = self.plateau.update(self.plateau_state, _metric(log, self.plateau.monitor))
            self.scale = self.plateau_state.scale
        self.logs.append(log)
        self.epoch, self.step, self.epoch_loss = epoch, 0, 0.0
        return log

    def snapshot(self) -> TrainingState:
        """The state between two steps (or after an epoch) as a record."""
        shuffle_rng = self.epoch_rng if self.step else generator_state(self.shuffle_rng)
        best = self.best or (None, None)
        return TrainingState(
            params=self.params, model_state=self.state, opt_state=self.opt_state,
            epoch=self.epoch, step=self.step, epoch_loss=self.epoch_loss, last_loss=self.last_loss,
            shuffle_rng=shuffle_rng, layer_rng=generator_state(self.layer_rng),
            history=tuple(self.logs), settings=self.settings, early_stopping=self.early_state,
            plateau=self.plateau_state, best_params=best[0], best_model_state=best[1],
        )

    def interrupted(self, checkpoint: Any) -> TrainingInterrupted:
        saved = self.snapshot()
        if checkpoint is not None:
            checkpoint(saved)
        where = f"after step {self.step} of {self.n_batches} of epoch {self.epoch + 1}" if self.step \
            else f"after epoch {self.epoch}"
        return TrainingInterrupted(f"training stopped {where} of {self.epochs}, as asked",
                                   hint="continue with fit(..., resume=error.state)", state=saved)

    def result(self) -> tuple[Any, Any]:
        if self.best is not None and self.early is not None:
            return self.best
        return self.params, self.state


def _metric(log: EpochLog, name: str) -> float:
    value = getattr(log, name)
    if value is None:
        raise ArgumentError(
            f"fit: the monitored metric {name!r} is not available (val_accuracy needs class "
            "targets); monitor 'val_loss' or 'loss' instead")
    return float(value)


def _check_options(early_stopping: Any, plateau: Any, checkpoint: Any, checkpoint_every: Any,
                   stop: Any, digest: Any, validation: Any, optimizer: Any) -> None:
    for name, value, kind in (("early_stopping", early_stopping, EarlyStopping),
                              ("plateau", plateau, ReduceLROnPlateau)):
        if value is None:
            continue
        if not isinstance(value, kind):
            raise ArgumentTypeError(f"`{name}` must be a {kind.__name__} or None, got {value!r:.80}")
        if value.monitor.startswith("val_") and validation is None:
            raise ArgumentError(f"`{name}` monitors {value.monitor!r}, which needs a validation set: "
                                "pass validation=(x_val, y_val) or monitor 'loss'")
        if value.monitor == "val_accuracy" and not is_class_target(validation[1]):
            raise ArgumentError(f"`{name}` monitors 'val_accuracy', but the validation targets are "
                                "not classes; monitor 'val_loss' instead")
    if plateau is not None and not _takes_keyword(optimizer, "lr_scale"):
        raise ArgumentTypeError(f"`plateau` needs an optimizer whose update takes lr_scale= (purenn's "
                                f"optimizers do); got {optimizer!r:.80}")
    for name, fn in (("checkpoint", checkpoint), ("stop", stop), ("digest", digest)):
        if fn is not None and not callable(fn):
            raise ArgumentTypeError(f"`{name}` must be a function or None, got {fn!r:.80}")
    if checkpoint_every is not None:
        check("checkpoint_every", checkpoint_every, positive_int)
        if checkpoint is None:
            raise ArgumentError("`checkpoint_every` needs a `checkpoint` callback to hand the states to")


def _takes_keyword(optimizer: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(optimizer.update).parameters
    except (TypeError, ValueError):
        return False


def _settings(model: Any, x: np.ndarray, y: np.ndarray, loss_fn: Any, optimizer: Any, epochs: int,
              batch_size: int, shuffle: bool, seed: Any, validation: Any, early_stopping: Any,
              plateau: Any, with_state: bool, *, fingerprint: bool) -> dict[str, Any]:
    """What a run was asked to do, as plain data: a resumed run must have the same. The data are
    recognised by a fingerprint of their bytes (computed only when checkpointing or resuming).
    The seed is not among them: a resumed run's generators come from the saved state."""
    return {
        "model": describe(model), "optimizer": describe(optimizer),
        "loss": getattr(loss_fn, "__name__", describe(loss_fn)), "epochs": epochs,
        "batch_size": batch_size, "shuffle": shuffle, "samples": len(x),
        "data": data_fingerprint(x, y) if fingerprint else None,
        "validation": (data_fingerprint(*validation) if validation is not None else None) if fingerprint else None,
        "early_stopping": repr(early_stopping), "plateau": repr(plateau), "state": with_state,
    }


def _needs_state(model: Any, state: Any, who: str) -> bool:
    """Whether to run ``model`` with ``state``: a stateful model must be given one, of the
    structure, shapes and dtypes its ``state_shapes()`` declares."""
    stateful = getattr(model, "stateful", False)
    if stateful and state is None:
        raise ArgumentError(
            f"{who}: the model has layers with state (such as BatchNorm's running statistics); "
            f"pass state=model.init_state() (or the state a previous fit returned)"
            + ("; fit then returns (params, state, history)" if who == "fit" else "")
        )
    if stateful:
        problem = layout_difference(state_shapes(model), state, "state")
        if problem is not None:
            raise ArgumentError(f"{who}: {problem}; make the state with model.init_state()")
    return state is not None and stateful


def _check_finite_data(x: np.ndarray, y: np.ndarray, validation: Any) -> None:
    """Refuse non-finite values in the training or validation data, naming the array."""
    train = "training on them would give a NaN loss whatever the learning rate"
    arrays = [("`x`", "x", x, train), ("`y`", "y", y, train)]
    if validation is not None:
        val = "the validation loss would be NaN"
        arrays += [("`validation[0]` (the validation inputs)", "validation[0]", validation[0], val),
                   ("`validation[1]` (the validation targets)", "validation[1]", validation[1], val)]
    for what, name, a, consequence in arrays:
        problem = _non_finite(a, name)
        if problem is not None:
            raise ArgumentError(
                f"fit: {what} has {problem}; {consequence}",
                hint="remove or replace those values first (e.g. with np.nan_to_num), or pass "
                     "stop_on_divergence=False to train on them regardless")


def _non_finite(a: np.ndarray, name: str) -> str | None:
    """How many values of ``a`` are NaN or infinite and where the first is, or None when all
    are finite. One pass and no copy when they are: the sum of finite values is finite (a sum
    that overflows is looked at element by element, like one with a NaN)."""
    if a.dtype.kind not in "fc":
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(a, axis=None)):
            return None
    finite = np.isfinite(a)
    count = a.size - int(np.count_nonzero(finite))
    if count == 0:
        return None  # only the sum overflowed
    first = np.unravel_index(int(np.argmin(finite)), a.shape)
    where = ", ".join(str(int(i)) for i in first)
    return f"{count} non-finite value{'s' if count > 1 else ''} (NaN or infinity) of {a.size}, " \
           f"the first at {name}[{where}] = {a[first]}"


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
    return _predict(model, params, np.asarray(x), batch_size, state, _needs_state(model, state, "predict"))


def _predict(model: Any, params: Any, x: np.ndarray, batch_size: int | None, state: Any,
             with_state: bool) -> np.ndarray:
    """:func:`predict` after its checks (``with_state``: what :func:`_needs_state` said)."""
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
) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)``: the loss only when given; the accuracy
    only for class targets (integer labels, one-hot rows or 0/1 values), with one output per
    class (the argmax) or a single output, class 1 when above ``threshold``. ``threshold``
    defaults to the loss's :func:`~purenn.losses.decision_threshold` (0 for
    ``binary_cross_entropy``, whose outputs are logits; 0.5 for other losses and without one).
    ``batch_size`` and ``state``: as for :func:`predict`; the loss is summed over chunks of
    ``batch_size`` rows (1024 by default)."""
    x, y = as_samples(x, y, "evaluate")
    loss_fn = None if loss is None else as_loss(loss)
    if batch_size is not None:
        batch_size = check("batch_size", batch_size, positive_int, to_int)
    if threshold is None:
        threshold = DEFAULT_THRESHOLD if loss_fn is None else decision_threshold(loss_fn)
    threshold = check("threshold", threshold, real(), to_float)
    out = _predict(model, params, x, batch_size, state, _needs_state(model, state, "evaluate"))
    batch_size = batch_size or 1024
    metrics: dict[str, float] = {}
    if loss_fn is not None:
        total = sum(
            loss_fn(out[i : i + batch_size], y[i : i + batch_size])[0] * len(out[i : i + batch_size])
            for i in range(0, len(out), batch_size)
        )
        metrics["loss"] = total / len(out)
    if is_class_target(y):
        metrics["accuracy"] = accuracy(out, y, threshold=threshold)
    return metrics
