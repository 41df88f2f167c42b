"""Named MNIST training recipes: the tutorial's run and modern ones.

A :class:`Preset` is a frozen record of everything a run needs besides the data: the model, the
loss, the optimizer and the loop's settings. To add a recipe, add a ``Preset`` to ``PRESETS``:
``purenn mnist --preset NAME`` and run records pick it up. One run of a preset (its overrides,
seed and sample limit) is a :class:`purenn.recipes.runs.RunConfig`.
"""

from __future__ import annotations


import attrs

from purenn.layers import (
    BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Reshape, Residual, Sequential, Tanh,
)
from purenn.losses import LOSSES
from purenn.optim.base import Optimizer
from purenn.optim.optimizers import SGD, Adam
from purenn.optim.schedules import CosineDecay, WarmUp
from purenn.validation import float_field, one_of, unit_interval

@attrs.frozen
class Preset:
    """A training recipe. ``optimizer``: ``"sgd"`` (plain gradient descent, ``SGD(lr)``) or
    ``"adam"`` with a linear warm-up over the first ``warmup`` fraction of the run's steps, then
    a cosine decay of ``lr`` to 0 over the rest (see :meth:`make_optimizer`); ``b2`` is Adam's
    second-moment decay. ``one_hot_targets``: train on one-hot rows (MSE) instead of integer
    labels."""

    name: str
    description: str
    model: Sequential
    loss: str = attrs.field(validator=one_of(tuple(LOSSES)))
    optimizer: str = attrs.field(validator=one_of(("sgd", "adam")))
    lr: float
    epochs: int
    batch_size: int
    shuffle: bool
    one_hot_targets: bool = False
    warmup: float = float_field(unit_interval, 0.0)
    b2: float = float_field(unit_interval, 0.999)

    def make_optimizer(self, lr: float, total_steps: int) -> Optimizer:
        """The optimizer of a run of ``total_steps`` updates at learning rate ``lr``."""
        if self.optimizer == "sgd":
            return SGD(lr)
        total = max(total_steps, 1)
        warm = round(self.warmup * total)
        if not warm:
            return Adam(CosineDecay(lr, total), b2=self.b2)
        return Adam(WarmUp(CosineDecay(lr, max(total - warm, 1)), warm), b2=self.b2)


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
            model=_tutorial_mnist(), loss="mse", optimizer="sgd", lr=0.1, epochs=10,
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
            loss="softmax_cross_entropy", optimizer="adam", lr=4e-3, epochs=6,
            batch_size=128, shuffle=True, warmup=0.1, b2=0.99,
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
            loss="softmax_cross_entropy", optimizer="adam", lr=4e-3, epochs=2,
            batch_size=128, shuffle=True, warmup=0.1,
        ),
        Preset(
            name="resnet",
            description="a small residual CNN with BatchNorm: conv 5x5x32 - pool - residual block "
            "of two 3x3x32 convs - conv 5x5x64 - pool - dense 128 - 10, BatchNorm after every "
            "conv and the hidden dense layer, Adam with cosine decay, minibatches of 128, shuffled",
            model=_resnet(), loss="softmax_cross_entropy", optimizer="adam", lr=3e-3, epochs=2,
            batch_size=128, shuffle=True,
        ),
    )
}
