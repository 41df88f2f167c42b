"""``fit``'s arguments checked, in one place, before any step runs: :func:`plan_run` turns them
into a :class:`Plan` (what the run does) or raises the error naming the first bad one; and
:func:`needs_state`, which ``predict`` and ``evaluate`` share."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.layers.base import state_shapes
from purenn.losses import as_loss, decision_threshold
from purenn.metrics import class_labels, is_class_target
from purenn.monitors import EarlyStopping, ReduceLROnPlateau
from purenn.optim.averaging import Average
from purenn.optim.base import as_optimizer
from purenn.optim.masking import resolve_masks
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import LEARNING_RATE
from purenn.training.history import StepLog
from purenn.training.updates import made_update
from purenn.training.weights import Weights, plan_weights
from purenn.training_state import TrainingState, check_resumable, data_fingerprint, describe
from purenn.tree import layout, layout_difference
from purenn.validation import as_samples, check, non_negative_int, positive_int, to_float, to_int

_SEED = attrs.evolve(non_negative_int, what="an int >= 0, a numpy Generator or None")


@attrs.frozen(eq=False)
class Plan:
    """What one ``fit`` call does, its arguments checked and in canonical form (the callbacks
    apart). ``state``: the layers' state to start from (the given one, or the resumed run's);
    ``with_state``: whether the model runs with it (it is stateful); ``returns_state``: whether
    ``fit`` returns ``(params, state, history)``; ``resume``: the checked state to continue;
    ``settings``: what a resumed run must share (see :func:`run_settings`). ``weights``: the
    sample and class weights (None without); ``labels``: the training targets' classes, for the
    training accuracy (None for targets that are not classes), decided at ``threshold``;
    ``metrics``: ``fit(metrics=...)``'s functions (None without); ``average``: the weight average
    (None without), updated when ``made_update(opt_state)`` says the step updated (None: every
    step does); ``on_step``, ``on_end``: the callback's optional methods (see :func:`purenn.fit`)."""

    model: Any
    x: np.ndarray
    y: np.ndarray
    loss_fn: Any
    optimizer: Any
    epochs: int
    batch_size: int
    shuffle: bool
    rng: np.random.Generator
    validation: tuple[np.ndarray, np.ndarray] | None
    early_stopping: EarlyStopping | None
    plateau: ReduceLROnPlateau | None
    state: Any
    with_state: bool
    returns_state: bool
    check_divergence: bool
    digest: Callable[[Any, Any], str] | None
    settings: dict[str, Any]
    resume: TrainingState | None
    weights: Weights | None = None
    labels: np.ndarray | None = None
    threshold: float = 0.5
    metrics: dict[str, Callable[[Any, Any], Any]] | None = None
    average: Average | None = None
    made_update: Callable[[Any], bool] | None = None
    on_step: Callable[[StepLog], None] | None = None
    on_end: Callable[[], None] | None = None


def plan_run(model: Any, params: Any, x: Any, y: Any, *, loss: Any, epochs: Any, batch_size: Any,
             lr: Any, optimizer: Any, shuffle: bool, seed: Any, validation: Any, callback: Any,
             on_batch: Any, stop_on_divergence: bool, state: Any, early_stopping: Any, plateau: Any,
             checkpoint: Any, checkpoint_every: Any, stop: Any, resume: Any, digest: Any,
             sample_weight: Any = None, class_weight: Any = None, metrics: Any = None,
             average: Any = None) -> Plan:
    """``fit``'s arguments (see :func:`purenn.fit`) as a :class:`Plan`, or the error naming the
    first one that is wrong: the data and settings, the callbacks and rules, the data's values,
    then whether the model's state and a resumed run fit them. The optimizer's masks given as
    functions are resolved for the params (the resumed run's), so that its record is data
    (:func:`~purenn.optim.masking.resolve_masks`)."""
    x, y, loss_fn, optimizer, epochs, batch_size, rng, validation = fit_arguments(
        x, y, loss, lr, optimizer, epochs, batch_size, seed, validation, callback, on_batch)
    check_options(early_stopping, plateau, checkpoint, checkpoint_every, stop, digest, validation,
                  optimizer, y)
    metric_fns = check_metrics(metrics, "fit")
    if average is not None and not isinstance(average, Average):
        raise ArgumentTypeError(f"`average` must be a weight average such as EMA(0.999), or None; "
                                f"got {average!r:.80}")
    weights = plan_weights(loss_fn, y, sample_weight, class_weight)
    if stop_on_divergence:
        check_finite_data(x, y, validation)
    if resume is not None:
        state = resumed_state(resume, params, state)
    optimizer = resolve_masks(optimizer, params if resume is None else resume.params)
    with_state = needs_state(model, state, "fit")
    check_last_batch(len(x), batch_size, with_state)
    settings = run_settings(model, x, y, loss_fn, optimizer, epochs, batch_size, shuffle, validation,
                            early_stopping, plateau, state is not None,
                            fingerprint=checkpoint is not None or stop is not None or resume is not None,
                            weights=weights, sample_weight=sample_weight is not None,
                            metrics=metric_fns, average=average)
    if resume is not None:
        resume = check_resumable(resume, settings)
        check_resume_fits(resume, optimizer, early_stopping, plateau, average)
    labels = class_labels(y) if is_class_target(y) else None
    return Plan(model, x, y, loss_fn, optimizer, epochs, batch_size, shuffle, rng, validation,
                early_stopping, plateau, state, with_state, state is not None, stop_on_divergence,
                digest, settings, resume, weights, labels, decision_threshold(loss_fn), metric_fns,
                average, None if average is None else made_update(optimizer),
                _method(callback, "on_step"), _method(callback, "close"))


