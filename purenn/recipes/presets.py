"""Named MNIST training recipes: the tutorial's run and modern ones.

A :class:`Preset` is a frozen record of everything a run needs besides the data: the model, the
loss, the optimizer and the loop's settings. To add a recipe, add a ``Preset`` to ``PRESETS``:
``purenn mnist --preset NAME`` and run records pick it up. One run of a preset (its overrides,
seed and sample limit) is a :class:`purenn.recipes.runs.RunConfig`.
"""

from __future__ import annotations

from typing import Any

import attrs

from purenn.layers import (
    BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Reshape, Residual, Sequential, Tanh,
)
from purenn.losses import LOSSES
from purenn.optim.base import Optimizer
from purenn.optim.optimizers import SGD, Adam
from purenn.optim.schedules import CosineDecay, WarmUp
from purenn.validation import Rule, float_field, one_of, unit_interval

@attrs.frozen
class CosineOverRun:
    """An optimizer whose learning rate follows the run's length: ``optimizer``'s ``lr`` is the
    peak, reached by a linear warm-up over the first ``warmup`` fraction of the run's steps, then
    decayed to 0 as a cosine over the rest. A preset's factory of the run's length (see
    :class:`Preset`): ``CosineOverRun(Adam(4e-3), warmup=0.1)(total_steps=2814)``."""

    optimizer: Optimizer = attrs.field(
        validator=Rule("an optimizer record with a float lr, e.g. Adam(1e-3)",
                       lambda v: isinstance(v, Optimizer) and isinstance(getattr(v, "lr", None), float)))
    warmup: float = float_field(unit_interval, 0.0)

    @property
    def lr(self) -> float:
        """The peak learning rate (the run's ``--lr`` replaces it)."""
        return float(self.optimizer.lr)  # type: ignore[attr-defined]

    def __call__(self, total_steps: int, lr: float | None = None) -> Optimizer:
        total = max(total_steps, 1)
        peak = self.lr if lr is None else lr
        warm = round(self.warmup * total)
        schedule = (WarmUp(CosineDecay(peak, max(total - warm, 1)), warm) if warm
                    else CosineDecay(peak, total))
        return attrs.evolve(self.optimizer, lr=schedule)  # type: ignore[call-arg]


def _is_optimizer_or_factory(value: Any) -> bool:
    if isinstance(value, Optimizer):
        return isinstance(getattr(value, "lr", None), float)
    return callable(value) and isinstance(getattr(value, "lr", None), float)


@attrs.frozen
class Preset:
    """A training recipe: everything a run needs besides the data.

    ``optimizer``: an optimizer record, used as it is (``SGD(0.1)``; ``Adam(1e-3)`` is Adam without
    a schedule), or a factory of the run's length: a record with ``lr`` (the default peak learning
    rate) and ``__call__(total_steps, lr) -> optimizer``, such as :class:`CosineOverRun`. Either
    way ``lr`` is the preset's learning rate, which a run's ``--lr`` replaces.
    ``one_hot_targets``: train on one-hot rows (MSE) instead of integer labels."""

    name: str
    description: str
    model: Sequential
    loss: str = attrs.field(validator=one_of(tuple(LOSSES)))
    optimizer: Any = attrs.field(validator=Rule(
        "an optimizer record with a float lr, or a factory of the run's length (CosineOverRun)",
        _is_optimizer_or_factory))
    epochs: int
    batch_size: int
    shuffle: bool
    one_hot_targets: bool = False

    @property
    def lr(self) -> float:
        """The preset's learning rate (a schedule's peak)."""
        return float(self.optimizer.lr)

    def make_optimizer(self, total_steps: int, lr: float | None = None) -> Optimizer:
        """The optimizer of a run of ``total_steps`` updates, at learning rate ``lr`` (None: the
        preset's)."""
        if isinstance(self.optimizer, Optimizer):
            return self.optimizer if lr is None else attrs.evolve(self.optimizer, lr=lr)  # type: ignore[call-arg]
        return self.optimizer(total_steps, lr)


