"""The registry of updates: every transformation, optimizer, schedule and weight average of
purenn.optim, with examples and the rule it must follow.

Each entry maps a class to an :class:`Entry`: ``examples``, records of exactly that class (with
non-default arguments among them), and ``rule``, the published definition written in plain NumPy,
independent of purenn (``None`` when another test holds the reference, see below). Registering a
class here is all a new one needs to be put through every check that must know it:

- transformations (``TRANSFORMATIONS``): purity, read-only outputs and a new state, array-like
  gradients (tests/optim/test_transforms.py); donated memory giving the pure numbers, as
  ``as_optimizer(example)`` (tests/optim/test_donation.py); a run saved, loaded and resumed bit for
  bit (tests/optim/test_resumable_states.py); a JSON round trip (tests/io/test_serialize.py);
- optimizers (``OPTIMIZERS``), the same and: convergence on an ill-conditioned quadratic, state
  structure and dtypes (tests/optim/test_optimizers.py), ``fit`` equal to a loop of pure updates
  (tests/optim/test_donation.py), and the update rule: ``rule(optimizer, x0, grads)`` gives the
  parameter after each step for one array, and every example must follow it
  (tests/optim/test_optimizers.py). An optimizer PyTorch has may instead be held to numbers
  recorded from PyTorch (tests/optim/test_pytorch_reference.py, which fails while an optimizer has
  neither);
- schedules (``SCHEDULES``): ``rule(schedule, step)``, the learning rate at a step
  (tests/optim/test_schedules.py), and the JSON round trip;
- weight averages (``AVERAGES``): ``rule(average, params_seq)``, the average after each update
  (tests/optim/test_averaging.py), and the JSON round trip.

Masks and labels in examples are functions of the params or prefixes (``True``), never trees of one
params layout, so each example runs on any model; tests/io/test_serialize.py resolves them on
``PARAMS`` first (a record with a function in it is not data). tests/test_registries.py fails,
naming the class, while a public class of purenn.optim has no entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from purenn.optim import (
    EMA, SGD, AddDecayedWeights, Adagrad, Adam, AdamW, Chain, ClipByGlobalNorm, Constant, CosineDecay,
    ExponentialDecay, FromTransformation, Masked, MaskedAdamW, MultiSteps, Partition, RMSProp,
    ScaleByAdagrad, ScaleByAdam, ScaleByLearningRate, ScaleByRMS, ScaleByStddev, SetToZero, StepDecay,
    Trace, WarmUp, as_optimizer, chain, decay_mask,
)
from purenn.tree import freeze, tree_map


class Entry(NamedTuple):
    """A registered class: its examples, and the rule they follow (plain NumPy), if given here."""

    examples: list[Any]
    rule: Callable[..., Any] | None = None


#: A params tree shaped like a small model's (a Dense layer and an activation): masks given as
#: functions are resolved on it before an example is serialized.
PARAMS = freeze(({"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.25, -0.75])}, {}))


def biases(params: Any) -> Any:
    """A mask: the arrays of fewer than two dimensions (biases, normalisation)."""
    return tree_map(lambda a: np.ndim(a) < 2, params)


def by_rank(params: Any) -> Any:
    """Labels: ``"a"`` for weights (two or more dimensions), ``"b"`` for the others."""
    return tree_map(lambda a: "a" if np.ndim(a) >= 2 else "b", params)


def lr_at(lr: Any, step: int) -> float:
    """A learning rate (a float or a schedule) at ``step``, the number of updates already made."""
    return lr(step) if callable(lr) else lr


# --- update rules, one array at a time: (optimizer, x0, grads) -> [x after each step] ----------


def sgd_rule(opt: SGD, x0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """PyTorch's SGD: L2 in the gradient, buffer b_1 = g_1, Nesterov's look-ahead."""
    x, buf, path = x0.copy(), None, []
    for t, g in enumerate(grads):
        g = g + opt.weight_decay * x
        if opt.momentum:
            buf = g.copy() if buf is None else opt.momentum * buf + g
            g = g + opt.momentum * buf if opt.nesterov else buf
        x = x - lr_at(opt.lr, t) * g
        path.append(x)
    return path


def adam_rule(opt: Adam | AdamW, x0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """Kingma & Ba 2015, Algorithm 1; Adam's weight decay is L2 in the gradient (PyTorch), AdamW's
    decoupled (Loshchilov & Hutter 2019): lr * weight_decay * x off the params."""
    decoupled = isinstance(opt, AdamW)
    x, m, v, path = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), []
    for t, g in enumerate(grads, start=1):
        lr = lr_at(opt.lr, t - 1)
        if not decoupled:
            g = g + opt.weight_decay * x
        m = opt.b1 * m + (1 - opt.b1) * g
        v = opt.b2 * v + (1 - opt.b2) * g * g
        step = (m / (1 - opt.b1**t)) / (np.sqrt(v / (1 - opt.b2**t)) + opt.eps)
        x = x - lr * (step + opt.weight_decay * x) if decoupled else x - lr * step
        path.append(x)
    return path


def rmsprop_rule(opt: RMSProp, x0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """Hinton's RMSProp as PyTorch writes it: centered divides by the running standard deviation,
    momentum keeps a buffer of the scaled steps."""
    x, v, m, buf, path = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), np.zeros_like(x0), []
    for t, g in enumerate(grads):
        g = g + opt.weight_decay * x
        v = opt.alpha * v + (1 - opt.alpha) * g * g
        m = opt.alpha * m + (1 - opt.alpha) * g
        d = g / (np.sqrt(v - m * m if opt.centered else v) + opt.eps)
        if opt.momentum:
            buf = d = opt.momentum * buf + d
        x = x - lr_at(opt.lr, t) * d
        path.append(x)
    return path


def adagrad_rule(opt: Adagrad, x0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """Duchi et al. 2011, as PyTorch writes it: a sum of squared gradients from an initial value."""
    x, s, path = x0.copy(), np.full_like(x0, opt.initial_accumulator_value), []
    for t, g in enumerate(grads):
        g = g + opt.weight_decay * x
        s = s + g * g
        x = x - lr_at(opt.lr, t) * g / (np.sqrt(s) + opt.eps)
        path.append(x)
    return path


def from_transformation_rule(opt: FromTransformation, x0: np.ndarray,
                             grads: list[np.ndarray]) -> list[np.ndarray]:
    """What wrapping a transformation means: its updates added to the params, step by step (the
    transformations themselves are held to their own checks)."""
    t = opt.transformation()
    x, state, path = x0.copy(), t.init({"x": x0}), []
    for g in grads:
        u, state = t.update({"x": g}, state, {"x": x})
        x = x + u["x"]
        path.append(x)
    return path


# --- the registries ------------------------------------------------------------------------------

TRANSFORMATIONS: dict[type, Entry] = {
    ScaleByLearningRate: Entry([ScaleByLearningRate(0.1), ScaleByLearningRate(CosineDecay(0.1, 10)),
                                ScaleByLearningRate(StepDecay(0.1, 10))]),
    AddDecayedWeights: Entry([AddDecayedWeights(0.01), AddDecayedWeights(1e-4)]),
    Trace: Entry([Trace(0.9), Trace(0.9, nesterov=True), Trace(0.5)]),
    ScaleByAdam: Entry([ScaleByAdam(), ScaleByAdam(b1=0.5), ScaleByAdam(b1=0.8, b2=0.99, eps=1e-6)]),
    ScaleByRMS: Entry([ScaleByRMS(), ScaleByRMS(alpha=0.95, eps=1e-7)]),
    ScaleByStddev: Entry([ScaleByStddev(), ScaleByStddev(alpha=0.95)]),
    ScaleByAdagrad: Entry([ScaleByAdagrad(initial_accumulator_value=0.1),
                           ScaleByAdagrad(eps=1e-8, initial_accumulator_value=0.2)]),
    ClipByGlobalNorm: Entry([ClipByGlobalNorm(0.5), ClipByGlobalNorm(1e9)]),
    SetToZero: Entry([SetToZero()]),
    Chain: Entry([chain(ClipByGlobalNorm(1.0), ScaleByAdam(), ScaleByLearningRate(1e-3)),
                  chain(AddDecayedWeights(0.1), ScaleByLearningRate(0.5))]),
    Masked: Entry([Masked(ScaleByAdam(), biases), Masked(Trace(0.9), decay_mask), Masked(Trace(0.5), "decay_mask"),
                   Masked(ClipByGlobalNorm(0.5), True), Masked(Adam(0.1), False),
                   Masked(chain(Trace(0.9), ScaleByLearningRate(0.1)), decay_mask)]),
    Partition: Entry([Partition({"a": Adam(0.1), "b": SetToZero()}, by_rank),
                      Partition({"one": chain(Trace(0.5), ScaleByLearningRate(0.1))}, "one"),
                      Partition({"a": SGD(0.1, momentum=0.9), "b": SGD(0.5)}, by_rank),
                      Partition({"a": Trace(0.5), "b": SetToZero()}, by_rank)]),
    MultiSteps: Entry([MultiSteps(ScaleByAdam(), 2), MultiSteps(Trace(0.9), 1), MultiSteps(Trace(0.5), 2),
                       MultiSteps(chain(ClipByGlobalNorm(0.5), SGD(0.1)), 3), MultiSteps(Adam(1e-2), 2),
                       MultiSteps(SGD(0.1, momentum=0.9), 2)]),
}

# Every example converges on tests/optim/test_optimizers.py's quadratic in 100 steps.
OPTIMIZERS: dict[type, Entry] = {
    SGD: Entry([SGD(0.1), SGD(0.1, weight_decay=1e-3), SGD(0.05, momentum=0.9),
                SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                SGD(StepDecay(0.1, step_size=50, gamma=0.5))], sgd_rule),
    Adam: Entry([Adam(0.1), Adam(0.1, weight_decay=1e-3), Adam(CosineDecay(0.1, total_steps=100)),
                 Adam(0.1, b1=0.8, b2=0.95, eps=1e-3)], adam_rule),
    AdamW: Entry([AdamW(0.1), AdamW(WarmUp(CosineDecay(0.1, total_steps=90), warmup_steps=10)),
                  AdamW(0.1, b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.5)], adam_rule),
    MaskedAdamW: Entry([AdamW(0.1, weight_decay=0.1, mask=decay_mask), MaskedAdamW(0.1, mask=biases)]),
    RMSProp: Entry([RMSProp(0.05), RMSProp(0.02, momentum=0.5, centered=True, weight_decay=1e-3)],
                   rmsprop_rule),
    Adagrad: Entry([Adagrad(0.5), Adagrad(0.5, weight_decay=1e-3, initial_accumulator_value=0.1)],
                   adagrad_rule),
    FromTransformation: Entry([as_optimizer(chain(ClipByGlobalNorm(1.0), SGD(0.1))),
                               as_optimizer(chain(ClipByGlobalNorm(1.0), Adam(0.1)))],
                              from_transformation_rule),
}


# --- schedules: (schedule, step) -> learning rate ------------------------------------------------


def constant_rule(s: Constant, step: int) -> float:
    return s.lr


def step_decay_rule(s: StepDecay, step: int) -> float:
    return s.lr * s.gamma ** (step // s.step_size)


def exponential_decay_rule(s: ExponentialDecay, step: int) -> float:
    return s.lr * s.gamma ** (step / s.decay_steps)


def cosine_decay_rule(s: CosineDecay, step: int) -> float:
    """Loshchilov & Hutter's SGDR, one cycle without restarts."""
    progress = min(step, s.total_steps) / s.total_steps
    return s.final_lr + (s.lr - s.final_lr) * (1 + math.cos(math.pi * progress)) / 2


