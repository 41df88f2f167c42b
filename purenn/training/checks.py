"""``fit``'s arguments checked, in one place, before any step runs: :func:`plan_run` turns them
into a :class:`Plan` (what the run does) or raises the error naming the first bad one; and
:func:`needs_state`, which ``predict`` and ``evaluate`` share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from purenn.errors import ArgumentError, ArgumentTypeError
from purenn.layers.base import state_shapes
from purenn.losses import as_loss
from purenn.metrics import is_class_target
from purenn.monitors import EarlyStopping, ReduceLROnPlateau
from purenn.optim.base import as_optimizer
from purenn.optim.optimizers import SGD
from purenn.optim.schedules import LEARNING_RATE
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
    ``settings``: what a resumed run must share (see :func:`run_settings`)."""

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


def plan_run(model: Any, params: Any, x: Any, y: Any, *, loss: Any, epochs: Any, batch_size: Any,
             lr: Any, optimizer: Any, shuffle: bool, seed: Any, validation: Any, callback: Any,
             on_batch: Any, stop_on_divergence: bool, state: Any, early_stopping: Any, plateau: Any,
             checkpoint: Any, checkpoint_every: Any, stop: Any, resume: Any, digest: Any) -> Plan:
    """``fit``'s arguments (see :func:`purenn.fit`) as a :class:`Plan`, or the error naming the
    first one that is wrong: the data and settings, the callbacks and rules, the data's values,
    then whether the model's state and a resumed run fit them."""
    x, y, loss_fn, optimizer, epochs, batch_size, rng, validation = fit_arguments(
        x, y, loss, lr, optimizer, epochs, batch_size, seed, validation, callback, on_batch)
    check_options(early_stopping, plateau, checkpoint, checkpoint_every, stop, digest, validation, optimizer)
    if stop_on_divergence:
        check_finite_data(x, y, validation)
    if resume is not None:
        state = resumed_state(resume, params, state)
    with_state = needs_state(model, state, "fit")
    check_last_batch(len(x), batch_size, with_state)
    settings = run_settings(model, x, y, loss_fn, optimizer, epochs, batch_size, shuffle, validation,
                            early_stopping, plateau, state is not None,
                            fingerprint=checkpoint is not None or stop is not None or resume is not None)
    if resume is not None:
        resume = check_resumable(resume, settings)
        check_resume_fits(resume, optimizer, early_stopping, plateau)
    return Plan(model, x, y, loss_fn, optimizer, epochs, batch_size, shuffle, rng, validation,
                early_stopping, plateau, state, with_state, state is not None, stop_on_divergence,
                digest, settings, resume)


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
                  stop: Any, digest: Any, validation: Any, optimizer: Any) -> None:
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


def check_resume_fits(saved: TrainingState, optimizer: Any, early_stopping: Any, plateau: Any) -> None:
    """A saved run's rule states and optimizer state must be those of this call's rules and
    optimizer (a damaged or altered state is refused, naming what does not fit)."""
    for name, rule, kept in (("early_stopping", early_stopping, saved.early_stopping),
                             ("plateau", plateau, saved.plateau)):
        if (rule is None) != (kept is None):
            raise ArgumentError(f"cannot resume: the saved run's {name} state is "
                                f"{'missing' if kept is None else 'there'} but this call's "
                                f"{name} is {rule!r:.60} (a damaged state?)")
    problem = layout_difference(layout(optimizer.init(saved.params)), saved.opt_state, "opt_state")
    if problem is not None:
        raise ArgumentError(f"cannot resume: the saved optimizer state does not fit this "
                            f"optimizer and params: {problem}")