def _method(callback: Any, name: str) -> Any:
    """The callback object's optional method ``name``, or None."""
    method = getattr(callback, name, None)
    if method is not None and not callable(method):
        raise ArgumentTypeError(f"`callback`.{name} must be a method, got {method!r:.60}")
    return method


def fit_arguments(x: Any, y: Any, loss: Any, lr: Any, optimizer: Any, epochs: Any,
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


def check_options(early_stopping: Any, plateau: Any, checkpoint: Any, checkpoint_every: Any,
                  stop: Any, digest: Any, validation: Any, optimizer: Any, y: Any = None) -> None:
    """The rules (early stopping, plateau) and the stopping and continuing callbacks."""
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
        if value.monitor == "accuracy" and y is not None and not is_class_target(y):
            raise ArgumentError(f"`{name}` monitors 'accuracy', but the training targets are not "
                                "classes; monitor 'loss' instead")
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
    try:
        return name in inspect.signature(optimizer.update).parameters
    except (TypeError, ValueError):
        return False


def check_finite_data(x: np.ndarray, y: np.ndarray, validation: Any) -> None:
    """Refuse non-finite values in the training or validation data, naming the array."""
    train = "training on them would give a NaN loss whatever the learning rate"
    arrays = [("`x`", "x", x, train), ("`y`", "y", y, train)]
    if validation is not None:
        val = "the validation loss would be NaN"
        arrays += [("`validation[0]` (the validation inputs)", "validation[0]", validation[0], val),
                   ("`validation[1]` (the validation targets)", "validation[1]", validation[1], val)]
    for what, name, a, consequence in arrays:
        problem = non_finite(a, name)
        if problem is not None:
            raise ArgumentError(
                f"fit: {what} has {problem}; {consequence}",
                hint="remove or replace those values first (e.g. with np.nan_to_num), or pass "
                     "stop_on_divergence=False to train on them regardless")


def non_finite(a: np.ndarray, name: str) -> str | None:
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


def resumed_state(resume: Any, params: Any, state: Any) -> Any:
    """The layers' state a resumed run starts from (the saved one): ``params`` and ``state``
    must not be given as well."""
    if not isinstance(resume, TrainingState):
        check_resumable(resume, {})  # the error naming what resume must be
    if params is not None or state is not None:
        raise ArgumentError("fit(resume=...) continues from the params and state the "
                            "TrainingState holds: pass params=None (and no state=)")
    return resume.model_state


def needs_state(model: Any, state: Any, who: str) -> bool:
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


def check_last_batch(samples: int, batch_size: int, with_state: bool) -> None:
    """A model with state (BatchNorm) cannot train on a last batch of one sample."""
    if with_state and samples % batch_size == 1 and samples > 1:
        raise ArgumentError(
            f"fit: {samples} samples in batches of {batch_size} leave a last batch of one sample, "
            "from which BatchNorm cannot estimate a variance; choose a batch size that leaves two "
            "or more (or none), or one sample fewer or more")


def run_settings(model: Any, x: np.ndarray, y: np.ndarray, loss_fn: Any, optimizer: Any, epochs: int,
                 batch_size: int, shuffle: bool, validation: Any, early_stopping: Any,
                 plateau: Any, with_state: bool, *, fingerprint: bool, weights: Weights | None = None,
                 sample_weight: bool = False, metrics: dict[str, Any] | None = None,
                 average: Any = None) -> dict[str, Any]:
    """What a run was asked to do, as plain data: a resumed run must have the same. The data are
    recognised by a fingerprint of their bytes (computed only when checkpointing or resuming;
    with the sample weights when there are some). The seed is not among them: a resumed run's
    generators come from the saved state. The options of later purenn versions are None when
    not used, so that a run saved before them resumes."""
    arrays = (x, y) if not sample_weight or weights is None else (x, y, weights.sample)
    return {
        "model": describe(model), "optimizer": describe(optimizer),
        "loss": loss_name(loss_fn), "epochs": epochs,
        "batch_size": batch_size, "shuffle": shuffle, "samples": len(x),
        "data": data_fingerprint(*arrays) if fingerprint else None,
        "validation": (data_fingerprint(*validation) if validation is not None else None) if fingerprint else None,
        "early_stopping": repr(early_stopping), "plateau": repr(plateau), "state": with_state,
        "sample_weight": True if sample_weight else None,
        "class_weight": None if weights is None else weights.describe(),
        "metrics": None if metrics is None else ",".join(metrics),
        "average": None if average is None else repr(average),
    }


def loss_name(loss_fn: Any) -> str:
    """A loss as the settings record it: its name, with the options a ``functools.partial`` binds
    (``softmax_cross_entropy(label_smoothing=0.1)``; arrays by their fingerprint)."""
    if isinstance(loss_fn, functools.partial):
        options = ", ".join(f"{k}={_option(v)}" for k, v in sorted(loss_fn.keywords.items()))
        return f"{loss_name(loss_fn.func)}({options})"
    return str(getattr(loss_fn, "__name__", describe(loss_fn)))


def _option(value: Any) -> str:
    if isinstance(value, (np.ndarray, list, tuple)):
        return f"<array {data_fingerprint(np.asarray(value))}>"
    return describe(value)


def check_resume_fits(saved: TrainingState, optimizer: Any, early_stopping: Any, plateau: Any,
                      average: Any = None) -> None:
    """A saved run's rule states, optimizer state and weight average's state must be those of
    this call's rules, optimizer and average (a damaged or altered state is refused, naming what
    does not fit)."""
    for name, rule, kept in (("early_stopping", early_stopping, saved.early_stopping),
                             ("plateau", plateau, saved.plateau), ("average", average, saved.average)):
        if (rule is None) != (kept is None):
            raise ArgumentError(f"cannot resume: the saved run's {name} state is "
                                f"{'missing' if kept is None else 'there'} but this call's "
                                f"{name} is {rule!r:.60} (a damaged state?)")
    problem = layout_difference(layout(optimizer.init(saved.params)), saved.opt_state, "opt_state")
    if problem is not None:
        raise ArgumentError(f"cannot resume: the saved optimizer state does not fit this "
                            f"optimizer and params: {problem}")
    if average is not None:
        problem = layout_difference(layout(average.init(saved.params)), saved.average, "average")
        if problem is not None:
            raise ArgumentError(f"cannot resume: the saved weight average does not fit this average "
                                f"and params: {problem}")


def check_metrics(metrics: Any, who: str) -> dict[str, Callable[[Any, Any], Any]] | None:
    """``metrics`` (None, or a dict of names to functions ``(y_pred, y_true) -> float``) as a
    new dict, or the error naming what is wrong. A name may not be one ``fit`` reports itself
    (``loss``, ``accuracy``) nor start with ``val_`` (the validation values' prefix)."""
    if metrics is None:
        return None
    if not isinstance(metrics, Mapping) or not metrics:
        raise ArgumentTypeError(f"{who}: `metrics` must be a non-empty dict {{name: function(y_pred, "
                                f"y_true) -> float}}, got {metrics!r:.80}")
    for name, fn in metrics.items():
        if not (isinstance(name, str) and name.isidentifier()) or name in _RESERVED \
                or name.startswith("val_"):
            raise ArgumentError(f"{who}: `metrics` names must be identifiers other than "
                                f"{sorted(_RESERVED)} and not starting with 'val_', got {name!r:.60}")
        if not callable(fn):
            raise ArgumentTypeError(f"{who}: `metrics[{name!r}]` must be a function (y_pred, y_true) "
                                    f"-> float, got {fn!r:.80}")
    return dict(metrics)


_RESERVED = {"loss", "accuracy", "lr_scale", "digest"}


def metric_value(name: str, fn: Callable[[Any, Any], Any], y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """``fn(y_pred, y_true)`` as a float, or the error naming the metric that gave something else."""
    value = fn(y_pred, y_true)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"the metric {name!r} must return a number, got {value!r:.80}") from None