def _tutorial_mnist() -> Sequential:
    return Sequential([
        Dense(784, 100, initializer="uniform"), Tanh(),
        Dense(100, 50, initializer="uniform"), Tanh(),
        Dense(50, 10, initializer="uniform"), Tanh(),
    ])


def _residual_block(channels: int) -> Residual:
    """Two 3x3 convolutions with BatchNorm, added to their input (He et al.'s basic block)."""
    return Residual(Sequential([
        Conv2D(channels, channels, 3, padding="same", use_bias=False), BatchNorm(channels), ReLU(),
        Conv2D(channels, channels, 3, padding="same", use_bias=False), BatchNorm(channels),
    ]))


def _resnet() -> Sequential:
    return Sequential([
        Reshape((28, 28, 1)),
        # BatchNorm's shift takes the place of the convolutions' biases
        Conv2D(1, 32, 5, use_bias=False), BatchNorm(32), MaxPool2D(2), ReLU(),   # 12 x 12 x 32
        _residual_block(32), ReLU(),
        Conv2D(32, 64, 5, use_bias=False), BatchNorm(64), MaxPool2D(2), ReLU(),  # 4 x 4 x 64
        Flatten(), Dense(4 * 4 * 64, 128, initializer="he", use_bias=False), BatchNorm(128), ReLU(),
        Dense(128, 10),
    ])


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="seed",
            description="the tutorial's run: 784-100-50-10 tanh, uniform init, MSE on one-hot "
            "targets, plain SGD lr 0.1, one sample per step, in order",
            model=_tutorial_mnist(), loss="mse", optimizer=SGD(0.1), epochs=10,
            batch_size=1, shuffle=False, one_hot_targets=True,
        ),
        Preset(
            name="mlp",
            description="a modern MLP: 784-512-256-10 ReLU, He init, softmax cross-entropy, "
            "Adam (b2 0.99) warming up over 10% of the steps then decaying as a cosine, 6 epochs "
            "of minibatches of 128, shuffled",
            model=Sequential([
                Dense(784, 512, initializer="he"), ReLU(),
                Dense(512, 256, initializer="he"), ReLU(),
                Dense(256, 10),
            ]),
            loss="softmax_cross_entropy", optimizer=CosineOverRun(Adam(4e-3, b2=0.99), warmup=0.1),
            epochs=6, batch_size=128, shuffle=True,
        ),
        Preset(
            name="cnn",
            description="a small CNN: conv 5x5x32 - pool - conv 5x5x64 - pool - dense 128 - "
            "dropout 0.25 - 10, Adam warming up over 10% of the steps then decaying as a cosine, "
            "2 epochs of minibatches of 128, shuffled",
            model=Sequential([
                Reshape((28, 28, 1)),
                # pooling before ReLU: the same function (max and ReLU commute), on 4x fewer values
                Conv2D(1, 32, 5), MaxPool2D(2), ReLU(),
                Conv2D(32, 64, 5), MaxPool2D(2), ReLU(),
                Flatten(), Dense(4 * 4 * 64, 128, initializer="he"), ReLU(), Dropout(0.25),
                Dense(128, 10),
            ]),
            loss="softmax_cross_entropy", optimizer=CosineOverRun(Adam(4e-3), warmup=0.1),
            epochs=2, batch_size=128, shuffle=True,
        ),
        Preset(
            name="resnet",
            description="a small residual CNN with BatchNorm: conv 5x5x32 - pool - residual block "
            "of two 3x3x32 convs - conv 5x5x64 - pool - dense 128 - 10, BatchNorm after every "
            "conv and the hidden dense layer, Adam with cosine decay, minibatches of 128, shuffled",
            model=_resnet(), loss="softmax_cross_entropy", optimizer=CosineOverRun(Adam(3e-3)),
            epochs=2, batch_size=128, shuffle=True,
        ),
    )
}