def warm_up_rule(s: WarmUp, step: int) -> float:
    """Goyal et al. 2017's linear warm-up from 0, then the inner schedule from its own step 0."""
    if step < s.warmup_steps:
        return s.schedule(0) * step / s.warmup_steps
    return s.schedule(step - s.warmup_steps)


SCHEDULES: dict[type, Entry] = {
    Constant: Entry([Constant(0.01), Constant(3.0)], constant_rule),
    StepDecay: Entry([StepDecay(0.1, step_size=30, gamma=0.5), StepDecay(1.0, step_size=1)], step_decay_rule),
    ExponentialDecay: Entry([ExponentialDecay(0.1, 0.9), ExponentialDecay(0.1, 1.0, decay_steps=7),
                             ExponentialDecay(0.5, 0.25, decay_steps=4)], exponential_decay_rule),
    CosineDecay: Entry([CosineDecay(0.1, total_steps=1000, final_lr=0.001), CosineDecay(0.1, 7)],
                       cosine_decay_rule),
    WarmUp: Entry([WarmUp(CosineDecay(0.1, 1000), warmup_steps=50), WarmUp(0.5, 3),
                   WarmUp(StepDecay(0.1, 2), 0)], warm_up_rule),
}


# --- weight averages: (average, [params after each update]) -> [average after each update] -----


def ema_rule(avg: EMA, params_seq: list[np.ndarray]) -> list[np.ndarray]:
    """a_t = d_t a_{t-1} + (1 - d_t) p_t from a_0 = p_0, with TensorFlow's warm-up
    d_t = min(decay, (1 + t) / (10 + t)) when asked for."""
    a, out = params_seq[0], []
    for t, p in enumerate(params_seq[1:], start=1):
        d = min(avg.decay, (1 + t) / (10 + t)) if avg.warmup else avg.decay
        a = d * a + (1 - d) * p
        out.append(a)
    return out


AVERAGES: dict[type, Entry] = {
    EMA: Entry([EMA(0.999), EMA(0.9, warmup=True), EMA(0.5)], ema_rule),
}
